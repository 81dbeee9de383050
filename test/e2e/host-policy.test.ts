// End-to-end: KnockPort on a host whose own firewall drops incoming traffic by default (docs/firewall.md,
// "A host whose input policy is drop").
// - nftables: our table's accept does not override the host table's policy drop (every base chain on a
//   hook decides on its own). The admin adds one line to the host's input chain accepting the knock
//   ports and the service ports: our input chain runs first (priority filter - 10) and has already
//   dropped everyone not allowed on them, so that accept lets through only what KnockPort allowed.
// - iptables: our chains are jumped to from INPUT at position 1 and ACCEPT there ends INPUT, so a
//   policy of DROP needs nothing added.
import { beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { e2eFirewalls, expectStep1NoReply, states } from "./harness.js";
import type { AppSpec } from "./testbed.js";

const stack = { duration: 20, step2HttpsDuration: 10, rateLimitPerMinute: 1000 };

describeKnockport("knockport end to end ($firewall): a host whose input policy is drop", e2eFirewalls(), stack, (h, { firewall }) => {
  let ssh: AppSpec;
  let openvpn: AppSpec;

  const run = async (file: string, args: string[], input?: string): Promise<void> => {
    const r = await h.topo.exec("srv", file, args, { timeoutMs: 10_000, ...(input !== undefined ? { input } : {}) });
    if (r.exitCode !== 0) throw new Error(`${file} ${args.join(" ")}: ${r.stderr}`);
  };
  /** The rules an admin adds to the host's own input chain (docs/firewall.md). */
  const adminAccept = (): string =>
    [
      `add rule inet host input tcp dport { ${h.cfg.httpPort}, ${h.cfg.httpsPort}, ${ssh.port} } accept comment "KnockPort ports: its own table filtered them already"`,
      `add rule inet host input udp dport ${openvpn.port} accept comment "KnockPort ports: its own table filtered them already"`,
      "",
    ].join("\n");

  beforeAll(async () => {
    ssh = h.ssh;
    openvpn = h.openvpn;
    if (firewall === "nftables") {
      // A typical host ruleset: policy drop, loopback, replies and ICMP (IPv6 neighbour discovery) allowed.
      await run("nft", ["-f", "-"], [
        "table inet host {",
        "  chain input {",
        "    type filter hook input priority filter; policy drop;",
        "    iif lo accept",
        "    ct state established,related accept",
        "    meta l4proto { icmp, ipv6-icmp } accept",
        "  }",
        "}",
        "",
      ].join("\n"));
    } else {
      const [v4, v6] = firewall === "iptables-nft" ? ["iptables-nft", "ip6tables-nft"] : ["iptables-legacy", "ip6tables-legacy"];
      await run(v6, ["-A", "INPUT", "-p", "ipv6-icmp", "-j", "ACCEPT"]);
      await run(v4, ["-P", "INPUT", "DROP"]);
      await run(v6, ["-P", "INPUT", "DROP"]);
    }
  });

  it.runIf(firewall === "nftables")("without the admin's accept line the host's drop wins: a valid knock opens nothing", async () => {
    expectStep1NoReply(await h.step1("cli", ssh), "valid step 1");
    expect(await h.https("cli"), "the host table drops what our table accepted").toBe("closed");
    await run("nft", ["-f", "-"], adminAccept());
  });

  it.each([4, 6] as const)("IPv%i: the knocker gets in, the bystander stays out", async (family) => {
    await h.fullKnock("cli", ssh, family);
    await h.fullKnock("cli", openvpn, family);
    expect(
      await states({
        "cli ssh": () => h.svc("cli", ssh, family),
        "cli openvpn": () => h.svc("cli", openvpn, family),
        "cli2 ssh": () => h.svc("cli2", ssh, family),
        "cli2 openvpn": () => h.svc("cli2", openvpn, family),
        "cli2 https": () => h.https("cli2", family),
      }),
    ).toEqual({ "cli ssh": "open", "cli openvpn": "open", "cli2 ssh": "closed", "cli2 openvpn": "closed", "cli2 https": "closed" });
  });
});
