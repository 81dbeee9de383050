import { parseArgs } from "node:util";
import { HELPER_USER, SHARED_FLAGS, adminSocketBeside, eventsSocketBeside, WAF_FLAGS_USAGE, withUsageErrors, UsageError, parseLogLevel, parsePortFlag, parseWafFlags, type LogLevel, type WafFlags } from "@knockport/config";
import { CUSTOM_PREFIX, NFT_IDENTIFIER_PATTERN, type CustomChains } from "@knockport/firewall";

export interface HelperOptions {
  /** Absent only with --uninstall-firewall, which needs no config. */
  configFile: string | undefined;
  firewallType: "nftables" | "iptables" | "vyos";
  /** vyos: absolute path of vbash (default: the first vbash on PATH). */
  vbash: string | undefined;
  /** iptables backend: auto, nft, legacy or an absolute path to an iptables executable. */
  iptablesBinary: string;
  socketPath: string;
  socketGroup: string | undefined;
  /** The admin socket (grant, close, list, stats, watch); default admin.sock beside --socket. */
  adminSocketPath: string;
  /** Group allowed on the admin socket (0660); without it 0600, root only. */
  adminSocketGroup: string | undefined;
  /** The events socket (watch); default events.sock beside --socket. */
  eventsSocketPath: string;
  /** Group allowed on the events socket (0660, knockport-hooks'); without it 0600, root only. */
  eventsSocketGroup: string | undefined;
  stateDir: string;
  httpPort: number | undefined;
  httpsPort: number | undefined;
  /** --waf-http-port, --waf-https-port, --waf-trusted-ips (the config loader merges them with global.waf_*). */
  waf: WafFlags;
  dryRun: boolean;
  uninstallFirewall: boolean;
  /** On SIGTERM/SIGINT, revoke live grants (the table and its drops stay). */
  serviceRuleCleanupOnShutdown: boolean;
  /** Run firewall binaries through `sudo -n` (the helper as an ordinary user). */
  useSudo: boolean;
  /** Absolute path of sudo. */
  sudoPath: string;
  /** Print the sudoers file for this backend and exit. */
  printSudoers: boolean;
  /** The user named in --print-sudoers output. */
  sudoUser: string;
  logLevel: LogLevel;
  /** nftables: hook into the admin's table and base chains instead of owning `table inet knockport`. */
  customChains: CustomChains | undefined;
}

export const HELPER_USAGE = `Usage: knockport-helper -c CONFIG [options]

Root-owned firewall helper: applies KnockPort's nftables table and opens ports on request of
knockport-server over a Unix socket.

  -c, --config FILE         config file (required)
      --firewall-type TYPE  nftables (default), iptables (ipset + KNOCKPORT-* chains) or vyos
                            (nftables plus accepts in VyOS's named chains, bootstrapped via vbash)
      --vbash PATH          vyos: vbash to run the bootstrap with (default: vbash on PATH)
      --iptables-binary B   iptables backend: auto (default: the distribution's iptables), nft,
                            legacy, or an absolute path such as /usr/sbin/iptables-legacy
      --socket PATH         knock socket, for knockport-server: hello, open, counters
                            (default /run/knockport/helper.sock)
      --socket-group GROUP  group allowed on the knock socket (mode 0660); without it 0600, root only
      --admin-socket PATH   admin socket: grant, close, list, stats (default admin.sock
                            beside --socket, /run/knockport/admin.sock)
      --admin-socket-group GROUP
                            group allowed on the admin socket (mode 0660); without it 0600, root
                            only; never the knock socket's group
      --events-socket PATH  events socket: watch, the lease events knockport-hooks runs on_open /
                            on_close from (default events.sock beside --socket)
      --events-socket-group GROUP
                            group allowed on the events socket (0660; knockport-hooks); without
                            it 0600, root only; never the knock socket's group
      --state-dir DIR       where leases are kept across restarts (default /var/lib/knockport)
      --http-port N         HTTP (step 1) knock port, overrides global.http_port (default 8080)
      --https-port N        HTTPS (step 2) knock port, overrides global.https_port (default 8443)
${WAF_FLAGS_USAGE}
      --dry-run             print the ruleset it would apply and exit; changes nothing
      --uninstall-firewall  remove KnockPort's firewall table and saved leases, then exit
      --service-rule-cleanup-on-shutdown
                            on SIGTERM/SIGINT revoke every live grant (as the original); the
                            table and its drop rules stay, so the ports stay closed
      --use-sudo            run the firewall binaries through "sudo -n" with absolute paths, so the
                            helper can run as an ordinary user (see --print-sudoers; the
                            CAP_NET_ADMIN systemd unit is the safer choice)
      --sudo-path PATH      absolute path of sudo (default /usr/bin/sudo)
      --print-sudoers       print the sudoers file allowing exactly this backend's commands, exit
      --sudo-user USER      user named in --print-sudoers output (default knockport-helper; never
                            the server's user knockport)
      --log-level LEVEL     fatal, error, warn, info (default), debug

Custom nftables table and chains (nftables only; for a host whose own ruleset must keep control):
      --nftables-table-filter NAME
                            put KnockPort's sets and chains (all named knockport_*) into the
                            existing table "inet NAME" instead of its own table inet knockport,
                            with one jump from each chain below; nothing else of the table changes
      --nftables-chain-input NAME
                            that table's base chain hooked at input to jump from (default input)
      --nftables-chain-forward NAME
                            its base chain hooked at forward (default forward; forwarded apps only)
      --nftables-chain-output NAME
                            its base chain hooked at output to jump from; without it KnockPort's
                            output rules are a base chain of its own in that table
  -h, --help                show this help
`;

