import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SERVER_USER, DEFAULT_ADMIN_SOCKET, DEFAULT_EVENTS_SOCKET, DEFAULT_HELPER_SOCKET, SHARED_FLAGS, WAF_FLAGS_USAGE, withUsageErrors, UsageError, formatTrustedProxy, loadConfig, parsePortFlag, parseWafFlags, refuseMissingInterfaces } from "@knockport/config";
import { CLI_ERRORS, ROOT_ERRORS, exitOnError } from "@knockport/protocol/errors";
import { genCertCommand } from "./gen-cert.js";
import { runBoth } from "./run.js";
import { fetchLeases, formatLeaseTable } from "./status.js";
import { watchLeases } from "./watch.js";
import { formatGrant, formatRevoke, grantLease, parseAdminTarget, parseDurationFlag, revokeLease } from "./admin.js";
import { KNOCK_USAGE, KnockFailure, resolveKnockSettings, runKnock } from "./knock.js";
import { DEFAULT_SERVER_CONFIG, SETUP_2FA_USAGE, parseInterval, setupTwoFactor } from "./setup-2fa.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const DEFAULT_SOCKET = DEFAULT_HELPER_SOCKET;
const ADMIN_SOCKET = DEFAULT_ADMIN_SOCKET;

const USAGE = `Usage: knockport <command> [options]

Commands:
  run                  start helper (root) and server (unprivileged) together, as the original's
                       "python src/main.py -c ... --firewall-type ..." did (needs root)
  status               list live leases: time left, counters     [--admin-socket PATH] [--json]
  watch                lease events as JSON lines (open, refresh, close, expiry) [--events-socket PATH]
  grant                open an app's port for an address by hand --app A --ip IP [--duration S] [--json]
  revoke               close an app's port for an address now    --app A --ip IP [--json]
                       (status, grant and revoke talk to the helper's admin socket, root only:
                       --admin-socket PATH, default ${DEFAULT_ADMIN_SOCKET}; watch to its events
                       socket, --events-socket PATH, default ${DEFAULT_EVENTS_SOCKET})
  check-config         validate a config file                    -c FILE [--http-port N] [--https-port N] [--waf-*]
  gen-cert             write a self-signed test certificate      [--out-dir DIR] [--name NAME] [--cn HOST] [--ip ADDR] [--owner USER] [--force]
  setup-2fa            turn on 2FA (TOTP) for a step-1 key       -k KEY [-c FILE] [-i SECONDS] [--label NAME]
  knock                knock both steps as a client              --host H --app A --http-path P --https-path P ...
  dry-run              print the firewall rules the helper would apply  -c FILE [--firewall-type T] ...
  print-sudoers        print the sudoers file for knockport-helper --use-sudo [--firewall-type T] [-c FILE]
  uninstall-firewall   remove KnockPort's firewall table or its chains in yours, and the saved leases
                       (needs root; the helper stopped)  [--firewall-type T] [--state-dir DIR]

Run "knockport <command> --help" for a command's options.
`;

const RUN_USAGE = `Usage: knockport run -c CONFIG --cert FILE --key FILE [options]

  -c, --config FILE        config file
      --firewall-type T    nftables (default)
      --http-port N        step-1 port (default global.http_port or 8080)
      --https-port N       step-2 port (default global.https_port or 8443)
      --cert FILE          TLS certificate (PEM); knockport gen-cert makes a test one
      --key FILE           TLS key (PEM), readable by --user
      --user NAME          unprivileged user for the server, with its own group (default
                           knockport; create it: useradd --system --user-group --no-create-home
                           --shell /usr/sbin/nologin knockport)
      --socket PATH        helper's knock socket (default ${DEFAULT_SOCKET}); its admin
                           socket (root only) is admin.sock beside it
      --state-dir DIR      helper state: the lease journal (default /var/lib/knockport)
      --server-state-dir DIR
                           server state: spent 2FA codes (default /var/lib/knockport-server); it
                           and the files in it are given to --user
${WAF_FLAGS_USAGE}
      --auth-check-listen WHERE  the server's auth-check listener for a reverse proxy (see knockport-server --help)
      --service-rule-cleanup-on-shutdown
                           on stop, revoke live grants (the firewall table and its drops stay)
      --nftables-table-filter NAME, --nftables-chain-input NAME,
      --nftables-chain-forward NAME, --nftables-chain-output NAME
                           hook into your own inet table and chains instead of table inet knockport
                           (passed to knockport-helper; see its --help)
`;

const HELP = { type: "boolean", short: "h" } as const;

