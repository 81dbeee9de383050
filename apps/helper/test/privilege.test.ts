import { describe, expect, it } from "vitest";
import { DIRECT, refuseSudoAsServerUser, sudoPrivilege } from "../src/privilege.js";

describe("sudo", () => {
  it("wraps a command as sudo -n -- <absolute path> <args>, and leaves it alone without sudo", () => {
    expect(sudoPrivilege("/usr/bin/sudo").wrap("/usr/sbin/nft", ["-f", "-"])).toEqual({ file: "/usr/bin/sudo", args: ["-n", "--", "/usr/sbin/nft", "-f", "-"] });
    expect(DIRECT.wrap("/usr/sbin/nft", ["-f", "-"])).toEqual({ file: "/usr/sbin/nft", args: ["-f", "-"] });
  });
});

describe("--use-sudo as the server's user", () => {
  const PASSWD = "root:x:0:0::/root:/bin/sh\nknockport:x:990:990::/nonexistent:/usr/sbin/nologin\nknockport-helper:x:991:990::/nonexistent:/usr/sbin/nologin\n";
  it("is refused (the internet-facing server must not be able to run nft -f -)", () => {
    expect(() => refuseSudoAsServerUser(990, PASSWD)).toThrow(/--use-sudo: the helper runs as knockport, the server's user.*knockport-helper/);
  });
  it("is allowed for the helper's own user", () => {
    expect(() => refuseSudoAsServerUser(991, PASSWD)).not.toThrow();
    expect(() => refuseSudoAsServerUser(12345, PASSWD)).not.toThrow();
  });
});
