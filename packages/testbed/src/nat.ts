/**
 * The NAT part of the topology (`withNat`): a home router `nat` on the bridge and a client `priv` behind
 * it. priv's IPv4 traffic leaves with the router's public address (nftables snat in nat's own
 * namespace), so srv sees that address and never priv's own one; setNatPublicAddress() swaps the public
 * address mid-test as an ISP would, while priv's own address stays as it is.
 */
import type { HostAddresses, HostName, Topology } from "./topology.js";

/** The router's first public address; `NAT_SPARE_V4` is free in the same /24 for a change. */
export const NAT_PUBLIC_V4 = "198.51.100.30";
export const NAT_SPARE_V4 = "198.51.100.31";
const NAT_INSIDE_V4 = "10.77.0.1";
const TABLE = "testbed_nat";

export function natAddresses(addresses: (v4: string, v6: string, iface: string) => HostAddresses): { nat: HostAddresses; priv: HostAddresses } {
  return {
    nat: addresses(NAT_PUBLIC_V4, "2001:db8:100::30", "eth0"),
    // IPv6 stays inside (no route out, no NAT66): the NAT tests are IPv4.
    priv: addresses("10.77.0.10", "fd00:77::10", "eth0"),
  };
}

interface NatBuildOps {
  nsOf(host: HostName): string;
  ip(host: HostName, args: readonly string[]): Promise<void>;
  exec: Topology["exec"];
  configure(host: HostName, a: HostAddresses): Promise<void>;
}

function snatRuleset(publicV4: string, replace: boolean): string {
  const chain = `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname "eth0" ip saddr 10.77.0.0/24 snat to ${publicV4}\n  }\n`;
  return `${replace ? `flush table ip ${TABLE}\n` : ""}table ip ${TABLE} {\n${chain}}\n`;
}

async function nft(exec: Topology["exec"], ruleset: string): Promise<void> {
  const r = await exec("nat", "nft", ["-f", "-"], { input: ruleset });
  if (r.exitCode !== 0) throw new Error(`testbed: nft in nat failed (exit ${String(r.exitCode)}): ${r.stderr.trim()}`);
}

/** Called from the topology's build once the namespaces and nat's bridge port exist. */
export async function buildNat(ops: NatBuildOps, nat: HostAddresses, priv: HostAddresses): Promise<void> {
  await ops.configure("nat", nat);
  await ops.ip("nat", ["link", "add", "int0", "type", "veth", "peer", "name", priv.iface, "netns", ops.nsOf("priv")]);
  await ops.ip("nat", ["addr", "add", `${NAT_INSIDE_V4}/24`, "dev", "int0"]);
  await ops.ip("nat", ["link", "set", "int0", "up"]);
  await ops.configure("priv", priv);
  await ops.ip("priv", ["route", "add", "default", "via", NAT_INSIDE_V4]);
  // promote_secondaries: dropping the old public address must not take the new one (same /24) with it.
  const fwd = await ops.exec("nat", "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.eth0.promote_secondaries=1"]);
  if (fwd.exitCode !== 0) throw new Error(`testbed: enabling forwarding in nat failed: ${fwd.stderr}`);
  await nft(ops.exec, snatRuleset(nat.v4, false));
}

/**
 * Gives the router the public address `v4` (same /24 as srv) instead of its current one: the snat rule
 * is replaced in one transaction, the old address removed and nat's connection tracking flushed, so
 * every later connection from priv arrives from `v4`. Returns the address it had before.
 */
export async function setNatPublicAddress(topo: Topology, v4: string): Promise<string> {
  const list = await topo.exec("nat", "ip", ["-4", "-o", "addr", "show", "dev", "eth0"], { reject: true });
  const held = [...list.stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1] ?? "");
  const before = held[0] ?? "";
  if (!held.includes(v4)) await topo.exec("nat", "ip", ["addr", "add", `${v4}/24`, "dev", "eth0"], { reject: true });
  await nft((...a) => topo.exec(...a), snatRuleset(v4, true));
  for (const old of held.filter((a) => a !== v4)) await topo.exec("nat", "ip", ["addr", "del", `${old}/24`, "dev", "eth0"], { reject: true });
  await topo.exec("nat", "conntrack", ["-F"], { reject: false });
  return before;
}
