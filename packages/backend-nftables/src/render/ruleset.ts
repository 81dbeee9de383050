import { publicHttpPort, publicHttpsPort, type FirewallApp as AppConfig, type FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import { CUSTOM_JUMP_COMMENT, FirewallError, GUARD_PRIORITY, HTTPS_METER_V4, HTTPS_METER_V6, HTTPS_SET_V4, HTTPS_SET_V6, NFT_CHAINS, NFT_TABLE, OWN_TABLE, STEP1_MAX_PACKET_LENGTH, forwardedApps, placedName, renderNftGuardRules, renderPostPathMatch, rulesetSetNames, serviceSetName, syncSetName, type ForwardedApp, type GrantTarget, type NftPlacement } from "@knockport/firewall";
import { renderAddElement } from "./elements.js";
import type { ExistingObjects } from "./custom.js";

/** Addresses each HTTPS connection meter tracks at once; when full, a new address is not limited. */
export const HTTPS_METER_SIZE = 65535;

const TCP_FLAGS = "tcp flags & (fin | syn | rst | ack)";

export interface RenderRulesetOptions {
  /** Live leases re-added in the same transaction (the reload wipes the old sets); each `set` must be ours. */
  readonly elements?: readonly GrantTarget[];
  readonly placement?: NftPlacement;
  /** Admin's table: what of ours it holds now, removed in the same transaction (no duplicate jump, no stale set). */
  readonly existing?: ExistingObjects;
  /** Interfaces missing now (global.allow_missing_interfaces): their apps' ports are dropped on every interface. */
  readonly missingInterfaces?: readonly string[];
}

/** What a rendered ruleset puts into the kernel: our chains with their rule counts, the admin's jumps, our sets. */
export interface NftLayout {
  readonly chains: readonly { readonly name: string; readonly rules: number }[];
  readonly jumps: readonly { readonly from: string; readonly to: string }[];
  readonly sets: readonly string[];
}

/**
 * The rendering of a config that not every config needs, loaded only when it does (the running helper
 * imports them on demand): forwarded apps (render/forward.ts), an admin's table (render/custom.ts).
 */
export interface RulesetParts {
  readonly forwardRules?: (forwarded: readonly ForwardedApp[], setRef: (logical: string) => string) => { pre: string[]; fwd: string[]; post: string[] };
  readonly customHead?: (placement: NftPlacement, existing: ExistingObjects) => string[];
}

export function quoteIfaces(names: readonly string[]): string {
  const quoted = names.map((n) => `"${n}"`);
  return quoted.length === 1 ? (quoted[0] ?? "") : `{ ${quoted.join(", ")} }`;
}

export function comment(text: string): string {
  return `comment "${text}"`;
}

function needed<T>(part: T | undefined, what: string): T {
  if (part === undefined) throw new FirewallError("INVALID_VALUE", `the ${what} rendering was not loaded`);
  return part;
}

/**
 * The complete `nft -f` script, one transaction: our own table is deleted (`table … {}` first makes that
 * safe when it is absent) and declared whole; in an admin's table what of ours it holds goes first. Config
 * values are interpolated as the config view's schema checked them; set elements are checked (InvalidValueError).
 * Knock ports are guarded on every interface_ext the config names, a service port on its own app's.
 */
export function buildNftRuleset(config: KnockportConfig, options: RenderRulesetOptions, parts: RulesetParts): { text: string; layout: NftLayout } {
  const placement = options.placement ?? OWN_TABLE;
  const custom = placement.custom;
  const setRef = (logical: string): string => `@${placedName(placement, logical)}`;
  const layout = { chains: [] as { name: string; rules: number }[], jumps: [] as { from: string; to: string }[], sets: [] as string[] };
  const apps = config.apps;
  const missing = new Set(options.missingInterfaces ?? []);
  const missingOf = (app: AppConfig): string | undefined =>
    [app.interfaceExt, ...(app.destination.kind === "forward" ? [app.interfaceInt] : [])].find((i) => missing.has(i));
  const forwarded = forwardedApps(config).filter((f) => missingOf(f.app) === undefined);
  // WAF mode: the stealth and HTTPS-set rules guard nginx's public ports instead of KnockPort's own.
  const httpPort = publicHttpPort(config);
  const httpsPort = publicHttpsPort(config);
  const knockIfaces = [...new Set([config.global.interfaceExt, ...apps.map((a) => a.interfaceExt)])];
  // Every knock interface missing: the knock ports are guarded on every interface but loopback until one appears.
  const anywhere = knockIfaces.every((i) => missing.has(i));
  const iifKnock = anywhere ? 'iifname != "lo"' : `iifname ${quoteIfaces(knockIfaces)}`;
  const oifKnock = anywhere ? 'oifname != "lo"' : `oifname ${quoteIfaces(knockIfaces)}`;

  const lines: string[] = [];
  const add = (indent: number, text: string): void => void lines.push(`${"\t".repeat(indent)}${text}`);
  const setBody = (name: string, body: readonly string[]): void => {
    layout.sets.push(name);
    add(1, `set ${name} {`);
    for (const b of body) add(2, b);
    add(1, "}");
    add(0, "");
  };
  // Every element counts its own packets and bytes (knockport status, per lease).
  const set = (logical: string, type: string, text: string): void => setBody(placedName(placement, logical), [`type ${type}`, "flags timeout", "counter", comment(text)]);
  // A meter element is one address's limiter state; it goes a minute after that address's last new connection.
  const meter = (logical: string, type: string, text: string): void =>
    setBody(placedName(placement, logical), [`type ${type}`, `size ${HTTPS_METER_SIZE}`, "flags dynamic,timeout", "timeout 1m", comment(text)]);
  // In an admin's table input / forward (and output when named) are regular chains of ours, one jump from
  // the admin's base chain each; every other chain stays a base chain of ours.
  const jumpFrom = (logical: string): string | undefined =>
    logical === NFT_CHAINS.input ? custom?.input : logical === NFT_CHAINS.forward ? custom?.forward : logical === NFT_CHAINS.output ? custom?.output : undefined;
  const chain = (logical: string, hook: string, text: string, rules: readonly string[], type = "filter"): void => {
    const name = placedName(placement, logical);
    const from = jumpFrom(logical);
    layout.chains.push({ name, rules: rules.length });
    add(1, `chain ${name} {`);
    if (from === undefined) add(2, `type ${type} hook ${hook}; policy accept;`);
    else layout.jumps.push({ from, to: name });
    add(2, comment(from === undefined ? text : `${text}; jumped to from chain ${from}`));
    for (const r of rules) add(2, r);
    add(1, "}");
  };

  if (custom === undefined) {
    add(0, "# KnockPort nftables ruleset, generated: do not edit. Loading it replaces table inet knockport");
    add(0, "# atomically (one transaction); set elements are wiped unless re-added at the end of this file.");
    add(0, `table ${NFT_TABLE} {}`);
    add(0, `delete table ${NFT_TABLE}`);
    add(0, `table ${NFT_TABLE} {`);
    add(1, comment("KnockPort port-knocking gateway, managed by knockport-helper"));
  } else {
    for (const line of needed(parts.customHead, "custom table")(placement, options.existing ?? { jumps: [], chains: [], sets: [] })) add(0, line);
  }
  add(0, "");
  for (const [logical, type, fam] of [[HTTPS_SET_V4, "ipv4_addr", "IPv4"], [HTTPS_SET_V6, "ipv6_addr", "IPv6"]] as const) {
    set(logical, type, `${fam} clients that passed step 1: may reach HTTPS knock port ${httpsPort}`);
  }
  const limit = config.global.httpsConnectionLimit;
  const perMinute = limit === undefined ? 0 : limit.perMinute;
  const burst = limit === undefined ? 0 : limit.burst;
  if (limit !== undefined) {
    for (const [logical, type, fam] of [[HTTPS_METER_V4, "ipv4_addr", "IPv4"], [HTTPS_METER_V6, "ipv6_addr", "IPv6"]] as const) {
      meter(logical, type, `${fam} clients that passed step 1: new connections to HTTPS knock port ${httpsPort}, per address`);
    }
  }
  for (const app of apps) {
    const svc = `${app.protocol}/${app.port}`;
    set(serviceSetName(app.name, 4), "ipv4_addr", `IPv4 clients that passed step 2 of app ${app.name}: may reach ${svc}`);
    set(serviceSetName(app.name, 6), "ipv6_addr", `IPv6 clients that passed step 2 of app ${app.name}: may reach ${svc}`);
  }
  setBody(syncSetName(placement), ["type mark", "flags timeout", comment("knockport-helper: marks each change it applied (one element)")]);

  const http = `tcp dport ${httpPort}`;
  const knockPort = `HTTP knock port ${httpPort}`;
  chain(NFT_CHAINS.rawPrerouting, "prerouting priority raw", "stateless stealth HTTP knock port (incoming)", [
    `${iifKnock} ${http} notrack ${comment(`${knockPort}: no conntrack entry for knocks or scans`)}`,
  ]);
  add(0, "");
  chain(NFT_CHAINS.rawOutput, "output priority raw", "stateless stealth HTTP knock port (replies)", [
    `${oifKnock} tcp sport ${httpPort} notrack ${comment(`${knockPort}: no conntrack entry for replies`)}`,
  ]);
  add(0, "");
  const guard = apps.flatMap((app) => {
    const absent = missingOf(app);
    if (absent === undefined) return renderNftGuardRules(app, setRef);
    const svc = `${app.protocol} dport ${app.port}`;
    return [`${svc} ct direction original counter drop ${comment(`app ${app.name} ${app.protocol}/${app.port}: interface ${absent} is missing; dropped on every interface before any DNAT`)}`];
  });
  chain(NFT_CHAINS.guard, `prerouting priority ${GUARD_PRIORITY}`, "every app port by its original destination, before any DNAT; only drops traffic of its own ports", guard);
  add(0, "");

  const https = `${iifKnock} tcp dport ${httpsPort}`;
  const input: string[] = [];
  if (config.waf) {
    // WAF mode: KnockPort's own ports serve only the local nginx.
    const own = [config.httpPort, config.httpsPort];
    input.push(`${iifKnock} tcp dport { ${own.join(", ")} } counter drop ${comment(`WAF mode: KnockPort's own ports ${own.join(" and ")} are reached only through nginx`)}`);
  }
  input.push(
    `${iifKnock} ${http} ${TCP_FLAGS} == syn counter accept ${comment(`${knockPort}: connection request (SYN)`)}`,
    `${iifKnock} ${http} tcp flags & rst == rst counter accept ${comment(`${knockPort}: reset from the client`)}`,
    `${iifKnock} ${http} meta length <= ${STEP1_MAX_PACKET_LENGTH} ${renderPostPathMatch(config.global.httpPostPath)} counter accept ${comment(
      `${knockPort}: step-1 knock, a segment starting with POST <http_post_path>`,
    )}`,
    `${iifKnock} ${http} counter drop ${comment(`${knockPort}: everything else, so scans learn nothing`)}`,
  );
  // The connection limit drops a knocked address's SYN before the server does any TLS work; `ct state new`
  // first, so only new connections are looked up (the HTTPS port is conntracked, unlike the stealth port).
  if (limit !== undefined) {
    for (const [ipKw, leases, meterSet, fam] of [["ip", HTTPS_SET_V4, HTTPS_METER_V4, "IPv4"], ["ip6", HTTPS_SET_V6, HTTPS_METER_V6, "IPv6"]] as const) {
      input.push(
        `${https} ct state new ${ipKw} saddr ${setRef(leases)} update ${setRef(meterSet)} { ${ipKw} saddr limit rate over ${perMinute}/minute burst ${burst} packets } counter drop ${comment(
          `HTTPS knock port ${httpsPort}: ${fam} client over ${perMinute} new connections a minute (burst ${burst})`,
        )}`,
      );
    }
  }
  input.push(
    `${https} ip saddr ${setRef(HTTPS_SET_V4)} counter accept ${comment(`HTTPS knock port ${httpsPort}: IPv4 clients that passed step 1`)}`,
    `${https} ip6 saddr ${setRef(HTTPS_SET_V6)} counter accept ${comment(`HTTPS knock port ${httpsPort}: IPv6 clients that passed step 1`)}`,
    `${https} counter drop ${comment(`HTTPS knock port ${httpsPort}: everyone else`)}`,
  );
  for (const app of apps) {
    const iif = `iifname ${quoteIfaces([app.interfaceExt])}`;
    const svc = `${app.protocol} dport ${app.port}`;
    const what = `app ${app.name} ${app.protocol}/${app.port}`;
    const absent = missingOf(app);
    if (absent !== undefined) {
      input.push(`${svc} counter drop ${comment(`${what}: interface ${absent} is missing; dropped on every interface until it appears`)}`);
    } else if (app.destination.kind === "forward") {
      // Its clients are DNATed in prerouting and never get here: nobody may reach a local listener on the public port.
      input.push(`${iif} ${svc} counter drop ${comment(`${what}: forwarded to a LAN host; nothing local is served on it`)}`);
    } else {
      input.push(
        `${iif} ${svc} ip saddr ${setRef(serviceSetName(app.name, 4))} counter accept ${comment(`${what}: IPv4 clients that passed step 2`)}`,
        `${iif} ${svc} ip6 saddr ${setRef(serviceSetName(app.name, 6))} counter accept ${comment(`${what}: IPv6 clients that passed step 2`)}`,
        `${iif} ${svc} counter drop ${comment(`${what}: everyone else`)}`,
      );
    }
  }
  chain(NFT_CHAINS.input, "input priority filter - 10", "knock ports and service ports; only drops traffic of its own ports", input);
  add(0, "");
  chain(NFT_CHAINS.output, "output priority filter - 10", "replies from the stealth HTTP knock port", [
    `${oifKnock} tcp sport ${httpPort} ${TCP_FLAGS} == syn | ack counter accept ${comment(`${knockPort}: SYN-ACK, so the client can send its knock`)}`,
    `${oifKnock} tcp sport ${httpPort} counter drop ${comment(`${knockPort}: every other reply, the client learns nothing`)}`,
  ]);
  if (forwarded.length > 0) {
    const { pre, fwd, post } = needed(parts.forwardRules, "forwarding")(forwarded, setRef);
    add(0, "");
    chain(NFT_CHAINS.natPrerouting, "prerouting priority dstnat - 10", "DNAT of forwarded apps, only for clients that passed step 2", pre, "nat");
    add(0, "");
    chain(NFT_CHAINS.forward, "forward priority filter - 10", "forwarded apps: only drops traffic to its own LAN destinations", fwd);
    if (post.length > 0) {
      add(0, "");
      chain(NFT_CHAINS.natPostrouting, "postrouting priority srcnat - 10", "masquerade of forwarded apps towards interface_int", post, "nat");
    }
  }
  add(0, "}");
  for (const j of layout.jumps) add(0, `insert rule ${placement.table} ${j.from} jump ${j.to} ${comment(CUSTOM_JUMP_COMMENT)}`);
  const known = new Set(rulesetSetNames(config));
  for (const e of options.elements ?? []) {
    if (!known.has(e.set)) {
      throw new FirewallError("UNKNOWN_SET", `cannot re-add an element to set ${JSON.stringify(String(e.set).slice(0, 48))}: this ruleset does not define it`);
    }
    add(0, renderAddElement(e, placement));
  }
  return { text: `${lines.join("\n")}\n`, layout };
}