export function parseHelperArgs(argv: string[]): HelperOptions | "help" {
  const parsed = withUsageErrors(() =>
    parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ...SHARED_FLAGS,
        "firewall-type": { type: "string", default: "nftables" },
        "iptables-binary": { type: "string", default: "auto" },
        vbash: { type: "string" },
        "socket-group": { type: "string" },
        "admin-socket": { type: "string" },
        "admin-socket-group": { type: "string" },
        "events-socket": { type: "string" },
        "events-socket-group": { type: "string" },
        "state-dir": { type: "string", default: "/var/lib/knockport" },
        "dry-run": { type: "boolean", default: false },
        "uninstall-firewall": { type: "boolean", default: false },
        "service-rule-cleanup-on-shutdown": { type: "boolean", default: false },
        "use-sudo": { type: "boolean", default: false },
        "sudo-path": { type: "string", default: "/usr/bin/sudo" },
        "print-sudoers": { type: "boolean", default: false },
        "sudo-user": { type: "string", default: HELPER_USER },
        "nftables-table-filter": { type: "string" },
        "nftables-chain-input": { type: "string" },
        "nftables-chain-forward": { type: "string" },
        "nftables-chain-output": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }),
  );
  const v = parsed.values;
  if (v.help) return "help";
  if (!v.config && !v["uninstall-firewall"] && !v["print-sudoers"]) {
    throw new UsageError("-c/--config is required (e.g. -c /etc/knockport/config.yaml)");
  }
  const type = v["firewall-type"];
  if (type !== "nftables" && type !== "iptables" && type !== "vyos") {
    throw new UsageError(`--firewall-type: must be nftables, iptables or vyos (got "${type}")`);
  }
  if (v.vbash !== undefined && !/^\/[A-Za-z0-9._/-]+$/.test(v.vbash)) {
    throw new UsageError(`--vbash: must be an absolute path such as /bin/vbash (got "${v.vbash.slice(0, 80)}")`);
  }
  const iptablesBinary = v["iptables-binary"];
  if (!/^(auto|nft|legacy|\/[A-Za-z0-9._/-]*\/iptables(-[a-z]+)?)$/.test(iptablesBinary)) {
    throw new UsageError(
      `--iptables-binary: must be auto, nft, legacy or an absolute path to an iptables executable such as /usr/sbin/iptables-legacy (got "${iptablesBinary.slice(0, 80)}")`,
    );
  }
  const sudoPath = v["sudo-path"];
  if (!/^\/[A-Za-z0-9._/-]+$/.test(sudoPath) || sudoPath.includes("..")) {
    throw new UsageError(`--sudo-path: must be an absolute path such as /usr/bin/sudo (got "${sudoPath.slice(0, 80)}")`);
  }
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(v["sudo-user"])) {
    throw new UsageError(`--sudo-user: must be a user name such as knockport-helper (got "${v["sudo-user"].slice(0, 40)}")`);
  }
  const customChains = parseCustomChains(v, type);
  const adminSocketPath = v["admin-socket"] ?? adminSocketBeside(v.socket);
  if (adminSocketPath === v.socket) throw new UsageError(`--admin-socket: must differ from --socket (both ${v.socket})`);
  const adminSocketGroup = v["admin-socket-group"];
  if (adminSocketGroup !== undefined && adminSocketGroup === v["socket-group"]) {
    throw new UsageError(`--admin-socket-group: must differ from --socket-group (${adminSocketGroup}): the server's group would get the admin methods`);
  }
  const eventsSocketPath = v["events-socket"] ?? eventsSocketBeside(v.socket);
  if (eventsSocketPath === v.socket || eventsSocketPath === adminSocketPath) {
    throw new UsageError(`--events-socket: must differ from --socket and --admin-socket (${eventsSocketPath})`);
  }
  const eventsSocketGroup = v["events-socket-group"];
  if (eventsSocketGroup !== undefined && eventsSocketGroup === v["socket-group"]) {
    throw new UsageError(`--events-socket-group: must differ from --socket-group (${eventsSocketGroup})`);
  }
  return {
    customChains,
    eventsSocketPath,
    eventsSocketGroup,
    useSudo: v["use-sudo"],
    sudoPath,
    printSudoers: v["print-sudoers"],
    sudoUser: v["sudo-user"],
    configFile: v.config,
    firewallType: type,
    vbash: v.vbash,
    iptablesBinary,
    socketPath: v.socket,
    socketGroup: v["socket-group"],
    adminSocketPath,
    adminSocketGroup,
    stateDir: v["state-dir"],
    httpPort: parsePortFlag("--http-port", v["http-port"]),
    httpsPort: parsePortFlag("--https-port", v["https-port"]),
    waf: parseWafFlags(v),
    dryRun: v["dry-run"],
    uninstallFirewall: v["uninstall-firewall"],
    serviceRuleCleanupOnShutdown: v["service-rule-cleanup-on-shutdown"],
    logLevel: parseLogLevel(v["log-level"]),
  };
}

