import { randomBytes, randomInt } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HelperClient } from "@knockport/helper-client";
import type { ManagedProcess } from "./process.js";
import { startEchoServer } from "./probe.js";
import { firewallFlags, type FirewallKind } from "./firewall-state.js";
import type { ExecResult, HostName, Topology } from "./topology.js";

// ---------------------------------------------------------------- config

export interface AppSpec {
  readonly name: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** access_key_http[i] pairs with access_key_https[i]. */
  readonly accessKeysHttp: readonly string[];
  readonly accessKeysHttps: readonly string[];
  readonly duration: number;
  readonly step2HttpsDuration: number;
  /** Default "local". */
  readonly destination?: string;
  /** Forwarded apps: masquerade towards interface_int (KnockPort's default: true). */
  readonly masquerade?: boolean;
  /** close_established (KnockPort's default: false). */
  readonly closeEstablished?: boolean;
  /** Command hooks (argument lists), written as on_open / on_close. */
  readonly onOpen?: readonly string[];
  readonly onClose?: readonly string[];
}

export interface ConfigSpec {
  readonly httpPostPath: string;
  readonly httpsPostPath: string;
  readonly rateLimitPerMinute: number;
  /** global.https_connection_limit_per_minute / _burst (not written when absent: KnockPort's defaults, 60 / 20). */
  readonly httpsConnectionLimit?: { readonly perMinute: number; readonly burst: number };
  readonly interfaceExt: string;
  /** global.interface_int (default: not written, so interface_ext). */
  readonly interfaceInt?: string;
  /** global.allow_missing_interfaces (default: not written). */
  readonly allowMissingInterfaces?: readonly string[];
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly apps: readonly AppSpec[];
  /** global.cluster (url, key_prefix); not written when absent. */
  readonly cluster?: { readonly url: string; readonly keyPrefix: string };
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random string of `length` characters from `alphabet` (crypto-strong). */
export function randomSecret(length: number, alphabet = ALNUM): string {
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)] ?? "x";
  return out;
}

/** A random knock path of exactly `length` characters, starting with `prefix` (e.g. "/k-"). */
export function randomPath(prefix: string, length: number): string {
  if (!prefix.startsWith("/") || prefix.length >= length) throw new Error(`randomPath: bad prefix "${prefix}" for length ${length}`);
  return prefix + randomSecret(length - prefix.length);
}

/** YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (s: string): string => JSON.stringify(s);

/** Renders the original's YAML layout: `global` plus one key per app. */
export function renderConfigYaml(spec: ConfigSpec): string {
  const lines = [
    "# Written by @knockport/testbed for an end-to-end run; secrets are random per run.",
    "global:",
    `  http_post_path: ${q(spec.httpPostPath)}`,
    `  https_post_path: ${q(spec.httpsPostPath)}`,
    `  step1_2_rate_limit_per_minute: ${spec.rateLimitPerMinute}`,
    ...(spec.httpsConnectionLimit !== undefined
      ? [
          `  https_connection_limit_per_minute: ${spec.httpsConnectionLimit.perMinute}`,
          `  https_connection_limit_burst: ${spec.httpsConnectionLimit.burst}`,
        ]
      : []),
    `  interface_ext: ${q(spec.interfaceExt)}`,
    ...(spec.interfaceInt !== undefined ? [`  interface_int: ${q(spec.interfaceInt)}`] : []),
    ...(spec.allowMissingInterfaces !== undefined ? [`  allow_missing_interfaces: ${JSON.stringify(spec.allowMissingInterfaces)}`] : []),
    `  http_port: ${spec.httpPort}`,
    `  https_port: ${spec.httpsPort}`,
    ...(spec.cluster !== undefined ? ["  cluster:", `    url: ${q(spec.cluster.url)}`, `    key_prefix: ${q(spec.cluster.keyPrefix)}`] : []),
  ];
  for (const app of spec.apps) {
    lines.push(
      "",
      `${app.name}:`,
      `  port: ${app.port}`,
      "  access_key_http:",
      ...app.accessKeysHttp.map((k) => `    - ${q(k)}`),
      "  access_key_https:",
      ...app.accessKeysHttps.map((k) => `    - ${q(k)}`),
      `  destination: ${q(app.destination ?? "local")}`,
      `  protocol: ${app.protocol}`,
      `  duration: ${app.duration}`,
      `  step2_https_duration: ${app.step2HttpsDuration}`,
      ...(app.masquerade !== undefined ? [`  masquerade: ${String(app.masquerade)}`] : []),
      ...(app.closeEstablished !== undefined ? [`  close_established: ${String(app.closeEstablished)}`] : []),
      // a JSON array is a YAML flow sequence
      ...(app.onOpen !== undefined ? [`  on_open: ${JSON.stringify(app.onOpen)}`] : []),
      ...(app.onClose !== undefined ? [`  on_close: ${JSON.stringify(app.onClose)}`] : []),
    );
  }
  return `${lines.join("\n")}\n`;
}

