import { publicHttpPort, publicHttpsPort, type FirewallApp as AppConfig, type FirewallConfig as KnockportConfig } from "@knockport/config/firewall";
import {
  CUSTOM_JUMP_COMMENT,
  FirewallError,
  GUARD_PRIORITY,
  HTTPS_METER_V4,
  HTTPS_METER_V6,
  HTTPS_SET_V4,
  HTTPS_SET_V6,
  InvalidValueError,
  NFT_CHAINS,
  NFT_TABLE,
  OWN_TABLE,
  STEP1_MAX_PACKET_LENGTH,
  allApps,
  checkComment,
  checkConnectionLimit,
  checkHandle,
  checkInterface,
  checkNftIdentifier,
  checkPlacement,
  checkPort,
  checkProtocol,
  forwardedApps,
  isOurCustomChain,
  isOurCustomSet,
  placedName,
  renderAddElement,
  renderNftGuardRules,
  renderPostPathMatch,
  rulesetSetNames,
  serviceSetName,
  syncSetName,
  type ForwardedApp,
  type GrantTarget,
  type NftPlacement,
} from "@knockport/firewall";

/** Addresses each HTTPS connection meter tracks at once; when full, a new address is not limited. */
export const HTTPS_METER_SIZE = 65535;

/** The handshake flags; `== syn` is a pure SYN, `== syn | ack` a pure SYN-ACK. */
const TCP_FLAGS = "tcp flags & (fin | syn | rst | ack)";

export interface RenderRulesetOptions {
  /**
   * Elements to put back into the fresh sets in the same transaction (a reload wipes the old sets):
   * live leases with their remaining time. Every `set` must be one this ruleset defines.
   */
  readonly elements?: readonly GrantTarget[];
  /** Where the sets and chains go: our own `table inet knockport` (default) or an admin's table. */
  readonly placement?: NftPlacement;
  /**
   * Admin's table only: what of ours it holds now (read from its listing just before), removed in the
   * same transaction so nothing is duplicated and sets of removed apps go.
   */
  readonly existing?: ExistingObjects;
  /**
   * Interfaces of the config that do not exist right now (global.allow_missing_interfaces): a rule
   * naming only them matches nothing, so the ports they guard are dropped on every interface instead.
   */
  readonly missingInterfaces?: readonly string[];
}

/** KnockPort's objects found in an admin's table (names are kernel names, `knockport_*`). */
export interface ExistingObjects {
  /** Rules carrying CUSTOM_JUMP_COMMENT, in whichever chain of the table they are. */
  readonly jumps: readonly { readonly chain: string; readonly handle: number }[];
  readonly chains: readonly string[];
  readonly sets: readonly string[];
}

export const NO_EXISTING_OBJECTS: ExistingObjects = { jumps: [], chains: [], sets: [] };

/** What a rendered ruleset puts into the kernel (for the self-heal check of an admin's table). */
export interface NftLayout {
  /** Our chains (kernel names) with the number of rules each holds. */
  readonly chains: readonly { readonly name: string; readonly rules: number }[];
  /** Admin's table only: one jump per entry, from the admin's base chain to ours. */
  readonly jumps: readonly { readonly from: string; readonly to: string }[];
  /** Our sets (kernel names). */
  readonly sets: readonly string[];
}

function quoteIfaces(names: readonly string[]): string {
  const quoted = names.map((n) => `"${checkInterface(n)}"`);
  return quoted.length === 1 ? (quoted[0] ?? "") : `{ ${quoted.join(", ")} }`;
}

function comment(text: string): string {
  return `comment "${checkComment(text)}"`;
}

/**
 * The complete `nft -f` script: creates `table inet knockport` from scratch in one transaction
 * (`table … {}` makes the delete safe when the table is absent; the delete drops every old chain,
 * set and element; then the full table). Pure: throws InvalidValueError if any interpolated value fails its re-check.
 *
 * The knock ports are guarded on every external interface the config names (global and per-app
 * `interface_ext`), so a knock port is stealthy on each interface clients can come from; a service
 * port is guarded on its own app's `interface_ext`.
 */
export function renderNftRuleset(config: KnockportConfig, options: RenderRulesetOptions = {}): string {
  return buildNftRuleset(config, options).text;
}

/** The sets, chains and jumps `renderNftRuleset(config, { placement, missingInterfaces })` creates. */
export function nftLayout(config: KnockportConfig, placement: NftPlacement = OWN_TABLE, missingInterfaces: readonly string[] = []): NftLayout {
  return buildNftRuleset(config, { placement, missingInterfaces }).layout;
}