const NFT_IDENTIFIER = new RegExp(NFT_IDENTIFIER_PATTERN);

function nftName(flag: string, value: string): string {
  if (!NFT_IDENTIFIER.test(value)) {
    throw new UsageError(`${flag}: must be an nftables table/chain name (letters, digits, _ and -, up to 64, not starting with a digit or -; got "${value.slice(0, 80)}")`);
  }
  if (value.startsWith(CUSTOM_PREFIX)) {
    throw new UsageError(`${flag}: names starting with ${CUSTOM_PREFIX} are reserved for KnockPort's own chains and sets (got "${value.slice(0, 80)}")`);
  }
  return value;
}

function parseCustomChains(
  v: Partial<Record<"nftables-table-filter" | "nftables-chain-input" | "nftables-chain-forward" | "nftables-chain-output", string>>,
  firewallType: string,
): CustomChains | undefined {
  const table = v["nftables-table-filter"];
  const chainFlags = (["nftables-chain-input", "nftables-chain-forward", "nftables-chain-output"] as const).filter((f) => v[f] !== undefined);
  if (table === undefined) {
    if (chainFlags.length > 0) throw new UsageError(`--${chainFlags[0]}: needs --nftables-table-filter (the table that holds the chain)`);
    return undefined;
  }
  if (firewallType !== "nftables") {
    throw new UsageError(`--nftables-table-filter: only with --firewall-type nftables (got ${firewallType})`);
  }
  const output = v["nftables-chain-output"];
  return {
    table: nftName("--nftables-table-filter", table),
    input: nftName("--nftables-chain-input", v["nftables-chain-input"] ?? "input"),
    forward: nftName("--nftables-chain-forward", v["nftables-chain-forward"] ?? "forward"),
    output: output === undefined ? undefined : nftName("--nftables-chain-output", output),
  };
}
