import { describe, expect, it } from "vitest";
import { parsePasswd } from "../src/accounts.js";
import { parseGroup } from "../src/groups.js";

describe("parsePasswd / parseGroup", () => {
  it("reads name, uid and gid, and passes over malformed lines", () => {
    const passwd = "root:x:0:0:root:/root:/bin/bash\nknockport:x:998:997::/nonexistent:/usr/sbin/nologin\nbroken:x:abc:1\n\n#c";
    expect(parsePasswd(passwd)).toEqual([
      { name: "root", uid: 0, gid: 0 },
      { name: "knockport", uid: 998, gid: 997 },
    ]);
  });
  it("reads a group's members, empty member lists included", () => {
    expect(parseGroup("knockport:x:997:knockport-helper, other\nnogroup:x:65534:\nbad:x:y:")).toEqual([
      { name: "knockport", gid: 997, members: ["knockport-helper", "other"] },
      { name: "nogroup", gid: 65534, members: [] },
    ]);
  });
});