function buildNftRuleset(config: KnockportConfig, options: RenderRulesetOptions): { text: string; layout: NftLayout } {
  const placement = checkPlacement(options.placement ?? OWN_TABLE);
  const custom = placement.custom;
  const table = placement.table;
  const setRef = (logical: string): string => `@${placedName(placement, logical)}`;
  const layout: { chains: { name: string; rules: number }[]; jumps: { from: string; to: string }[]; sets: string[] } = {
    chains: [],
    jumps: [],
    sets: [],
  };
  const apps = allApps(config);
  const missing = new Set(options.missingInterfaces ?? []);
  const missingOf = (app: AppConfig): string | undefined =>
    [app.interfaceExt, ...(app.destination.kind === "forward" ? [app.interfaceInt] : [])].find((i) => missing.has(i));
  const forwarded = forwardedApps(config).filter((f) => missingOf(f.app) === undefined);
  // WAF mode: the stealth and HTTPS-set rules guard nginx's public ports instead of KnockPort's own.
  const httpPort = checkPort(publicHttpPort(config), "HTTP knock port");
  const httpsPort = checkPort(publicHttpsPort(config), "HTTPS knock port");
  const knockIfaces = [...new Set([config.global.interfaceExt, ...apps.map((a) => a.interfaceExt)])];
  // Every knock interface missing: the knock ports are guarded on every interface but loopback until one appears.
  const knockAnywhere = knockIfaces.every((i) => missing.has(i));
  const iifKnock = knockAnywhere ? 'iifname != "lo"' : `iifname ${quoteIfaces(knockIfaces)}`;
  const oifKnock = knockAnywhere ? 'oifname != "lo"' : `oifname ${quoteIfaces(knockIfaces)}`;
  const postMatch = renderPostPathMatch(config.global.httpPostPath);

  const lines: string[] = [];
  const add = (indent: number, text: string): void => {
    lines.push(`${"\t".repeat(indent)}${text}`);
  };
  const set = (logical: string, type: "ipv4_addr" | "ipv6_addr", text: string): void => {
    const name = placedName(placement, logical);
    layout.sets.push(name);
    add(1, `set ${name} {`);
    add(2, `type ${type}`);
    add(2, "flags timeout");
    // Every element gets its own packet/byte counter (what `knockport status` shows per lease); a set
    // lookup that matches counts the packet.
    add(2, "counter");
    add(2, comment(text));
    add(1, "}");
    add(0, "");
  };
  // The limiter state of one address lives in its meter element; it expires a minute after the
  // address's last new connection (`update` refreshes the timeout), when its bucket is full again anyway.
  const meter = (logical: string, type: "ipv4_addr" | "ipv6_addr", text: string): void => {
    const name = placedName(placement, logical);
    layout.sets.push(name);
    add(1, `set ${name} {`);
    add(2, `type ${type}`);
    add(2, `size ${HTTPS_METER_SIZE}`);
    add(2, "flags dynamic,timeout");
    add(2, "timeout 1m");
    add(2, comment(text));
    add(1, "}");
    add(0, "");
  };
  // In an admin's table, input / forward (and output when named) are regular chains of ours reached by
  // one jump from the admin's base chain; everything else stays a base chain of ours, in that table.
  const jumpFrom = (logical: string): string | undefined =>
    custom === undefined
      ? undefined
      : logical === NFT_CHAINS.input
        ? custom.input
        : logical === NFT_CHAINS.forward
          ? custom.forward
          : logical === NFT_CHAINS.output
            ? custom.output
            : undefined;
  const chain = (logical: string, hook: string, text: string, rules: readonly string[], type: "filter" | "nat" = "filter"): void => {
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
    add(0, `# KnockPort nftables rules inside the admin's table ${table}, generated: do not edit. Loading it`);
    add(0, "# replaces KnockPort's own sets, chains and jumps there (all named knockport_*) in one transaction and");
    add(0, "# leaves every other object of the table alone; set elements are wiped unless re-added at the end.");
    for (const line of renderRemoveOurs(placement, options.existing ?? NO_EXISTING_OBJECTS)) add(0, line);
    // Declaring an existing table adds to it; the helper checked that it exists before.
    add(0, `table ${table} {`);
  }
  add(0, "");
  set(HTTPS_SET_V4, "ipv4_addr", `IPv4 clients that passed step 1: may reach HTTPS knock port ${httpsPort}`);
  set(HTTPS_SET_V6, "ipv6_addr", `IPv6 clients that passed step 1: may reach HTTPS knock port ${httpsPort}`);
  const limit = config.global.httpsConnectionLimit;
  const perMinute = limit === undefined ? 0 : checkConnectionLimit(limit.perMinute, "https_connection_limit_per_minute");
  const burst = limit === undefined ? 0 : checkConnectionLimit(limit.burst, "https_connection_limit_burst");
  if (limit !== undefined) {
    meter(HTTPS_METER_V4, "ipv4_addr", `IPv4 clients that passed step 1: new connections to HTTPS knock port ${httpsPort}, per address`);
    meter(HTTPS_METER_V6, "ipv6_addr", `IPv6 clients that passed step 1: new connections to HTTPS knock port ${httpsPort}, per address`);
  }
  for (const app of apps) {
    const proto = checkProtocol(app.protocol);
    const port = checkPort(app.port, `${app.name}.port`);
    set(serviceSetName(app.name, 4), "ipv4_addr", `IPv4 clients that passed step 2 of app ${app.name}: may reach ${proto}/${port}`);
    set(serviceSetName(app.name, 6), "ipv6_addr", `IPv6 clients that passed step 2 of app ${app.name}: may reach ${proto}/${port}`);
  }

  const sync = syncSetName(placement);
  layout.sets.push(sync);
  add(1, `set ${sync} {`);
  add(2, "type mark");
  add(2, "flags timeout");
  add(2, comment("knockport-helper: marks each change it applied (one element)"));
  add(1, "}");
  add(0, "");

  const http = `tcp dport ${httpPort}`;
  chain(NFT_CHAINS.rawPrerouting, "prerouting priority raw", "stateless stealth HTTP knock port (incoming)", [
    `${iifKnock} ${http} notrack ${comment(`HTTP knock port ${httpPort}: no conntrack entry for knocks or scans`)}`,
  ]);
  add(0, "");
  chain(NFT_CHAINS.rawOutput, "output priority raw", "stateless stealth HTTP knock port (replies)", [
    `${oifKnock} tcp sport ${httpPort} notrack ${comment(`HTTP knock port ${httpPort}: no conntrack entry for replies`)}`,
  ]);
  add(0, "");

  chain(
    NFT_CHAINS.guard,
    `prerouting priority ${GUARD_PRIORITY}`,
    "every app port by its original destination, before any DNAT; only drops traffic of its own ports",
    apps.flatMap((app) => {
      const absent = missingOf(app);
      if (absent === undefined) return renderNftGuardRules(app, setRef);
      const svc = `${checkProtocol(app.protocol)} dport ${checkPort(app.port, `${app.name}.port`)}`;
      return [`${svc} ct direction original counter drop ${comment(`app ${app.name} ${app.protocol}/${app.port}: interface ${checkInterface(absent)} is missing; dropped on every interface before any DNAT`)}`];
    }),
  );
  add(0, "");

  const input: string[] = [
    ...(config.waf ? [renderWafOwnPortsDrop(config, iifKnock)] : []),
    `${iifKnock} ${http} ${TCP_FLAGS} == syn counter accept ${comment(`HTTP knock port ${httpPort}: connection request (SYN)`)}`,
    `${iifKnock} ${http} tcp flags & rst == rst counter accept ${comment(`HTTP knock port ${httpPort}: reset from the client`)}`,
    `${iifKnock} ${http} meta length <= ${STEP1_MAX_PACKET_LENGTH} ${postMatch} counter accept ${comment(
      `HTTP knock port ${httpPort}: step-1 knock, a segment starting with POST <http_post_path>`,
    )}`,
    `${iifKnock} ${http} counter drop ${comment(`HTTP knock port ${httpPort}: everything else, so scans learn nothing`)}`,
    // The connection limit: a knocked address opening connections faster than allowed has its SYN
    // dropped here, before the server does any TLS work. `ct state new` comes first so only new
    // connections are looked up (the HTTPS port is conntracked, unlike the stealth HTTP port).
    ...(limit === undefined
      ? []
      : ([
          ["ip", HTTPS_SET_V4, HTTPS_METER_V4, "IPv4"],
          ["ip6", HTTPS_SET_V6, HTTPS_METER_V6, "IPv6"],
        ] as const).map(
          ([ipKw, leases, meterSet, fam]) =>
            `${iifKnock} tcp dport ${httpsPort} ct state new ${ipKw} saddr ${setRef(leases)} update ${setRef(meterSet)} { ${ipKw} saddr limit rate over ${perMinute}/minute burst ${burst} packets } counter drop ${comment(
              `HTTPS knock port ${httpsPort}: ${fam} client over ${perMinute} new connections a minute (burst ${burst})`,
            )}`,
        )),
    `${iifKnock} tcp dport ${httpsPort} ip saddr ${setRef(HTTPS_SET_V4)} counter accept ${comment(
      `HTTPS knock port ${httpsPort}: IPv4 clients that passed step 1`,
    )}`,
    `${iifKnock} tcp dport ${httpsPort} ip6 saddr ${setRef(HTTPS_SET_V6)} counter accept ${comment(
      `HTTPS knock port ${httpsPort}: IPv6 clients that passed step 1`,
    )}`,
    `${iifKnock} tcp dport ${httpsPort} counter drop ${comment(`HTTPS knock port ${httpsPort}: everyone else`)}`,
  ];
  for (const app of apps) {
    const iif = `iifname ${quoteIfaces([app.interfaceExt])}`;
    const svc = `${checkProtocol(app.protocol)} dport ${checkPort(app.port, `${app.name}.port`)}`;
    const what = `app ${app.name} ${app.protocol}/${app.port}`;
    const absent = missingOf(app);
    if (absent !== undefined) {
      input.push(`${svc} counter drop ${comment(`${what}: interface ${checkInterface(absent)} is missing; dropped on every interface until it appears`)}`);
      continue;
    }
    if (app.destination.kind === "forward") {
      // Clients in the app's set are DNATed in prerouting and never get here; nobody else may reach a
      // local listener on the public port.
      input.push(`${iif} ${svc} counter drop ${comment(`${what}: forwarded to a LAN host; nothing local is served on it`)}`);
      continue;
    }
    input.push(
      `${iif} ${svc} ip saddr ${setRef(serviceSetName(app.name, 4))} counter accept ${comment(`${what}: IPv4 clients that passed step 2`)}`,
      `${iif} ${svc} ip6 saddr ${setRef(serviceSetName(app.name, 6))} counter accept ${comment(`${what}: IPv6 clients that passed step 2`)}`,
      `${iif} ${svc} counter drop ${comment(`${what}: everyone else`)}`,
    );
  }
  chain(NFT_CHAINS.input, "input priority filter - 10", "knock ports and service ports; only drops traffic of its own ports", input);
  add(0, "");
  chain(NFT_CHAINS.output, "output priority filter - 10", "replies from the stealth HTTP knock port", [
    `${oifKnock} tcp sport ${httpPort} ${TCP_FLAGS} == syn | ack counter accept ${comment(
      `HTTP knock port ${httpPort}: SYN-ACK, so the client can send its knock`,
    )}`,
    `${oifKnock} tcp sport ${httpPort} counter drop ${comment(`HTTP knock port ${httpPort}: every other reply, the client learns nothing`)}`,
  ]);
  if (forwarded.length > 0) renderForwarding(forwarded, add, chain, comment, setRef);
  add(0, "}");
  for (const j of layout.jumps) {
    add(0, `insert rule ${table} ${j.from} jump ${j.to} ${comment(CUSTOM_JUMP_COMMENT)}`);
  }

  const elements = options.elements ?? [];
  if (elements.length > 0) {
    const known = new Set(rulesetSetNames(config));
    for (const e of elements) {
      if (!known.has(e.set)) {
        throw new FirewallError("UNKNOWN_SET", `cannot re-add an element to set ${JSON.stringify(String(e.set).slice(0, 48))}: this ruleset does not define it`);
      }
      add(0, renderAddElement(e, placement));
    }
  }
  return { text: `${lines.join("\n")}\n`, layout };
}