export interface ExampleConfigOptions {
  interfaceExt: string;
  duration?: number;
  step2HttpsDuration?: number;
  /** Length of http_post_path (default 40; at most 64). */
  httpPathLength?: number;
  rateLimitPerMinute?: number;
  /** Default: not written (KnockPort's defaults). */
  httpsConnectionLimit?: { perMinute: number; burst: number };
  httpPort?: number;
  httpsPort?: number;
  /** Key pairs per app (default 2). */
  keyPairs?: number;
}

/** Apps `ssh` (tcp 2222) and `openvpn` (udp 1194) with random paths and key pairs. */
export function exampleConfig(opts: ExampleConfigOptions): ConfigSpec {
  const pairs = opts.keyPairs ?? 2;
  const keys = (tag: string): string[] => Array.from({ length: pairs }, (_, i) => `${tag}${i}-${randomSecret(24)}`);
  const app = (name: string, port: number, protocol: "tcp" | "udp"): AppSpec => ({
    name,
    port,
    protocol,
    accessKeysHttp: keys(`${name}-h`),
    accessKeysHttps: keys(`${name}-s`),
    duration: opts.duration ?? 5,
    step2HttpsDuration: opts.step2HttpsDuration ?? 5,
  });
  return {
    httpPostPath: randomPath("/k1-", opts.httpPathLength ?? 40),
    httpsPostPath: randomPath("/k2-", 32),
    rateLimitPerMinute: opts.rateLimitPerMinute ?? 1000,
    ...(opts.httpsConnectionLimit !== undefined ? { httpsConnectionLimit: opts.httpsConnectionLimit } : {}),
    interfaceExt: opts.interfaceExt,
    httpPort: opts.httpPort ?? 8080,
    httpsPort: opts.httpsPort ?? 8443,
    apps: [app("ssh", 2222, "tcp"), app("openvpn", 1194, "udp")],
  };
}

// ---------------------------------------------------------------- stack

export interface StackOptions {
  /** The repository root holding bin/knockport-helper, bin/knockport-server and bin/knockport. */
  repoRoot: string;
  config: ConfigSpec;
  /** Unprivileged account for the server (default nobody:nogroup); the helper's socket group is its group. */
  serverUser?: { user: string; group: string };
  /** Start the echo service in srv on every app's port (default true). */
  echo?: boolean;
  /** How long to wait for each "ready" line (default 20000 ms). */
  readyTimeoutMs?: number;
  /** Extra helper flags. */
  helperArgs?: readonly string[];
  /** Firewall backend of the helper (default nftables). */
  firewall?: FirewallKind;
  /** Extra server flags (e.g. --state-dir DIR). */
  serverArgs?: readonly string[];
  /**
   * Start knockport-hooks (as `hooksUser`, default daemon:daemon) subscribed to the helper's events
   * socket, which the helper then serves to that group.
   */
  hooks?: boolean;
  hooksUser?: { user: string; group: string };
  /** Node options put before each program, after the shipped units' (e.g. `--cpu-prof --cpu-prof-dir=DIR` for `pnpm bench --profile`). */
  nodeOptions?: { helper?: readonly string[]; server?: readonly string[] };
}

export interface StatusLease {
  readonly app: string;
  readonly ip: string;
  readonly step: number;
  readonly port: number;
  readonly protocol: string;
  readonly expiresAt: string;
  readonly remainingSeconds: number;
  /** Per-lease counters, when the helper has read them. */
  readonly packets?: number;
  readonly bytes?: number;
}

