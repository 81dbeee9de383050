import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HelperClient } from "@knockport/helper-client";
import { renderConfigYaml, type ConfigSpec } from "./config.js";
import type { ManagedProcess } from "./process.js";
import { startEchoServer } from "./probe.js";
import { firewallFlags, type FirewallKind } from "./firewall-state.js";
import { parseStatus, type StatusLease } from "./status.js";
import type { ExecResult, HostName, Topology } from "./topology.js";

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

    /** A daemon's argv after `node`: the unit's node options, then the config and the knock ports, then `args`. */
    const daemonArgv = (name: "knockport-helper" | "knockport-server", nodeOptions: readonly string[] | undefined, args: readonly string[]): string[] => [
      ...unitNodeOptions(opts.repoRoot, `${name}.service`),
      ...(nodeOptions ?? []),
      binPath(opts.repoRoot, name),
      "-c",
      configPath,
      "--http-port",
      String(opts.config.httpPort),
      "--https-port",
      String(opts.config.httpsPort),
      ...args,
    ];
    const helperArgv = daemonArgv("knockport-helper", opts.nodeOptions?.helper, [
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
      ...(opts.helperArgs ?? []),
    ]);
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

    const serverArgv = daemonArgv("knockport-server", opts.nodeOptions?.server, [
      "--cert",
      certPath,
      "--key",
      keyPath,
      "--socket",
      socketPath,
      ...(opts.serverArgs ?? []),
    ]);
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