/** WAF mode: KnockPort's own ports serve only the local nginx; nobody on an external interface reaches them. */
function renderWafOwnPortsDrop(config: KnockportConfig, iifKnock: string): string {
  const own = [checkPort(config.httpPort, "HTTP knock port"), checkPort(config.httpsPort, "HTTPS knock port")];
  return `${iifKnock} tcp dport { ${own.join(", ")} } counter drop ${comment(
    `WAF mode: KnockPort's own ports ${own.join(" and ")} are reached only through nginx`,
  )}`;
}

/**
 * Commands removing what of ours an admin's table holds (the jumps first: a chain still jumped to
 * cannot be deleted), plus our own `table inet knockport` of the default mode, so switching to custom
 * chains leaves no second set of drops behind. Every name is re-checked to be one of ours.
 */
function renderRemoveOurs(placement: NftPlacement, existing: ExistingObjects): string[] {
  const table = placement.table;
  const out = [`table ${NFT_TABLE} {}`, `delete table ${NFT_TABLE}`];
  for (const j of existing.jumps) out.push(`delete rule ${table} ${checkNftIdentifier(j.chain, "chain")} handle ${checkHandle(j.handle)}`);
  for (const c of existing.chains) {
    if (!isOurCustomChain(c)) throw new InvalidValueError("chain", `${JSON.stringify(c.slice(0, 80))} is not one of KnockPort's chains`);
    out.push(`flush chain ${table} ${c}`, `delete chain ${table} ${c}`);
  }
  for (const s of existing.sets) {
    if (!isOurCustomSet(s)) throw new InvalidValueError("set", `${JSON.stringify(s.slice(0, 80))} is not one of KnockPort's sets`);
    out.push(`delete set ${table} ${s}`);
  }
  return out;
}

