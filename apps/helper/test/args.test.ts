import { describe, expect, it } from "vitest";
import { UsageError } from "@knockport/config";
import { parseHelperArgs } from "../src/args.js";

const parse = (...extra: string[]) => parseHelperArgs(["-c", "/etc/knockport/config.yaml", ...extra]);

describe("parseHelperArgs: firewall backends", () => {
  it("defaults to nftables and an auto-detected iptables binary", () => {
    expect(parse()).toMatchObject({ firewallType: "nftables", iptablesBinary: "auto" });
  });

  it.each([["nft"], ["legacy"], ["auto"], ["/usr/sbin/iptables-legacy"], ["/usr/sbin/iptables"]])("takes --firewall-type iptables --iptables-binary %s", (bin) => {
    expect(parse("--firewall-type", "iptables", "--iptables-binary", bin)).toMatchObject({ firewallType: "iptables", iptablesBinary: bin });
  });

  it.each([
    [["--firewall-type", "pf"], '--firewall-type: must be nftables, iptables or vyos (got "pf")'],
    [["--firewall-type", "vyos", "--vbash", "vbash"], "--vbash: must be an absolute path such as /bin/vbash"],
    [["--iptables-binary", "iptables"], "--iptables-binary: must be auto, nft, legacy or an absolute path"],
    [["--iptables-binary", "/bin/sh"], "--iptables-binary: must be auto, nft, legacy or an absolute path"],
    [["--iptables-binary", "/usr/sbin/iptables;rm"], "--iptables-binary: must be auto, nft, legacy or an absolute path"],
  ])("refuses %j with a message naming the flag", (args, message) => {
    let caught: unknown;
    try {
      parse(...args);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).toContain(message);
  });
});

describe("parseHelperArgs: vyos", () => {
  it("takes --firewall-type vyos with an optional absolute --vbash", () => {
    expect(parse("--firewall-type", "vyos")).toMatchObject({ firewallType: "vyos", vbash: undefined });
    expect(parse("--firewall-type", "vyos", "--vbash", "/bin/vbash")).toMatchObject({ firewallType: "vyos", vbash: "/bin/vbash" });
  });
});

describe("parseHelperArgs: --use-sudo", () => {
  it("defaults to no sudo, /usr/bin/sudo and user knockport", () => {
    expect(parse()).toMatchObject({ useSudo: false, sudoPath: "/usr/bin/sudo", printSudoers: false, sudoUser: "knockport" });
    expect(parse("--use-sudo", "--sudo-path", "/usr/local/bin/sudo")).toMatchObject({ useSudo: true, sudoPath: "/usr/local/bin/sudo" });
  });
  it("--print-sudoers needs no config", () => {
    expect(parseHelperArgs(["--print-sudoers"])).toMatchObject({ printSudoers: true, configFile: undefined });
  });
  it.each([
    [["--sudo-path", "sudo"], "--sudo-path: must be an absolute path"],
    [["--sudo-path", "/usr/bin/../tmp/sudo"], "--sudo-path: must be an absolute path"],
    [["--sudo-user", "Root; ALL"], "--sudo-user: must be a user name"],
  ])("refuses %j naming the flag", (args, message) => {
    expect(() => parse(...args)).toThrow(message);
  });
});