export interface KnockportStack {
  /** Temporary directory holding config, certificate, socket and state (removed by stop()). */
  readonly dir: string;
  readonly configPath: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** The helper's knock socket (the server's). */
  readonly socketPath: string;
  /** The helper's admin socket (0600 root): grant, close, list, stats, watch. */
  readonly adminSocketPath: string;
  readonly stateDir: string;
  readonly config: ConfigSpec;
  readonly helper: ManagedProcess;
  readonly server: ManagedProcess;
  readonly echo: ManagedProcess | undefined;
  /** knockport-hooks, with `hooks: true`. */
  readonly hooks: ManagedProcess | undefined;
  /** The helper's events socket (watch only). */
  readonly eventsSocketPath: string;
  /** knockport-hooks' state dir (hooks.json). */
  readonly hooksStateDir: string;
  /** Starts knockport-hooks again as the stack did (after the test stopped it); waits for its subscription. */
  startHooks(): Promise<ManagedProcess>;
  /** The helper's argv after `node`, node options first (for re-running it, e.g. with other flags). */
  readonly helperArgv: readonly string[];
  /** The server's argv after `node`, node options first, and the account it runs as (for re-running it, e.g. `pnpm bench`'s start-up timing). */
  readonly serverArgv: readonly string[];
  readonly serverUser: { readonly user: string; readonly group: string };
  /** Runs `node bin/knockport ...args` in `host` (default srv). */
  cli(args: readonly string[], host?: HostName): Promise<ExecResult>;
  /** Runs `node bin/knockport-helper <helperArgv> ...extra` once (not managed), e.g. a start with other flags. */
  runHelperOnce(extra: readonly string[]): Promise<ExecResult>;
  /**
   * `knockport uninstall-firewall|print-sudoers|dry-run` with the helper's config, backend and custom-chain
   * flags (and its --state-dir for uninstall-firewall), in srv.
   */
  firewallCommand(command: "uninstall-firewall" | "print-sudoers" | "dry-run", extra?: readonly string[]): Promise<ExecResult>;
  /** `knockport status --admin-socket ... --json`, parsed. */
  status(): Promise<StatusLease[]>;
  /**
   * Resolves right after the helper's next element walk (its `stats` reconciliations count goes up), so a
   * test can change the kernel by hand knowing a whole self-heal interval lies before the walk after it.
   */
  nextReconcile(timeoutMs?: number): Promise<void>;
  /** Stops server, helper and echo service and removes the directory. Never throws. */
  stop(): Promise<void>;
}

/**
 * The node options before the program in a shipped unit's ExecStart (deploy/systemd), so that tests and
 * `pnpm bench` run the daemons as production does.
 */
export function unitNodeOptions(repoRoot: string, unit: "knockport-helper.service" | "knockport-server.service" | "knockport-hooks.service"): string[] {
  const text = readFileSync(join(repoRoot, "deploy/systemd", unit), "utf8");
  const m = /^ExecStart=\S*node((?: --[^\s]+)*) /m.exec(text);
  if (!m) throw new Error(`testbed: no "ExecStart=.../node ..." line in deploy/systemd/${unit}`);
  return (m[1] ?? "").split(" ").filter((o) => o !== "");
}

function binPath(repoRoot: string, name: string): string {
  return join(repoRoot, "bin", name);
}

function requireBuilt(repoRoot: string): void {
  for (const [bin, dist] of [
    ["knockport-helper", "apps/helper/dist/main.js"],
    ["knockport-server", "apps/server/dist/main.js"],
    ["knockport", "apps/cli/dist/main.js"],
    ["knockport-hooks", "apps/hooks/dist/main.js"],
  ] as const) {
    if (!existsSync(binPath(repoRoot, bin))) throw new Error(`testbed: ${binPath(repoRoot, bin)} is missing`);
    if (!existsSync(join(repoRoot, dist))) throw new Error(`testbed: ${join(repoRoot, dist)} is missing: run "pnpm build" first`);
  }
}

function parseStatus(stdout: string): StatusLease[] {
  const parsed: unknown = JSON.parse(stdout);
  if (typeof parsed !== "object" || parsed === null || !Array.isArray((parsed as { leases?: unknown }).leases)) {
    throw new Error(`knockport status --json: no "leases" array in ${stdout.slice(0, 300)}`);
  }
  const leases = (parsed as { leases: unknown[] }).leases;
  return leases.map((l, i): StatusLease => {
    const o = (typeof l === "object" && l !== null ? l : {}) as Record<string, unknown>;
    const str = (k: string): string => {
      const v = o[k];
      if (typeof v !== "string") throw new Error(`knockport status --json: leases[${i}].${k} is not a string (${JSON.stringify(v)})`);
      return v;
    };
    const num = (k: string): number => {
      const v = o[k];
      if (typeof v !== "number") throw new Error(`knockport status --json: leases[${i}].${k} is not a number (${JSON.stringify(v)})`);
      return v;
    };
    return {
      app: str("app"),
      ip: str("ip"),
      step: num("step"),
      port: num("port"),
      protocol: str("protocol"),
      expiresAt: str("expiresAt"),
      remainingSeconds: num("remainingSeconds"),
      ...(o["packets"] === undefined ? {} : { packets: num("packets"), bytes: num("bytes") }),
    };
  });
}

