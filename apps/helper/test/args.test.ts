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
  it("defaults to no sudo and /usr/bin/sudo", () => {
    expect(parse()).toMatchObject({ useSudo: false, sudoPath: "/usr/bin/sudo" });
    expect(parse("--use-sudo", "--sudo-path", "/usr/local/bin/sudo")).toMatchObject({ useSudo: true, sudoPath: "/usr/local/bin/sudo" });
  });
  it.each([
    [["--sudo-path", "sudo"], "--sudo-path: must be an absolute path"],
    [["--sudo-path", "/usr/bin/../tmp/sudo"], "--sudo-path: must be an absolute path"],
  ])("refuses %j naming the flag", (args, message) => {
    expect(() => parse(...args)).toThrow(message);
  });
});

describe("parseHelperArgs: custom nftables table and chains", () => {
  it("has none by default", () => {
    expect(parse()).toMatchObject({ customChains: undefined });
  });

  it("takes the table and defaults the chains to input / forward, output only when named", () => {
    expect(parse("--nftables-table-filter", "filter")).toMatchObject({ customChains: { table: "filter", input: "input", forward: "forward", output: undefined } });
    expect(
      parse("--nftables-table-filter", "fw", "--nftables-chain-input", "IN-main", "--nftables-chain-forward", "FWD_1", "--nftables-chain-output", "out"),
    ).toMatchObject({ customChains: { table: "fw", input: "IN-main", forward: "FWD_1", output: "out" } });
  });

  it.each([
    [["--nftables-chain-input", "input"], "--nftables-chain-input: needs --nftables-table-filter"],
    [["--nftables-table-filter", "inet filter"], "--nftables-table-filter: must be an nftables table/chain name"],
    [["--nftables-table-filter", "filter", "--nftables-chain-input", "in;put"], "--nftables-chain-input: must be an nftables table/chain name"],
    [["--nftables-table-filter", "filter", "--nftables-chain-output", "1x"], "--nftables-chain-output: must be an nftables table/chain name"],
    [["--nftables-table-filter", "knockport_x"], "--nftables-table-filter: names starting with knockport_ are reserved"],
    [["--nftables-table-filter", "filter", "--nftables-chain-forward", "knockport_forward"], "--nftables-chain-forward: names starting with knockport_ are reserved"],
    [["--nftables-table-filter", "filter", "--firewall-type", "iptables"], "--nftables-table-filter: only with --firewall-type nftables"],
  ])("refuses %j with a message naming the flag", (args, message) => {
    expect(() => parse(...args)).toThrow(UsageError);
    expect(() => parse(...args)).toThrow(message);
  });
});

describe("parseHelperArgs: the two sockets", () => {
  it("puts the admin socket beside the knock socket, root only, unless told otherwise", () => {
    expect(parse()).toMatchObject({ socketPath: "/run/knockport/helper.sock", adminSocketPath: "/run/knockport/admin.sock", adminSocketGroup: undefined });
    expect(parse("--socket", "/tmp/kp/knock.sock")).toMatchObject({ adminSocketPath: "/tmp/kp/admin.sock" });
    expect(parse("--admin-socket", "/run/kp-admin.sock", "--admin-socket-group", "kpadmin", "--socket-group", "knockport")).toMatchObject({
      adminSocketPath: "/run/kp-admin.sock",
      adminSocketGroup: "kpadmin",
      socketGroup: "knockport",
    });
  });

  it.each([
    [["--admin-socket", "/run/knockport/helper.sock"], "--admin-socket: must differ from --socket"],
    [["--socket-group", "knockport", "--admin-socket-group", "knockport"], "--admin-socket-group: must differ from --socket-group (knockport)"],
  ])("refuses %j: the server's socket or group would get the admin methods", (args, message) => {
    expect(() => parse(...args)).toThrow(UsageError);
    expect(() => parse(...args)).toThrow(message);
  });
});

describe("parseHelperArgs: the helper only runs", () => {
  it.each([["--dry-run"], ["--print-sudoers"], ["--uninstall-firewall"], ["--sudo-user"]])("refuses %s (a knockport CLI command now)", (flag) => {
    expect(() => parse(flag)).toThrow(UsageError);
  });
  it("needs a config", () => {
    expect(() => parseHelperArgs([])).toThrow("-c/--config is required");
  });
});