type ChainFn = (logical: string, hook: string, text: string, rules: readonly string[], type?: "filter" | "nat") => void;

/**
 * Forwarded apps (`destination: IP[:PORT]`):
 * - nat prerouting: packets from the app's set to the public port on interface_ext are DNATed to the
 *   LAN host (only set members: nobody else is ever translated);
 * - forward: the TRANSLATED destination (LAN address and LAN port) is accepted for set members whose
 *   connection was DNATed by us, everything else arriving on interface_ext for that destination is
 *   dropped (also a bystander routing straight to the LAN address, and a flow whose lease expired);
 * - nat postrouting: masquerade towards interface_int unless the app says `masquerade: false`.
 * A destination of one family is reached by clients of that family only (no NAT64).
 */
function renderForwarding(
  forwarded: readonly ForwardedApp[],
  add: (indent: number, text: string) => void,
  chain: ChainFn,
  comment: (text: string) => string,
  setRef: (logical: string) => string,
): void {
  const pre: string[] = [];
  const fwd: string[] = [];
  const post: string[] = [];
  for (const f of forwarded) {
    const app = f.app;
    const proto = checkProtocol(app.protocol);
    const pub = checkPort(app.port, `${app.name}.port`);
    const ipKw = f.family === 4 ? "ip" : "ip6";
    const set = setRef(serviceSetName(app.name, f.family));
    const target = f.family === 4 ? `${f.ip}:${f.port}` : `[${f.ip}]:${f.port}`;
    const iif = `iifname ${quoteIfaces([app.interfaceExt])}`;
    const oif = `oifname ${quoteIfaces([app.interfaceInt])}`;
    const what = `app ${app.name} ${proto}/${pub}`;
    const dst = `${ipKw} daddr ${f.ip} ${proto} dport ${f.port}`;
    pre.push(
      `${iif} ${ipKw} saddr ${set} ${proto} dport ${pub} counter dnat ${ipKw} to ${target} ${comment(
        `${what}: clients that passed step 2 go to LAN host ${target}`,
      )}`,
    );
    fwd.push(
      `${iif} ${oif} ${dst} ${ipKw} saddr ${set} ct status dnat counter accept ${comment(
        `${what}: forwarded clients that passed step 2 (translated destination)`,
      )}`,
      `${iif} ${dst} counter drop ${comment(`${what}: everyone else to LAN host ${target}`)}`,
    );
    if (app.masquerade) {
      post.push(
        `${oif} ${dst} ${ipKw} saddr ${set} ct status dnat counter masquerade ${comment(`${what}: masquerade towards the LAN host`)}`,
      );
    }
  }
  add(0, "");
  chain(NFT_CHAINS.natPrerouting, "prerouting priority dstnat - 10", "DNAT of forwarded apps, only for clients that passed step 2", pre, "nat");
  add(0, "");
  chain(NFT_CHAINS.forward, "forward priority filter - 10", "forwarded apps: only drops traffic to its own LAN destinations", fwd);
  if (post.length > 0) {
    add(0, "");
    chain(NFT_CHAINS.natPostrouting, "postrouting priority srcnat - 10", "masquerade of forwarded apps towards interface_int", post, "nat");
  }
}

/**
 * Remove everything KnockPort put into the kernel (uninstall). Idempotent: the empty `table … {}`
 * first makes the delete succeed when the table is already gone; one transaction.
 */
export function renderNftRemoveTable(): string {
  return `table ${NFT_TABLE} {}\ndelete table ${NFT_TABLE}\n`;
}

/**
 * Uninstall with custom tables: removes exactly our jumps, chains and sets from the admin's table
 * (`existing`, read from its listing just before) and our own table if present; one transaction.
 */
export function renderNftRemoveCustom(placement: NftPlacement, existing: ExistingObjects): string {
  if (checkPlacement(placement).custom === undefined) return renderNftRemoveTable();
  return `${renderRemoveOurs(placement, existing).join("\n")}\n`;
}