/** knockport-helper's custom table/chain flags, which `knockport run` passes through. */
const NFTABLES_CUSTOM_FLAGS = {
  "nftables-table-filter": { type: "string" },
  "nftables-chain-input": { type: "string" },
  "nftables-chain-forward": { type: "string" },
  "nftables-chain-output": { type: "string" },
} as const;

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case "-h":
    case "--help":
    case "help":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;

    case "gen-cert":
      return genCertCommand(rest, out);

    case "check-config": {
      const { values: v } = withUsageErrors(() => parseArgs({ args: rest, strict: true, options: {
        config: { type: "string", short: "c" }, "http-port": { type: "string" }, "https-port": { type: "string" },
        "waf-http-port": SHARED_FLAGS["waf-http-port"], "waf-https-port": SHARED_FLAGS["waf-https-port"], "waf-trusted-ips": SHARED_FLAGS["waf-trusted-ips"], help: HELP } }));
      if (v.help) return out(`Usage: knockport check-config -c FILE [--http-port N] [--https-port N] [options]\n${WAF_FLAGS_USAGE}`), 0;
      if (!v.config) throw new UsageError("-c/--config is required");
      const config = loadConfig(String(v.config), {
        httpPort: parsePortFlag("--http-port", v["http-port"] as string | undefined),
        httpsPort: parsePortFlag("--https-port", v["https-port"] as string | undefined),
        ...parseWafFlags(v),
      });
      // Run on the gateway itself: a missing interface is refused here as the helper refuses it at start.
      const { waiting } = refuseMissingInterfaces(config);
      out(`${config.file}: OK`);
      for (const name of waiting) {
        out(`  interface ${name}: missing now (global.allow_missing_interfaces); its apps' ports stay dropped on every interface until it appears`);
      }
      out(`  step 1: HTTP  port ${config.httpPort}, path of ${config.global.httpPostPath.length} characters`);
      out(`  step 2: HTTPS port ${config.httpsPort}, path of ${config.global.httpsPostPath.length} characters`);
      if (config.waf) {
        const trusted = config.waf.trustedProxies.map(formatTrustedProxy).join(", ");
        out(`  WAF mode: nginx on public ports ${config.waf.httpPort} (HTTP) and ${config.waf.httpsPort} (HTTPS); KnockPort's own ports dropped on interface_ext`);
        out(`  WAF trusted proxies: ${trusted}${config.waf.trustedProxiesDefault ? " (the default: nobody was named)" : ""}`);
      }
      for (const app of config.apps) {
        out(
          `  app ${app.name}: ${app.protocol}/${app.port} ${app.destination.kind}, open ${app.durationSeconds}s after step 2, ` +
            `step-2 window ${app.step2HttpsDurationSeconds}s, ${app.accessKeysHttp.length} key pair(s), on ${app.interfaceExt}`,
        );
      }
      return 0;
    }

    case "watch": {
      const { values: v } = withUsageErrors(() => parseArgs({ args: rest, strict: true, options: { "events-socket": { type: "string", default: DEFAULT_EVENTS_SOCKET }, help: HELP } }));
      if (v.help) {
        return out(`Usage: knockport watch [--events-socket ${DEFAULT_EVENTS_SOCKET}]\nThe helper's lease events as JSON lines: first {"leases":[...]} (every live lease), then one line per open, refresh, close and expiry; exit 1 when the helper goes away.`), 0;
      }
      return watchLeases(String(v["events-socket"]), (line) => process.stdout.write(line));
    }

    case "status": {
      const { values: v } = withUsageErrors(() => parseArgs({ args: rest, strict: true, options: { "admin-socket": { type: "string", default: ADMIN_SOCKET }, json: { type: "boolean", default: false }, help: HELP } }));
      if (v.help) return out(`Usage: knockport status [--admin-socket ${ADMIN_SOCKET}] [--json]\nLive leases with time left and per-lease packet/byte counters (read by the helper every 2 s; they restart at 0 when a lease is refreshed).`), 0;
      const leases = await fetchLeases(String(v["admin-socket"]));
      process.stdout.write(v.json ? `${JSON.stringify(leases)}\n` : formatLeaseTable(leases));
      return 0;
    }

    case "grant":
    case "revoke": {
      const { values: v } = withUsageErrors(() => parseArgs({ args: rest, strict: true, options: {
        app: { type: "string" }, ip: { type: "string" }, "admin-socket": { type: "string", default: ADMIN_SOCKET },
        json: { type: "boolean", default: false }, ...(command === "grant" ? { duration: { type: "string" } } : {}), help: HELP } }));
      if (v.help) {
        return out(command === "grant"
          ? `Usage: knockport grant --app A --ip IP [--duration S] [--admin-socket ${ADMIN_SOCKET}] [--json]\n  opens A's port for IP without a knock, for S seconds (default and maximum: A's duration); knockport-hooks runs its on_open`
          : `Usage: knockport revoke --app A --ip IP [--admin-socket ${ADMIN_SOCKET}] [--json]\n  closes A's port (and the HTTPS knock port) for IP now; knockport-hooks runs its on_close`), 0;
      }
      const target = parseAdminTarget(v.app as string | undefined, v.ip as string | undefined, command);
      if (command === "grant") {
        const r = await grantLease(String(v["admin-socket"]), target, parseDurationFlag((v as { duration?: string }).duration));
        process.stdout.write(v.json ? `${JSON.stringify(r)}\n` : formatGrant(r));
        return 0;
      }
      const r = await revokeLease(String(v["admin-socket"]), target);
      process.stdout.write(v.json ? `${JSON.stringify(r)}\n` : formatRevoke(target, r));
      return 0;
    }

    case "dry-run":
    case "print-sudoers":
    case "uninstall-firewall":
      return (await import("./firewall.js")).runFirewallCommand(command, rest, (text) => process.stdout.write(text));

    case "run": {
      const { values: v } = withUsageErrors(() => parseArgs({ args: rest, strict: true, options: {
        config: { type: "string", short: "c" },
        "firewall-type": { type: "string", default: "nftables" },
        "http-port": { type: "string" },
        "https-port": { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        user: { type: "string" },
        socket: { type: "string", default: DEFAULT_SOCKET },
        "state-dir": { type: "string", default: "/var/lib/knockport" },
        "server-state-dir": { type: "string", default: "/var/lib/knockport-server" },
        "service-rule-cleanup-on-shutdown": { type: "boolean", default: false },
        ...NFTABLES_CUSTOM_FLAGS,
        "waf-http-port": SHARED_FLAGS["waf-http-port"],
        "waf-https-port": SHARED_FLAGS["waf-https-port"],
        "waf-trusted-ips": SHARED_FLAGS["waf-trusted-ips"],
        "auth-check-listen": { type: "string" },
        "use-sudo": { type: "boolean", default: false }, help: HELP } }));
      if (v.help) return process.stdout.write(RUN_USAGE), 0;
      const nftablesFlags = Object.keys(NFTABLES_CUSTOM_FLAGS).flatMap((f) => {
        const value = (v as Record<string, unknown>)[f];
        return typeof value === "string" ? [`--${f}`, value] : [];
      });
      if (v["use-sudo"]) throw new UsageError("--use-sudo: not supported by this version yet; run knockport run as root");
      if (!v.config || !v.cert || !v.key) throw new UsageError("-c/--config, --cert and --key are required; see knockport run --help");
      return runBoth({
        repoRoot: REPO_ROOT,
        configFile: String(v.config),
        firewallType: String(v["firewall-type"]),
        httpPort: v["http-port"] as string | undefined,
        httpsPort: v["https-port"] as string | undefined,
        certFile: String(v.cert),
        keyFile: String(v.key),
        user: v.user ?? SERVER_USER,
        socketPath: String(v.socket),
        stateDir: String(v["state-dir"]),
        serverStateDir: String(v["server-state-dir"]),
        cleanupOnShutdown: v["service-rule-cleanup-on-shutdown"] === true,
        nftablesFlags,
        waf: parseWafFlags(v),
        ...(v["auth-check-listen"] !== undefined ? { authCheckListen: String(v["auth-check-listen"]) } : {}),
        log: out,
      });
    }

    case "setup-2fa": {
      const { values: v } = withUsageErrors(() => parseArgs({ args: rest, strict: true, options: {
        key: { type: "string", short: "k" },
        config: { type: "string", short: "c", default: DEFAULT_SERVER_CONFIG },
        interval: { type: "string", short: "i" },
        label: { type: "string" },
        force: { type: "boolean", default: false },
        "no-qr": { type: "boolean", default: false }, help: HELP } }));
      if (v.help) return process.stdout.write(SETUP_2FA_USAGE), 0;
      const key = v.key ?? process.env.KNOCKPORT_HTTP_KEY;
      if (key === undefined || key === "") throw new UsageError("-k/--key (or KNOCKPORT_HTTP_KEY) is required: the step-1 key (access_key_http) to protect");
      await setupTwoFactor({
        configFile: String(v.config),
        accessKey: key,
        interval: parseInterval(v.interval as string | undefined),
        label: v.label as string | undefined,
        force: Boolean(v.force),
        qr: !v["no-qr"],
        out,
      });
      return 0;
    }

    case "knock": {
      const settings = resolveKnockSettings({ argv: rest, env: process.env, warn: (l) => process.stderr.write(`knockport knock: ${l}\n`) });
      if (settings === "help") return process.stdout.write(KNOCK_USAGE), 0;
      return runKnock(settings, { out, err: (l) => process.stderr.write(`${l}\n`), stdin: process.stdin });
    }

    default:
      throw new UsageError(`unknown command "${command}"; run knockport --help`);
  }
}

main(process.argv.slice(2)).then(
  // stdout to a pipe is written asynchronously: exit only once a long answer (status --json with
  // thousands of leases) has been flushed
  (code) => process.stdout.write("", () => process.exit(code)),
  (err: unknown) => {
    if (err instanceof KnockFailure) {
      process.stderr.write(`knockport knock: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    exitOnError("knockport", { ...ROOT_ERRORS, ...CLI_ERRORS }, err);
  },
);
