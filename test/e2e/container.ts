// A Debian 12 container booted by a real systemd (systemd-nspawn --boot) inside a test-bed network
// namespace, for the package test (systemd.test.ts). The root file system is built once with
// mmdebstrap and cached in /var/cache/knockport-test, keyed by the package list; every run boots an
// overlay on top of it, so the cache itself never changes.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

export const ROOTFS_PACKAGES = ["systemd", "systemd-sysv", "dbus", "nftables", "iproute2", "openssl"] as const;
const SUITE = "bookworm";
const CACHE = process.env.KNOCKPORT_TEST_CACHE ?? "/var/cache/knockport-test";
const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], timeoutMs = 60_000, input?: string): RunResult {
  const r = spawnSync(file, args, { encoding: "utf8", timeout: timeoutMs, input, env: { PATH, LANG: "C.UTF-8" } });
  return { status: r.status, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

function must(file: string, args: readonly string[], timeoutMs?: number): RunResult {
  const r = run(file, args, timeoutMs);
  if (r.status !== 0) throw new Error(`${file} ${args.join(" ")} failed (${String(r.status)}): ${r.stderr.trim().slice(-800)}`);
  return r;
}

/** Tools the package test needs on the host; undefined when all are there, else why it is skipped. */
export function missingHostTools(): string | undefined {
  const missing = ["mmdebstrap", "systemd-nspawn", "nsenter", "dpkg-deb"].filter((t) => run("sh", ["-c", 'command -v "$0"', t]).status !== 0);
  if (missing.length === 0) return undefined;
  return `missing ${missing.join(", ")} (apt-get install mmdebstrap systemd-container util-linux dpkg)`;
}

/** The cached root file system for ROOTFS_PACKAGES, built with mmdebstrap when absent (~1-4 min). */
export function cachedRootfs(): string {
  const key = createHash("sha256").update(`${SUITE} minbase ${ROOTFS_PACKAGES.join(",")}`).digest("hex").slice(0, 16);
  const dir = join(CACHE, `rootfs-${key}`);
  if (existsSync(join(dir, "etc/os-release"))) return dir;
  mkdirSync(CACHE, { recursive: true });
  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  must("mmdebstrap", ["--quiet", "--variant=minbase", `--include=${ROOTFS_PACKAGES.join(",")}`, SUITE, building], 600_000);
  renameSync(building, dir);
  return dir;
}

export interface Container {
  /** The merged root as the host sees it. */
  readonly root: string;
  /** Runs a command inside (all namespaces of the container's init), with a clean environment. */
  exec(args: readonly string[], opts?: { timeoutMs?: number; input?: string }): RunResult;
  /** exec() that throws on a non-zero exit. */
  must(args: readonly string[], opts?: { timeoutMs?: number; input?: string }): string;
  /** Console output of the boot so far (for failure messages). */
  console(): string;
  /** Reboots: systemctl reboot, then a new boot of the same root (the overlay keeps all changes), on `network` when given. */
  reboot(network?: ContainerNetwork): Promise<void>;
  /** Powers off and removes the overlay. Idempotent, never throws. */
  destroy(): Promise<void>;
}

/**
 * Where the container's network lives: a test-bed namespace (/run/netns/<name>, with CAP_NET_ADMIN
 * there), a private namespace of its own (CAP_NET_ADMIN there), or the host's ("host": for Debian's
 * apt and the npm registry; nspawn then drops CAP_NET_ADMIN, so it cannot change the host's network).
 */
export type ContainerNetwork = { netns: string } | "private" | "host";

export interface ContainerOptions {
  network: ContainerNetwork;
  /** Host directories bound into the container (read-only unless `writable`). */
  binds: ReadonlyArray<{ host: string; container: string; writable?: boolean }>;
  bootTimeoutMs?: number;
}

function networkArgs(network: ContainerNetwork): string[] {
  if (network === "host") return [];
  // nspawn drops CAP_NET_ADMIN from a container that joins a network namespace; the helper of a
  // real gateway has it (and the namespace is the test bed's or the container's own, not the host's)
  const where = network === "private" ? "--private-network" : `--network-namespace-path=/run/netns/${network.netns}`;
  return [where, "--capability=CAP_NET_ADMIN"];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function bootContainer(opts: ContainerOptions): Promise<Container> {
  const lower = cachedRootfs();
  const work = mkdtempSync(join(CACHE, "run-"));
  const root = join(work, "merged");
  for (const d of ["upper", "work", "merged"]) mkdirSync(join(work, d));
  must("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${work}/upper,workdir=${work}/work`, root]);
  const machine = `kp-${work.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x")}`;
  let nspawn: ChildProcess | undefined;
  let output = "";
  let exited = true;

  const start = async (network: ContainerNetwork): Promise<void> => {
    output = "";
    exited = false;
    nspawn = spawn(
      "systemd-nspawn",
      [
        "--quiet",
        "-D",
        root,
        "--boot",
        "--register=no",
        "--keep-unit",
        `--machine=${machine}`,
        ...networkArgs(network),
        ...opts.binds.map((b) => `${b.writable === true ? "--bind" : "--bind-ro"}=${b.host}:${b.container}`),
        "--console=pipe",
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { PATH, SYSTEMD_NSPAWN_TMPFS_TMP: "1" } },
    );
    const collect = (chunk: Buffer): void => {
      output = `${output}${chunk.toString("utf8")}`.slice(-20_000);
    };
    nspawn.stdout?.on("data", collect);
    nspawn.stderr?.on("data", collect);
    nspawn.once("exit", () => {
      exited = true;
    });
    const deadline = Date.now() + (opts.bootTimeoutMs ?? 60_000);
    while (Date.now() < deadline && !exited) {
      if (leader() !== undefined) {
        const state = exec(["systemctl", "is-system-running", "--wait"], { timeoutMs: Math.max(1000, deadline - Date.now()) });
        if (/^(running|degraded)$/m.test(state.stdout)) return;
      }
      await sleep(200);
    }
    throw new Error(`the container did not boot: ${output.slice(-2000)}`);
  };

  /** The container's PID 1: the child of systemd-nspawn. */
  const leader = (): number | undefined => {
    if (nspawn?.pid === undefined || exited) return undefined;
    try {
      const children = readFileSync(`/proc/${nspawn.pid}/task/${nspawn.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      return children.length > 0 ? Number(children[0]) : undefined;
    } catch {
      return undefined;
    }
  };

  const exec = (args: readonly string[], o: { timeoutMs?: number; input?: string } = {}): RunResult => {
    const pid = leader();
    if (pid === undefined) return { status: null, stdout: "", stderr: "the container is not running" };
    return run("nsenter", ["-t", String(pid), "-a", "--", "/usr/bin/env", "-i", `PATH=${PATH}`, "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", ...args], o.timeoutMs ?? 60_000, o.input);
  };

  const waitExit = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (!exited && Date.now() < deadline) await sleep(100);
    return exited;
  };

  const stop = async (): Promise<void> => {
    if (exited) return;
    exec(["systemctl", "poweroff"], { timeoutMs: 5000 });
    if (await waitExit(30_000)) return;
    nspawn?.kill("SIGKILL");
    await waitExit(5000);
  };

  let network = opts.network;
  await start(network).catch(async (error: unknown) => {
    await stop();
    run("umount", [root]);
    rmSync(work, { recursive: true, force: true });
    throw error;
  });

  let destroyed = false;
  return {
    root,
    exec,
    must(args, o) {
      const r = exec(args, o);
      if (r.status !== 0) throw new Error(`in the container: ${args.join(" ")} failed (${String(r.status)}): ${`${r.stderr}${r.stdout}`.trim().slice(-1500)}`);
      return r.stdout;
    },
    console: () => output,
    async reboot(next) {
      exec(["systemctl", "reboot"], { timeoutMs: 5000 });
      // nspawn leaves with status 133 on a reboot request; it is started again on the same root
      if (!(await waitExit(30_000))) throw new Error("the container did not shut down for the reboot");
      network = next ?? network;
      await start(network);
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await stop();
      run("umount", [root]);
      rmSync(work, { recursive: true, force: true });
    },
  };
}
