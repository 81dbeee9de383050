import { describe, expect, it } from "vitest";
import { checkInterfaces, listHostInterfaces, parseConfig, refuseMissingInterfaces, usedInterfaces } from "../src/index.js";
import { ConfigError } from "../src/errors.js";
import { baseDoc, FILE, problemsOf, writeConfig, type Doc } from "./helpers.js";

const PROC_NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  134204     841    0    0    0     0          0         0   134204     841    0    0    0     0       0          0
  eth0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
eth1.100: 5 5 0 0 0 0 0 0 5 5 0 0 0 0 0 0
`;

function withForwardedApp(doc: Doc, ext: string, int: string): Doc {
  return { ...doc, web: { port: 8081, access_key_http: ["web-http-key-01"], access_key_https: ["web-https-key-01"], destination: "192.0.2.10:80", duration: 60, interface_ext: ext, interface_int: int } };
}

describe("interfaces of the config vs the host", () => {
  it("reads every interface of the namespace from /proc/net/dev", () => {
    expect(listHostInterfaces(writeConfig(PROC_NET_DEV, "dev"))).toEqual(["lo", "eth0", "eth1.100"]);
    expect(listHostInterfaces(), "this process's namespace has lo").toContain("lo");
  });

  it("names each interface with the keys that use it", () => {
    const config = parseConfig(withForwardedApp(baseDoc(), "ppp0", "eth1"), FILE);
    expect(Object.fromEntries(usedInterfaces(config))).toEqual({
      eth0: ["global.interface_ext", "global.interface_int", "openvpn.interface_ext", "openvpn.interface_int", "ssh.interface_ext", "ssh.interface_int"],
      ppp0: ["web.interface_ext"],
      eth1: ["web.interface_int"],
    });
  });

  it("refuses a missing interface_ext / interface_int, naming the interfaces that exist", () => {
    const config = parseConfig(withForwardedApp(baseDoc(), "eth9", "eth1"), FILE);
    expect(checkInterfaces(config, ["lo", "eth0"]).problems).toEqual([
      `${FILE}: web.interface_ext: interface eth9 does not exist on this host (it has lo, eth0); a rule on a missing interface matches nothing, so its ports would be open to everyone. Fix the name, or, for an interface that appears later (ppp, VPN), list it in global.allow_missing_interfaces`,
      `${FILE}: web.interface_int: interface eth1 does not exist on this host (it has lo, eth0); a rule on a missing interface matches nothing, so its ports would be open to everyone. Fix the name, or, for an interface that appears later (ppp, VPN), list it in global.allow_missing_interfaces`,
    ]);
    expect(() => refuseMissingInterfaces(config, ["lo", "eth0"])).toThrow(ConfigError);
    expect(refuseMissingInterfaces(config, ["lo", "eth0", "eth1", "eth9"])).toEqual({ waiting: [], problems: [], unlisted: [] });
  });

  it("global.allow_missing_interfaces lets listed interfaces be missing (waiting), not others", () => {
    const doc = withForwardedApp(baseDoc(), "ppp0", "eth1");
    doc.global.allow_missing_interfaces = ["ppp0"];
    const config = parseConfig(doc, FILE);
    expect(config.global.allowMissingInterfaces).toEqual(["ppp0"]);
    const check = checkInterfaces(config, ["lo", "eth0"]);
    expect(check.waiting).toEqual(["ppp0"]);
    expect(check.problems).toHaveLength(1);
    expect(check.problems[0]).toContain("web.interface_int: interface eth1 does not exist");
    expect(checkInterfaces(config, ["lo", "eth0", "eth1", "ppp0"])).toEqual({ waiting: [], problems: [], unlisted: [] });
  });

  it("refuses an allow_missing_interfaces entry no interface key uses (a typo)", () => {
    const doc = baseDoc();
    doc.global.allow_missing_interfaces = ["ppp0"];
    expect(problemsOf(() => parseConfig(doc, FILE))).toEqual([
      `${FILE}: global.allow_missing_interfaces: "ppp0" is not the interface_ext or interface_int of global or of any app`,
    ]);
    doc.global.allow_missing_interfaces = ["bad name!"];
    expect(problemsOf(() => parseConfig(doc, FILE)).join("\n")).toContain("global.allow_missing_interfaces");
  });
});
