// A real dockerd (Debian docker.io) inside a test namespace, for docker.test.ts. Everything it keeps lives
// in one temporary directory (data root, exec root with its own containerd, socket, trust key, log); its
// containers' cgroups go under a parent of their own. stop() leaves no process, mount, cgroup or file behind.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, copyFileSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sleep } from "./testbed.js";

export const DOCKERD = "/usr/sbin/dockerd";
/** The distribution's CLI (a newer one elsewhere on PATH would talk a newer API). */
export const DOCKER = "/usr/bin/docker";
const BUSYBOX = "/bin/busybox";
const CGROUP_ROOT = "/sys/fs/cgroup";
/** Docker's plugin directory, created by every dockerd whatever its exec root. */
const PLUGIN_DIRS = ["/run/docker/plugins", "/run/docker"];

export interface DockerdOptions {
  /** Network namespace dockerd runs in (/run/netns/<name>). */
  readonly netns: string;
  /** Short tag for its containerd namespaces and cgroup parent ([a-z0-9]). */
  readonly tag: string;
  /** The IPv6 prefix of its bridge; with it dockerd also DNATs IPv6 (ip6tables, experimental in 20.10). */
  readonly ipv6Cidr?: string;
}

interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command without a shell; never throws (exit code 1 when it could not start or timed out). */
function run(file: string, args: readonly string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      resolve({ exitCode: code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export class Dockerd {
  readonly dir = mkdtempSync(join(tmpdir(), "kp-dockerd-"));
  private child: ChildProcess | undefined;
  private readonly createdPluginDirs = PLUGIN_DIRS.filter((d) => !existsSync(d));
  readonly cgroupParent: string;

  constructor(private readonly opts: DockerdOptions) {
    if (!/^[a-z0-9]{1,16}$/.test(opts.tag)) throw new Error(`dockerd tag must be [a-z0-9]{1,16} (got ${opts.tag})`);
    this.cgroupParent = `kp-docker-${opts.tag}`;
  }

  get socket(): string {
    return join(this.dir, "docker.sock");
  }

  get log(): string {
    const path = join(this.dir, "dockerd.log");
    return existsSync(path) ? readFileSync(path, "utf8").split("\n").slice(-40).join("\n") : "(no dockerd log)";
  }

  /** Starts dockerd and waits (bounded) until its API answers. */
  async start(): Promise<void> {
    if (this.child !== undefined) throw new Error("dockerd already running");
    const d = this.dir;
    const args = [
      `--net=/run/netns/${this.opts.netns}`,
      DOCKERD,
      "--data-root", join(d, "data"),
      "--exec-root", join(d, "exec"),
      "--pidfile", join(d, "dockerd.pid"),
      "-H", `unix://${this.socket}`,
      "--containerd-namespace", `kp-${this.opts.tag}`,
      "--containerd-plugins-namespace", `kp-${this.opts.tag}-plugins`,
      // its own config file: the trust key (else /etc/docker/key.json) in our directory, no host daemon.json
      "--config-file", this.writeConfig(),
      "--cgroup-parent", `/${this.cgroupParent}`,
      // vfs: no overlay mounts to leave behind; the image is one static binary.
      "--storage-driver", "vfs",
      ...(this.opts.ipv6Cidr !== undefined ? ["--experimental", "--ipv6", "--ip6tables", "--fixed-cidr-v6", this.opts.ipv6Cidr] : []),
    ];
    const log = openSync(join(d, "dockerd.log"), "a");
    // nsenter --net only: `ip netns exec` remounts /sys and hides the cgroups ("Devices cgroup isn't mounted").
    this.child = spawn("nsenter", args, { stdio: ["ignore", log, log] });
    closeSync(log);
    for (let i = 0; i < 300; i += 1) {
      if (this.child.exitCode !== null) throw new Error(`dockerd exited at start (${String(this.child.exitCode)}):\n${this.log}`);
      const r = await run(DOCKER, ["-H", `unix://${this.socket}`, "version", "--format", "{{.Server.Version}}"], 5000);
      if (r.exitCode === 0) return;
      await sleep(100);
    }
    throw new Error(`dockerd did not answer within ~30 s:\n${this.log}`);
  }

  private writeConfig(): string {
    const path = join(this.dir, "daemon.json");
    writeFileSync(path, `${JSON.stringify({ "deprecated-key-path": join(this.dir, "key.json") })}\n`);
    return path;
  }

  /** `docker <args>`, throwing with stderr on failure. */
  async docker(args: readonly string[], timeoutMs = 30_000): Promise<string> {
    const r = await run(DOCKER, ["-H", `unix://${this.socket}`, ...args], timeoutMs);
    if (r.exitCode !== 0) throw new Error(`docker ${args.join(" ")} failed (exit ${String(r.exitCode)}): ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  /** Imports an image holding only busybox-static and /www/index.html with `body` (no registry). */
  async importBusybox(image: string, body: string): Promise<void> {
    const root = join(this.dir, "rootfs");
    mkdirSync(join(root, "bin"), { recursive: true });
    mkdirSync(join(root, "www"), { recursive: true });
    copyFileSync(BUSYBOX, join(root, "bin/busybox"));
    writeFileSync(join(root, "www/index.html"), body);
    const tar = join(this.dir, "rootfs.tar");
    const packed = await run("tar", ["-C", root, "-cf", tar, "."], 30_000);
    if (packed.exitCode !== 0) throw new Error(`tar of the image rootfs failed: ${packed.stderr.trim()}`);
    await this.docker(["import", tar, image]);
  }

  /** SIGTERM, then (bounded) SIGKILL; a stopped dockerd takes its containerd and containers with it. */
  async stopDaemon(graceMs = 20_000): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs));
    if ((await Promise.race([exited, timer])) === "timeout") {
      child.kill("SIGKILL");
      await Promise.race([exited, sleep(5000)]);
    }
  }

  async restart(): Promise<void> {
    await this.stopDaemon();
    await this.start();
  }

  /** Everything goes: containers, daemon, leftover processes of this exec root, mounts, cgroups, files. */
  async destroy(): Promise<void> {
    if (this.child !== undefined) await this.docker(["rm", "-f", "-v", ...(await this.containerIds())]).catch(() => undefined);
    await this.stopDaemon();
    killProcessesMentioning(this.dir);
    for (const mount of mountsUnder(this.dir)) await run("umount", ["-l", mount], 10_000);
    // A container whose shim was killed lives on in its own namespaces; its cgroup still finds it.
    for (let i = 0; i < 20 && this.cgroupPaths().length > 0; i += 1) {
      for (const pid of this.cgroupPids()) killPid(pid);
      for (const path of this.cgroupPaths()) removeCgroupTree(path);
      if (this.cgroupPaths().length > 0) await sleep(100);
    }
    for (const dir of this.createdPluginDirs) {
      try {
        rmdirSync(dir);
      } catch {
        /* not empty: another dockerd's */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private cgroupPaths(): string[] {
    return safeReaddir(CGROUP_ROOT)
      .map((controller) => join(CGROUP_ROOT, controller, this.cgroupParent))
      .filter((p) => existsSync(p));
  }

  /** Processes in the cgroups of its containers (cgroup.procs of every level, bounded depth). */
  private cgroupPids(): number[] {
    const pids = new Set<number>();
    const walk = (dir: string, depth: number): void => {
      if (depth > 8) return;
      try {
        for (const l of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n")) if (/^\d+$/.test(l)) pids.add(Number(l));
      } catch {
        /* not a cgroup directory */
      }
      for (const e of safeReaddir(dir)) if (isDirectory(join(dir, e))) walk(join(dir, e), depth + 1);
    };
    for (const p of this.cgroupPaths()) walk(p, 0);
    return [...pids];
  }

  private async containerIds(): Promise<string[]> {
    const out = await this.docker(["ps", "-aq"]).catch(() => "");
    return out.split("\n").filter((l) => l.trim() !== "");
  }

  /** What is left of it on the machine (for the teardown check): processes, mounts, cgroups, files. */
  leftovers(): string[] {
    const out: string[] = [];
    for (const pid of new Set([...pidsMentioning(this.dir), ...this.cgroupPids()])) out.push(`process ${pid}`);
    for (const m of mountsUnder(this.dir)) out.push(`mount ${m}`);
    for (const c of safeReaddir(CGROUP_ROOT)) if (existsSync(join(CGROUP_ROOT, c, this.cgroupParent))) out.push(`cgroup ${c}/${this.cgroupParent}`);
    if (existsSync(this.dir)) out.push(`directory ${this.dir}`);
    return out;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function pidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const entry of safeReaddir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone */
  }
}

function killProcessesMentioning(text: string): void {
  for (const pid of pidsMentioning(text)) killPid(pid);
}

/** Mount points at or below `dir`, deepest first (mountinfo field 5). */
function mountsUnder(dir: string): string[] {
  const lines = readFileSync("/proc/self/mountinfo", "utf8").split("\n");
  const points = lines.map((l) => l.split(" ")[4] ?? "").filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** rmdir of a cgroup and its children (empty once their processes are gone), deepest first; bounded depth. */
function removeCgroupTree(path: string, depth = 0): void {
  if (depth > 8 || !existsSync(path)) return;
  for (const e of safeReaddir(path)) {
    const child = join(path, e);
    if (isDirectory(child)) removeCgroupTree(child, depth + 1);
  }
  try {
    rmdirSync(path);
  } catch {
    /* still busy or gone */
  }
}
