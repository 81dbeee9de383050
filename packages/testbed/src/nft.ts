import type { HostName, Topology } from "./topology.js";

/** JSON value as printed by `nft -j`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** `nft -j list table ...` output: `{ nftables: [ {metainfo}, {table}, {chain}, {set}, {rule}, ... ] }`. */
export interface NftJson {
  readonly nftables: readonly JsonObject[];
}

export interface NftSetElement {
  /** The element's value as text, e.g. "198.51.100.10" or "2001:db8:100::10". */
  readonly value: string;
  /** Configured timeout in seconds, when the element has one. */
  readonly timeout: number | undefined;
  /** Seconds until the kernel removes the element, when it has a timeout. */
  readonly expires: number | undefined;
  /** The element's own counter, when its set has per-element counters. */
  readonly counter?: { readonly packets: number; readonly bytes: number } | undefined;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Runs `nft -j list table inet knockport` (or another table) in srv and returns the parsed JSON, or
 * undefined when the table does not exist.
 */
export async function readNftTable(topo: Topology, opts: { host?: HostName; family?: string; table?: string } = {}): Promise<NftJson | undefined> {
  const res = await topo.exec(opts.host ?? "srv", "nft", ["-j", "list", "table", opts.family ?? "inet", opts.table ?? "knockport"], { timeoutMs: 10_000 });
  if (res.exitCode !== 0) return undefined;
  const parsed = JSON.parse(res.stdout) as JsonValue;
  if (!isObject(parsed) || !Array.isArray(parsed["nftables"])) {
    throw new Error(`nft -j printed something unexpected: ${res.stdout.slice(0, 200)}`);
  }
  return { nftables: parsed["nftables"].filter(isObject) };
}

/** Names of the sets in a listed table. */
export function nftSetNames(table: NftJson): string[] {
  const names: string[] = [];
  for (const entry of table.nftables) {
    const set = entry["set"];
    if (isObject(set) && typeof set["name"] === "string") names.push(set["name"]);
  }
  return names;
}

function elementValue(v: JsonValue | undefined): string {
  if (typeof v === "string" || typeof v === "number") return String(v);
  if (isObject(v) && isObject(v["prefix"])) return `${String(v["prefix"]["addr"])}/${String(v["prefix"]["len"])}`;
  return JSON.stringify(v);
}

/** Elements of set `name` in a listed table (empty when the set is empty or absent). */
export function nftSetElements(table: NftJson, name: string): NftSetElement[] {
  for (const entry of table.nftables) {
    const set = entry["set"];
    if (!isObject(set) || set["name"] !== name) continue;
    const elems = set["elem"];
    if (!Array.isArray(elems)) return [];
    return elems.map((e): NftSetElement => {
      const inner = isObject(e) ? e["elem"] : undefined;
      if (isObject(inner)) {
        const c = inner["counter"];
        return {
          value: elementValue(inner["val"]),
          timeout: typeof inner["timeout"] === "number" ? inner["timeout"] : undefined,
          expires: typeof inner["expires"] === "number" ? inner["expires"] : undefined,
          counter: isObject(c) && typeof c["packets"] === "number" && typeof c["bytes"] === "number" ? { packets: c["packets"], bytes: c["bytes"] } : undefined,
        };
      }
      return { value: elementValue(e), timeout: undefined, expires: undefined };
    });
  }
  return [];
}

/** Every set holding `ip`, with the element (for "who may reach what" assertions). */
export function nftSetsContaining(table: NftJson, ip: string): Array<{ set: string; element: NftSetElement }> {
  const out: Array<{ set: string; element: NftSetElement }> = [];
  for (const name of nftSetNames(table)) {
    for (const element of nftSetElements(table, name)) if (element.value === ip) out.push({ set: name, element });
  }
  return out;
}

/**
 * Number of conntrack entries in srv whose original direction goes to `port` (IPv4 and IPv6 together).
 * Runs `conntrack -L -p PROTO --dport PORT` (once per family).
 */
export async function listConntrack(topo: Topology, port: number, opts: { host?: HostName; protocol?: "tcp" | "udp" } = {}): Promise<number> {
  let count = 0;
  for (const family of ["ipv4", "ipv6"]) {
    const res = await topo.exec(opts.host ?? "srv", "conntrack", ["-L", "-f", family, "-p", opts.protocol ?? "tcp", "--dport", String(port)], { timeoutMs: 10_000 });
    if (res.exitCode !== 0) throw new Error(`conntrack -L failed in ${opts.host ?? "srv"} (exit ${String(res.exitCode)}): ${res.stderr.trim()}`);
    count += res.stdout.split("\n").filter((l) => /^(tcp|udp)\s/.test(l.trim())).length;
  }
  return count;
}

/**
 * Makes a host behave like a typical distribution host with a stateful firewall: a table
 * `inet kp_testbed` whose only rule counts new connections. Any `ct` expression turns connection
 * tracking on in that namespace, so tests about conntrack entries are meaningful. It accepts
 * everything (policy accept) and so never changes what our own table decides.
 */
export async function enableConntrack(topo: Topology, host: HostName = "srv"): Promise<void> {
  const ruleset = [
    "table inet kp_testbed {",
    "  chain input { type filter hook input priority 10; policy accept; ct state new counter; }",
    "}",
    "",
  ].join("\n");
  await topo.exec(host, "nft", ["-f", "-"], { input: ruleset, reject: true, timeoutMs: 10_000 });
}

/** TCP sockets in `host` on local port `port` in any state but LISTEN, as printed by `ss` (one per line). */
export async function listTcpSockets(topo: Topology, port: number, host: HostName = "srv"): Promise<string[]> {
  const res = await topo.exec(host, "ss", ["-H", "-tan", "state", "all", `( sport = :${port} )`], { timeoutMs: 10_000 });
  if (res.exitCode !== 0) throw new Error(`ss failed in ${host}: ${res.stderr.trim()}`);
  return res.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith("LISTEN"));
}
