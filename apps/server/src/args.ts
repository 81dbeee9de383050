import { parseArgs } from "node:util";
import { AUTH_CHECK_LISTEN_HINT, parseAuthCheckListen, type AuthCheckListen, SHARED_FLAGS, WAF_FLAGS_USAGE, withUsageErrors, UsageError, parseLogLevel, parsePortFlag, parseWafFlags, type LogLevel, type WafFlags } from "@knockport/config";
import { checkMetricsAddress } from "./metrics-address.js";

export interface ServerOptions {
  configFile: string;
  httpPort: number | undefined;
  httpsPort: number | undefined;
  /** --waf-http-port, --waf-https-port, --waf-trusted-ips (the config loader merges them with global.waf_*). */
  waf: WafFlags;
  certFile: string;
  keyFile: string;
  socketPath: string;
  listenAddress: string;
  logLevel: LogLevel;
  /** Folder for the server's own state (spent 2FA tokens); `stateDirGiven` is false when it is the default. */
  stateDir: string;
  stateDirGiven: boolean;
  /** Prometheus /metrics listener; off (undefined) by default. */
  metricsPort: number | undefined;
  /** Always a loopback address. */
  metricsAddress: string;
  /** --auth-check-listen: wins over global.auth_check_listen; undefined leaves the config's choice. */
  authCheckListen: AuthCheckListen | undefined;
}

export const DEFAULT_SERVER_STATE_DIR = "/var/lib/knockport-server";

export const SERVER_USAGE = `Usage: knockport-server -c CONFIG --cert FILE --key FILE [options]

Unprivileged knock server: HTTP listener for step 1, HTTPS listener for step 2. It asks
knockport-helper (over its Unix socket) to open ports; it never touches the firewall itself.

  -c, --config FILE         config file (required)
      --http-port N         HTTP (step 1) port, overrides global.http_port (default 8080)
      --https-port N        HTTPS (step 2) port, overrides global.https_port (default 8443)
${WAF_FLAGS_USAGE}
      --cert FILE           TLS certificate (PEM) for step 2 (required; test one: knockport gen-cert)
      --key FILE            TLS private key (PEM) for step 2 (required)
      --socket PATH         helper socket (default /run/knockport/helper.sock)
      --listen-address IP   address to listen on (default :: = all IPv6 and IPv4 addresses)
      --state-dir DIR       server state: spent 2FA tokens, kept across restarts (default
                            /var/lib/knockport-server; created 0700, must be writable by this user)
      --metrics-port N      serve Prometheus metrics on http://127.0.0.1:N/metrics (default: off)
      --metrics-address IP  loopback address for --metrics-port (default 127.0.0.1; only 127.0.0.0/8 or ::1)
      --auth-check-listen WHERE
                            auth-check listener for a reverse proxy (GET /check?app=APP: 204 when the
                            client it names holds a lease of APP, else 403): 127.0.0.1:PORT, [::1]:PORT
                            or a Unix socket path; overrides global.auth_check_listen (default: off)
      --log-level LEVEL     fatal, error, warn, info (default), debug
  -h, --help                show this help
`;

function metricsOptions(port: string | undefined, address: string | undefined): Pick<ServerOptions, "metricsPort" | "metricsAddress"> {
  if (address !== undefined && port === undefined) {
    throw new UsageError("--metrics-address needs --metrics-port (e.g. --metrics-port 9464)");
  }
  return { metricsPort: parsePortFlag("--metrics-port", port), metricsAddress: checkMetricsAddress(address ?? "127.0.0.1") };
}

function authCheckOption(text: string | undefined): AuthCheckListen | undefined {
  if (text === undefined) return undefined;
  const listen = parseAuthCheckListen(text);
  if (!listen) throw new UsageError(`--auth-check-listen: must be ${AUTH_CHECK_LISTEN_HINT} (got "${text.slice(0, 120)}")`);
  return listen;
}

export function parseServerArgs(argv: string[]): ServerOptions | "help" {
  const parsed = withUsageErrors(() =>
    parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ...SHARED_FLAGS,
        cert: { type: "string" },
        key: { type: "string" },
        "listen-address": { type: "string", default: "::" },
        "state-dir": { type: "string" },
        "metrics-port": { type: "string" },
        "metrics-address": { type: "string" },
        "auth-check-listen": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }),
  );
  const v = parsed.values;
  if (v.help) return "help";
  if (!v.config) throw new UsageError("-c/--config is required (e.g. -c /etc/knockport/config.yaml)");
  if (!v.cert || !v.key) {
    throw new UsageError(
      "--cert and --key are required: step 2 runs only over HTTPS (for a self-signed test certificate run: knockport gen-cert)",
    );
  }
  return {
    configFile: v.config,
    httpPort: parsePortFlag("--http-port", v["http-port"]),
    httpsPort: parsePortFlag("--https-port", v["https-port"]),
    waf: parseWafFlags(v),
    certFile: v.cert,
    keyFile: v.key,
    socketPath: v.socket,
    listenAddress: v["listen-address"],
    logLevel: parseLogLevel(v["log-level"]),
    stateDir: v["state-dir"] ?? DEFAULT_SERVER_STATE_DIR,
    stateDirGiven: v["state-dir"] !== undefined,
    ...metricsOptions(v["metrics-port"], v["metrics-address"]),
    authCheckListen: authCheckOption(v["auth-check-listen"]),
  };
}
