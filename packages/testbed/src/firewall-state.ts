import { createHash } from "node:crypto";
import { nftSetElements, nftSetNames, readNftTable } from "./nft.js";
import type { HostName, Topology } from "./topology.js";

/** The firewall backends the e2e suite runs against. */
export type FirewallKind = "nftables" | "iptables-nft" | "iptables-legacy" | "vyos";
/**
 * The backends every per-backend e2e file runs by default. `vyos` (simulated: fake vbash + VyOS table
 * skeleton, see tools/fake-vbash.mjs) runs in its own file, or anywhere with KNOCKPORT_E2E_FIREWALLS=vyos.
 */
export const FIREWALL_KINDS: readonly FirewallKind[] = ["nftables", "iptables-nft", "iptables-legacy"];
export const ALL_FIREWALL_KINDS: readonly FirewallKind[] = [...FIREWALL_KINDS, "vyos"];

/** Helper flags that select a backend. */
export function firewallFlags(kind: FirewallKind): string[] {
  if (kind === "nftables" || kind === "vyos") return ["--firewall-type", kind];
  return ["--firewall-type", "iptables", "--iptables-binary", kind === "iptables-nft" ? "nft" : "legacy"];
}

/** One element of one of KnockPort's sets, named as the helper names its sets (`https_v4`, `svc_<app>_v6`). */
export interface FirewallSetEntry {
  readonly set: string;
  readonly ip: string;
  /** The element's packet/byte counter as the kernel reports it (sets with per-element counters only). */
  readonly packets?: number;
  readonly bytes?: number;
}

/** KnockPort's installed state, backend-neutral: undefined when its table / chains are absent. */
export interface FirewallState {
  /** Logical set names. */
  readonly sets: readonly string[];
  readonly elements: readonly FirewallSetEntry[];
}

/** Same mapping as @knockport/firewall's ipsetName, inverted for the given app names. */
function logicalFromIpset(name: string, appNames: readonly string[]): string | undefined {
  const m = /^kp-(.+)-v([46])$/.exec(name);
  if (!m) return undefined;
  const family = m[2];
  if (m[1] === "https") return `https_v${family}`;
  for (const app of appNames) {
    const hash = createHash("sha256").update(app, "utf8").digest("hex").slice(0, 8);
    if (m[1] === `${app.slice(0, 14)}-${hash}`) return `svc_${app}_v${family}`;
  }
  return `unknown:${name}`;
}

function ipt(kind: FirewallKind): string {
  return kind === "iptables-nft" ? "iptables-nft" : "iptables-legacy";
}

export async function readFirewallState(topo: Topology, kind: FirewallKind, appNames: readonly string[], host: HostName = "srv"): Promise<FirewallState | undefined> {
  if (kind === "nftables" || kind === "vyos") {
    const t = await readNftTable(topo, { host });
    if (t === undefined) return undefined;
    const sets = nftSetNames(t);
    return {
      sets,
      elements: sets.flatMap((set) => nftSetElements(t, set).map((e) => ({ set, ip: e.value, ...(e.counter ? { packets: e.counter.packets, bytes: e.counter.bytes } : {}) }))),
    };
  }
  const chain = await topo.exec(host, ipt(kind), ["-w", "5", "-S", "KNOCKPORT-INPUT"], { timeoutMs: 10_000 });
  if (chain.exitCode !== 0) return undefined;
  const saved = await topo.exec(host, "ipset", ["save"], { timeoutMs: 10_000 });
  if (saved.exitCode !== 0) throw new Error(`ipset save failed in ${host}: ${saved.stderr.trim()}`);
  const sets: string[] = [];
  const elements: FirewallSetEntry[] = [];
  for (const line of saved.stdout.split("\n")) {
    const words = line.trim().split(/\s+/);
    const [verb, name, ip] = words;
    if (name === undefined) continue;
    const logical = logicalFromIpset(name, appNames);
    if (logical === undefined) continue;
    if (verb === "create") sets.push(logical);
    if (verb === "add" && ip !== undefined) {
      const p = words.indexOf("packets");
      const b = words.indexOf("bytes");
      elements.push(p > 0 && b > 0 ? { set: logical, ip, packets: Number(words[p + 1]), bytes: Number(words[b + 1]) } : { set: logical, ip });
    }
  }
  return { sets, elements };
}
