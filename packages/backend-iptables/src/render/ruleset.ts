import { publicHttpPort, publicHttpsPort, type FirewallApp as AppConfig, type FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { ipFamily, type IpFamily } from "@knockport/protocol";
import { FirewallError, HTTPS_SET_V4, HTTPS_SET_V6, InvalidValueError, STEP1_MAX_PACKET_LENGTH, checkIp, checkTimeout, forwardedApps, guardComment, rulesetSetNames, serviceSetName, setFamily, type GrantTarget, type SetElement } from "@knockport/firewall";
import { IPT_CHAINS, hashlimitName, iptablesJumps, ipsetName, ipsetUpgradeName, type IptJump, type IptTable } from "./names.js";
import { renderU32PostMatch } from "./u32.js";

// iptables backend: the same model as the nftables table (DESIGN.md §3), in chains of our own that
// the built-in chains jump to, with ipset `hash:ip` sets whose elements carry a timeout (the kernel
// expires grants). Everything here is pure text for `ipset restore` and `iptables-restore --noflush`.

function comment(text: string): string[] {
  return ["-m", "comment", "--comment", `"${text}"`];
}

export interface IptablesRuleset {
  /** `ipset -exist restore` input: creates our sets (kept if present), flushes them, re-adds leases. */
  readonly ipset: string;
  /** `iptables-restore --noflush` input (IPv4). */
  readonly v4: string;
  /** `ip6tables-restore --noflush` input (IPv6). */
  readonly v6: string;
  readonly jumps: readonly IptJump[];
}

function knockInterfaces(config: KnockportConfig): string[] {
  return [...new Set([config.global.interfaceExt, ...config.apps.map((a) => a.interfaceExt)])];
}

function renderFamily(config: KnockportConfig, family: IpFamily): string {
  // WAF mode: the stealth and HTTPS-set rules guard nginx's public ports instead of KnockPort's own.
  const httpPort = publicHttpPort(config);
  const httpsPort = publicHttpsPort(config);
  const ifaces = knockInterfaces(config);
  const httpsSet = ipsetName(family === 4 ? HTTPS_SET_V4 : HTTPS_SET_V6);
  const u32 = renderU32PostMatch(config.global.httpPostPath, family);
  const lines: string[] = [];
  const rule = (chain: string, parts: readonly string[]): void => {
    lines.push(["-A", chain, ...parts].join(" "));
  };
  const header = (table: IptTable): void => {
    lines.push(`*${table}`);
    for (const chain of new Set(Object.values(IPT_CHAINS[table]))) lines.push(`:${chain} - [0:0]`);
  };
  const what = (app: AppConfig): string => `app ${app.name} ${app.protocol}/${app.port}`;

  lines.push(`# KnockPort iptables rules (IPv${family}), generated: do not edit. Load with --noflush: only our chains change.`);
  header("raw");
  for (const i of ifaces) {
    rule(IPT_CHAINS.raw.PREROUTING, ["-i", i, "-p", "tcp", "--dport", `${httpPort}`, ...comment(`HTTP knock port ${httpPort}: no conntrack entry for knocks or scans`), "-j", "CT", "--notrack"]);
    rule(IPT_CHAINS.raw.OUTPUT, ["-o", i, "-p", "tcp", "--sport", `${httpPort}`, ...comment(`HTTP knock port ${httpPort}: no conntrack entry for replies`), "-j", "CT", "--notrack"]);
  }
  lines.push("COMMIT");

  header("mangle");
  for (const app of config.apps) {
    rule(IPT_CHAINS.mangle.PREROUTING, renderIptablesGuardRule(app, family, ipsetName(serviceSetName(app.name, family))));
  }
  lines.push("COMMIT");

  header("filter");
  const input = IPT_CHAINS.filter.INPUT;
  if (config.waf) {
    const own = [config.httpPort, config.httpsPort];
    for (const i of ifaces) {
      for (const port of own) {
        rule(input, ["-i", i, "-p", "tcp", "--dport", `${port}`, ...comment(`WAF mode: KnockPort's own port ${port} is reached only through nginx`), "-j", "DROP"]);
      }
    }
  }
  for (const i of ifaces) {
    const http = ["-i", i, "-p", "tcp", "--dport", `${httpPort}`];
    rule(input, [...http, "--tcp-flags", "FIN,SYN,RST,ACK", "SYN", ...comment(`HTTP knock port ${httpPort}: connection request (SYN)`), "-j", "ACCEPT"]);
    rule(input, [...http, "--tcp-flags", "RST", "RST", ...comment(`HTTP knock port ${httpPort}: reset from the client`), "-j", "ACCEPT"]);
    rule(input, [
      ...http,
      "-m", "length", "--length", `0:${STEP1_MAX_PACKET_LENGTH}`,
      ...u32,
      ...comment(`HTTP knock port ${httpPort}: step-1 knock, a segment starting with POST <http_post_path>`),
      "-j", "ACCEPT",
    ]);
    rule(input, [...http, ...comment(`HTTP knock port ${httpPort}: everything else, so scans learn nothing`), "-j", "DROP"]);
    const https = ["-i", i, "-p", "tcp", "--dport", `${httpsPort}`];
    const limit = config.global.httpsConnectionLimit;
    if (limit !== undefined) {
      // The connection limit, before any TLS work; `! --update-counters` keeps the lease's packet
      // counter to what the accept below counts.
      const perMinute = limit.perMinute;
      const burst = limit.burst;
      rule(input, [
        ...https, "-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set", httpsSet, "src", "!", "--update-counters",
        "-m", "hashlimit", "--hashlimit-above", `${perMinute}/minute`, "--hashlimit-burst", `${burst}`, "--hashlimit-mode", "srcip",
        "--hashlimit-name", hashlimitName(family), "--hashlimit-htable-expire", "60000",
        ...comment(`HTTPS knock port ${httpsPort}: client over ${perMinute} new connections a minute (burst ${burst})`), "-j", "DROP",
      ]);
    }
    rule(input, [...https, "-m", "set", "--match-set", httpsSet, "src", ...comment(`HTTPS knock port ${httpsPort}: clients that passed step 1`), "-j", "ACCEPT"]);
    rule(input, [...https, ...comment(`HTTPS knock port ${httpsPort}: everyone else`), "-j", "DROP"]);
  }
  for (const app of config.apps) {
    const proto = app.protocol;
    const svc = ["-i", app.interfaceExt, "-p", proto, "--dport", `${app.port}`];
    if (app.destination.kind === "forward") {
      rule(input, [...svc, ...comment(`${what(app)}: forwarded to a LAN host; nothing local is served on it`), "-j", "DROP"]);
      continue;
    }
    const set = ipsetName(serviceSetName(app.name, family));
    rule(input, [...svc, "-m", "set", "--match-set", set, "src", ...comment(`${what(app)}: clients that passed step 2`), "-j", "ACCEPT"]);
    rule(input, [...svc, ...comment(`${what(app)}: everyone else`), "-j", "DROP"]);
  }
  for (const i of ifaces) {
    const out = ["-o", i, "-p", "tcp", "--sport", `${httpPort}`];
    rule(IPT_CHAINS.filter.OUTPUT, [...out, "--tcp-flags", "FIN,SYN,RST,ACK", "SYN,ACK", ...comment(`HTTP knock port ${httpPort}: SYN-ACK, so the client can send its knock`), "-j", "ACCEPT"]);
    rule(IPT_CHAINS.filter.OUTPUT, [...out, ...comment(`HTTP knock port ${httpPort}: every other reply, the client learns nothing`), "-j", "DROP"]);
  }
  const forwarded = forwardedApps(config).filter((f) => f.family === family);
  for (const f of forwarded) {
    const proto = f.app.protocol;
    const set = ipsetName(serviceSetName(f.app.name, family));
    const dst = ["-d", f.ip, "-p", proto, "--dport", `${f.port}`];
    const ext = f.app.interfaceExt;
    rule(IPT_CHAINS.filter.FORWARD, [
      "-i", ext, "-o", f.app.interfaceInt, ...dst, "-m", "set", "--match-set", set, "src", "-m", "conntrack", "--ctstate", "DNAT",
      ...comment(`${what(f.app)}: forwarded clients that passed step 2 (translated destination)`), "-j", "ACCEPT",
    ]);
    rule(IPT_CHAINS.filter.FORWARD, ["-i", ext, ...dst, ...comment(`${what(f.app)}: everyone else to its LAN host`), "-j", "DROP"]);
  }
  lines.push("COMMIT");

  header("nat");
  for (const f of forwarded) {
    const proto = f.app.protocol;
    const set = ipsetName(serviceSetName(f.app.name, family));
    const target = family === 4 ? `${f.ip}:${f.port}` : `[${f.ip}]:${f.port}`;
    rule(IPT_CHAINS.nat.PREROUTING, [
      "-i", f.app.interfaceExt, "-p", proto, "--dport", `${f.app.port}`, "-m", "set", "--match-set", set, "src",
      ...comment(`${what(f.app)}: clients that passed step 2 go to LAN host ${target}`), "-j", "DNAT", "--to-destination", target,
    ]);
    if (f.app.masquerade) {
      rule(IPT_CHAINS.nat.POSTROUTING, [
        "-o", f.app.interfaceInt, "-d", f.ip, "-p", proto, "--dport", `${f.port}`, "-m", "set", "--match-set", set, "src", "-m", "conntrack", "--ctstate", "DNAT",
        ...comment(`${what(f.app)}: masquerade towards the LAN host`), "-j", "MASQUERADE",
      ]);
    }
  }
  lines.push("COMMIT");
  return `${lines.join("\n")}\n`;
}

function checkedElement(target: SetElement): { set: string; ip: string } {
  const ip = checkIp(target.ip);
  const family = setFamily(String(target.set));
  if (family !== undefined && family !== ipFamily(ip)) {
    throw new InvalidValueError("set element", `${ip} is IPv${ipFamily(ip)} but set ${target.set} holds IPv${family}`);
  }
  return { set: ipsetName(target.set), ip };
}

/**
 * `add <set> <ip> timeout <n> packets 0 bytes 0` (with `ipset -exist`: adds, or replaces the timeout of an
 * existing entry). The counters restart at 0 on every grant, as an nftables refresh (delete + add) does.
 */
export function renderIpsetAdd(target: GrantTarget): string {
  const { set, ip } = checkedElement(target);
  return `add ${set} ${ip} timeout ${checkTimeout(target.timeoutSeconds)} packets 0 bytes 0\n`;
}

/** `del <set> <ip>` (with `ipset -exist`: no error when absent). */
export function renderIpsetDel(target: SetElement): string {
  const { set, ip } = checkedElement(target);
  return `del ${set} ${ip}\n`;
}

/**
 * The complete iptables ruleset. `elements`: live leases to put back into the (flushed) sets;
 * `withoutCounters`: ipset names of ours that exist without the `counters` option (replaced first). Pure;
 * throws InvalidValueError when a set element fails its check (config values come checked by the config view).
 */
export function renderIptablesRuleset(
  config: KnockportConfig,
  options: { elements?: readonly GrantTarget[]; withoutCounters?: ReadonlySet<string> } = {},
): IptablesRuleset {
  const logical = rulesetSetNames(config);
  const ipset: string[] = ["# KnockPort ipsets, generated: load with ipset -exist restore"];
  const create = (name: string, family: IpFamily | undefined): string => `create ${name} hash:ip family ${family === 4 ? "inet" : "inet6"} timeout 0 counters`;
  for (const name of logical) {
    const family = setFamily(name);
    const real = ipsetName(name);
    if (options.withoutCounters?.has(real)) {
      // Made by a version without per-element counters: `create -exist` refuses a set whose options
      // differ, and the rules still reference it, so it cannot be destroyed. A swap exchanges it for a
      // fresh set with counters in place (the rules follow); the old one is then unreferenced.
      const fresh = ipsetUpgradeName(real);
      ipset.push(create(fresh, family), `flush ${fresh}`, `swap ${real} ${fresh}`, `destroy ${fresh}`);
    }
    ipset.push(create(real, family));
    ipset.push(`flush ${real}`);
  }
  const known = new Set(logical);
  for (const e of options.elements ?? []) {
    if (!known.has(e.set)) throw new FirewallError("UNKNOWN_SET", `cannot re-add an element to set ${JSON.stringify(String(e.set).slice(0, 48))}: this ruleset does not define it`);
    ipset.push(renderIpsetAdd(e).trimEnd());
  }
  return { ipset: `${ipset.join("\n")}\n`, v4: renderFamily(config, 4), v6: renderFamily(config, 6), jumps: iptablesJumps() };
}

/** Everything `--dry-run` prints for the iptables backend, in apply order. */
export function renderIptablesDryRun(config: KnockportConfig): string {
  const r = renderIptablesRuleset(config);
  const jumps = r.jumps.map((j) => `-t ${j.table} -I ${j.builtin} 1 ${j.spec.map((s) => (s.includes(" ") ? `"${s}"` : s)).join(" ")}`);
  return [
    "### ipset -exist restore",
    r.ipset.trimEnd(),
    "### iptables-restore --noflush",
    r.v4.trimEnd(),
    "### ip6tables-restore --noflush",
    r.v6.trimEnd(),
    "### jumps from the built-in chains (iptables and ip6tables, each inserted once)",
    ...jumps,
    "",
  ].join("\n");
}

/** The mangle KNOCKPORT-PREROUTING rule of one app in one family (the guard before DNAT, see packages/firewall guard.ts). */
function renderIptablesGuardRule(app: AppConfig, family: IpFamily, ipset: string): string[] {
  return [
    "-i", app.interfaceExt, "-p", app.protocol, "--dport", `${app.port}`,
    "-m", "conntrack", "--ctdir", "ORIGINAL",
    "-m", "set", "!", "--match-set", ipset, "src", "!", "--update-counters",
    "-m", "comment", "--comment", `"${guardComment(app, family)}"`,
    "-j", "DROP",
  ];
}