/**
 * Writes the config (readable by the server's user), generates a certificate with `knockport gen-cert`,
 * then starts in srv: the echo service, `knockport-helper` (root, nftables) and `knockport-server` (as
 * the unprivileged user), each waited for by its ready line. On failure everything started is stopped.
 */
export async function startKnockport(topo: Topology, opts: StackOptions): Promise<KnockportStack> {
  requireBuilt(opts.repoRoot);
  const user = opts.serverUser ?? { user: "nobody", group: "nogroup" };
  const readyMs = opts.readyTimeoutMs ?? 20_000;
  const node = process.execPath;
  const dir = mkdtempSync(join(tmpdir(), `knockport-${topo.suffix}-`));
  chmodSync(dir, 0o755);
  const configPath = join(dir, "config.yaml");
  const certDir = join(dir, "cert");
  const runDir = join(dir, "run");
  const stateDir = join(dir, "state");
  mkdirSync(certDir, { mode: 0o755 });
  mkdirSync(runDir, { mode: 0o755 });
  mkdirSync(stateDir, { mode: 0o700 });
  chmodSync(certDir, 0o755);
  chmodSync(runDir, 0o755);
  writeFileSync(configPath, renderConfigYaml(opts.config), { mode: 0o644 });
  chmodSync(configPath, 0o644);
  const socketPath = join(runDir, "helper.sock");
  const adminSocketPath = join(runDir, "admin.sock");
  const eventsSocketPath = join(runDir, "events.sock");
  const hooksStateDir = join(dir, "hooks-state");
  const hooksUser = opts.hooksUser ?? { user: "daemon", group: "daemon" };
  const certPath = join(certDir, "knockport.testing.pem");
  const keyPath = join(certDir, "knockport.testing.key");

  const started: ManagedProcess[] = [];
  const cleanup = async (): Promise<void> => {
    for (const p of [...started].reverse()) await p.stop(2000).catch(() => undefined);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* never throw */
    }
  };

  try {
    const gen = await topo.exec("srv", node, [binPath(opts.repoRoot, "knockport"), "gen-cert", "--out-dir", certDir, "--name", "knockport.testing", "--cn", "knockport.test"], { timeoutMs: 30_000 });
    if (gen.exitCode !== 0 || !existsSync(certPath) || !existsSync(keyPath)) {
      throw new Error(`knockport gen-cert failed (exit ${String(gen.exitCode)}):\n${gen.stdout}\n${gen.stderr}`);
    }
    // Throwaway test key: readable by the server's unprivileged user.
    chmodSync(certPath, 0o644);
    chmodSync(keyPath, 0o644);

    let echo: ManagedProcess | undefined;
    if (opts.echo !== false) {
      echo = await startEchoServer(topo, "srv", {
        tcp: opts.config.apps.filter((a) => a.protocol === "tcp").map((a) => a.port),
        udp: opts.config.apps.filter((a) => a.protocol === "udp").map((a) => a.port),
        readyTimeoutMs: readyMs,
      });
      started.push(echo);
    }

    const helperArgv = [
      ...unitNodeOptions(opts.repoRoot, "knockport-helper.service"),
      ...(opts.nodeOptions?.helper ?? []),
      binPath(opts.repoRoot, "knockport-helper"),
      "-c",
      configPath,
      ...firewallFlags(opts.firewall ?? "nftables"),
      "--socket",
      socketPath,
      "--socket-group",
      user.group,
      "--admin-socket",
      adminSocketPath,
      ...(opts.hooks === true ? ["--events-socket", eventsSocketPath, "--events-socket-group", hooksUser.group] : []),
      "--state-dir",
      stateDir,
      "--http-port",
      String(opts.config.httpPort),
      "--https-port",
      String(opts.config.httpsPort),
      ...(opts.helperArgs ?? []),
    ];
    const helper = topo.spawn("srv", node, helperArgv, { label: "knockport-helper" });
    started.push(helper);
    await helper.waitForLine(/"msg":"helper ready"/, readyMs);

    const startHooks = async (): Promise<ManagedProcess> => {
      const p = topo.spawn(
        "srv",
        node,
        [...unitNodeOptions(opts.repoRoot, "knockport-hooks.service"), binPath(opts.repoRoot, "knockport-hooks"), "--events-socket", eventsSocketPath, "--state-dir", hooksStateDir],
        { label: "knockport-hooks", runAs: hooksUser },
      );
      started.push(p);
      await p.waitForLine(/"event":"hooks.subscribed"/, readyMs);
      return p;
    };
    let hooks: ManagedProcess | undefined;
    if (opts.hooks === true) {
      mkdirSync(hooksStateDir, { mode: 0o700 });
      const ids = await topo.exec("srv", "/usr/bin/id", ["-u", hooksUser.user], { timeoutMs: 5000 });
      const gids = await topo.exec("srv", "/usr/bin/getent", ["group", hooksUser.group], { timeoutMs: 5000 });
      chownSync(hooksStateDir, Number(ids.stdout.trim()), Number(gids.stdout.split(":")[2]));
      hooks = await startHooks();
    }

    const serverArgv = [
      ...unitNodeOptions(opts.repoRoot, "knockport-server.service"),
      ...(opts.nodeOptions?.server ?? []),
      binPath(opts.repoRoot, "knockport-server"),
      "-c",
      configPath,
      "--http-port",
      String(opts.config.httpPort),
      "--https-port",
      String(opts.config.httpsPort),
      "--cert",
      certPath,
      "--key",
      keyPath,
      "--socket",
      socketPath,
      ...(opts.serverArgs ?? []),
    ];
    const server = topo.spawn("srv", node, serverArgv, { label: "knockport-server", runAs: user });
    started.push(server);
    await server.waitForLine(/"msg":"server ready"/, readyMs);

    const cli = (args: readonly string[], host: HostName = "srv"): Promise<ExecResult> =>
      topo.exec(host, node, [binPath(opts.repoRoot, "knockport"), ...args], { timeoutMs: 30_000 });
    let stopped: Promise<void> | undefined;
    return {
      dir,
      configPath,
      certPath,
      keyPath,
      socketPath,
      adminSocketPath,
      eventsSocketPath,
      hooksStateDir,
      startHooks,
      stateDir,
      config: opts.config,
      helper,
      server,
      echo,
      hooks,
      helperArgv,
      serverArgv,
      serverUser: user,
      cli,
      runHelperOnce: (extra) => topo.exec("srv", node, [...helperArgv, ...extra], { timeoutMs: 30_000 }),
      firewallCommand: (command, extra = []) => {
        const helperArgs = opts.helperArgs ?? [];
        const nftablesFlags = helperArgs.flatMap((a, i) => (a.startsWith("--nftables-") ? [a, helperArgs[i + 1] ?? ""] : []));
        const ports = ["--http-port", String(opts.config.httpPort), "--https-port", String(opts.config.httpsPort)];
        const state = command === "uninstall-firewall" ? ["--state-dir", stateDir] : [];
        return cli([command, "-c", configPath, ...firewallFlags(opts.firewall ?? "nftables"), ...ports, ...nftablesFlags, ...state, ...extra]);
      },
      nextReconcile: async (timeoutMs = 15_000) => {
        const client = new HelperClient({ socketPath: adminSocketPath, timeoutMs: 3000 });
        try {
          const before = (await client.call("stats", {})).reconciliations;
          const deadline = Date.now() + timeoutMs;
          // 20 ms steps: the edit that follows should come as close to the walk as it can.
          while (Date.now() < deadline) {
            if ((await client.call("stats", {})).reconciliations > before) return;
            await new Promise((r) => setTimeout(r, 20));
          }
          throw new Error(`the helper ran no element walk within ${timeoutMs} ms`);
        } finally {
          client.close();
        }
      },
      status: async () => {
        const res = await cli(["status", "--admin-socket", adminSocketPath, "--json"]);
        if (res.exitCode !== 0) throw new Error(`knockport status failed (exit ${String(res.exitCode)}): ${res.stdout}${res.stderr}`);
        return parseStatus(res.stdout);
      },
      stop: () => (stopped ??= cleanup()),
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** A random token, e.g. for unique labels. */
export function randomTag(bytes = 3): string {
  return randomBytes(bytes).toString("hex");
}
