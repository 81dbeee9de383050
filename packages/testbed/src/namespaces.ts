import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";

// The namespaces of this process's topologies: owner markers, removal at exit or on a signal, and the
// cleanup of what an earlier run left behind.

const IP = "/usr/sbin/ip";
export const ipBinary = (): string => {
  for (const candidate of [IP, "/sbin/ip", "/usr/bin/ip", "/bin/ip"]) {
    try {
      statSync(candidate);
      return candidate;
    } catch {
      /* try the next */
    }
  }
  return "ip";
};

export const NS_ROLES = ["sw", "srv", "cli", "cli2", "lan", "nat", "priv"] as const;
/** Names our topologies use; nothing else is ever deleted by cleanupStaleTopologies(). */
export const NAMESPACE_PATTERN = /^kp([a-z0-9]{1,8})-(sw|srv|cli|cli2|lan|nat|priv)$/;
export const SUFFIX_PATTERN = /^[a-z0-9]{1,8}$/;
const OWNER_DIR = "/run/knockport-testbed";

// ---------------------------------------------------------------- safety net

/** A topology this process built and has not destroyed yet. */
export interface LiveTopology {
  readonly suffix: string;
  destroySync(): void;
}

const live = new Set<LiveTopology>();
let netInstalled = false;

function syncCleanupAll(): void {
  for (const topo of [...live]) topo.destroySync();
}

function onSignal(signal: NodeJS.Signals): void {
  if (live.size > 0) {
    process.stderr.write(`\n[testbed] ${signal}: removing namespaces ${[...live].map((t) => `kp${t.suffix}-*`).join(", ")}\n`);
  }
  syncCleanupAll();
  const code = signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 129;
  process.exit(code);
}

function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  process.on("exit", syncCleanupAll);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
}

function uninstallSafetyNetIfIdle(): void {
  if (!netInstalled || live.size > 0) return;
  netInstalled = false;
  process.off("exit", syncCleanupAll);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.off("SIGHUP", onSignal);
}

// ---------------------------------------------------------------- owner markers

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime) counted after the ")" that closes the command name.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}

function writeOwner(suffix: string): void {
  try {
    mkdirSync(OWNER_DIR, { recursive: true, mode: 0o755 });
    writeFileSync(`${OWNER_DIR}/${suffix}`, `${process.pid} ${procStartTime(process.pid) ?? "?"}\n`);
  } catch {
    /* markers are an optimisation for cleanupStaleTopologies(); never fatal */
  }
}

function removeOwner(suffix: string): void {
  try {
    rmSync(`${OWNER_DIR}/${suffix}`, { force: true });
  } catch {
    /* ignore */
  }
}

/** True when the process that created topology `suffix` still runs. */
function ownerAlive(suffix: string): boolean | undefined {
  let text: string;
  try {
    text = readFileSync(`${OWNER_DIR}/${suffix}`, "utf8");
  } catch {
    return undefined;
  }
  const [pidText, start] = text.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const now = procStartTime(pid);
  return now !== undefined && (start === "?" || now === start);
}

// ---------------------------------------------------------------- implementation

export function listNamespaces(): string[] {
  const res = spawnSync(ipBinary(), ["netns", "list"], { encoding: "utf8", timeout: 10_000 });
  if (res.status !== 0 || typeof res.stdout !== "string") return [];
  return res.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.length > 0);
}

function killNamespacePidsSync(ns: string): void {
  const res = spawnSync(ipBinary(), ["netns", "pids", ns], { encoding: "utf8", timeout: 10_000 });
  if (res.status !== 0 || typeof res.stdout !== "string") return;
  for (const text of res.stdout.split("\n")) {
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

export function deleteNamespaceSync(ns: string): void {
  killNamespacePidsSync(ns);
  spawnSync(ipBinary(), ["netns", "del", ns], { timeout: 10_000 });
}

/** Registers a topology being built: it is removed at exit or on a signal, and its namespaces are marked as ours. */
export function registerTopology(topo: LiveTopology): void {
  installSafetyNet();
  live.add(topo);
  writeOwner(topo.suffix);
}

/** Forgets a destroyed topology. */
export function unregisterTopology(topo: LiveTopology): void {
  removeOwner(topo.suffix);
  live.delete(topo);
  uninstallSafetyNetIfIdle();
}

export interface StaleCleanupReport {
  readonly removed: readonly string[];
  readonly kept: readonly string[];
}

/**
 * Deletes namespaces named like ours (kp<suffix>-{sw,srv,cli,cli2,lan}) that an earlier run left behind:
 * those whose creating process is gone (owner marker in /run/knockport-testbed), or, without a marker,
 * those with a default 6-hex-character suffix older than `minAgeMs` (default 120000). Topologies of runs still in progress (this process included) are kept. Never throws.
 */
export function cleanupStaleTopologies(minAgeMs = 120_000): StaleCleanupReport {
  const removed: string[] = [];
  const kept: string[] = [];
  try {
    const mine = new Set([...live].map((t) => t.suffix));
    for (const ns of listNamespaces()) {
      const m = NAMESPACE_PATTERN.exec(ns);
      const suffix = m?.[1];
      if (suffix === undefined) continue;
      if (mine.has(suffix)) {
        kept.push(ns);
        continue;
      }
      const alive = ownerAlive(suffix);
      let stale: boolean;
      if (alive === undefined) {
        // No owner marker: only our default random suffixes (6 hex characters) are candidates.
        if (!/^[0-9a-f]{6}$/.test(suffix)) {
          kept.push(ns);
          continue;
        }
        let ageMs = Infinity;
        try {
          ageMs = Date.now() - statSync(`/run/netns/${ns}`).mtimeMs;
        } catch {
          /* unknown age: treat as old */
        }
        stale = ageMs >= minAgeMs;
      } else {
        stale = !alive;
      }
      if (stale) {
        deleteNamespaceSync(ns);
        removed.push(ns);
      } else {
        kept.push(ns);
      }
    }
    // Drop owner markers whose namespaces are all gone.
    try {
      const present = new Set(listNamespaces().map((n) => NAMESPACE_PATTERN.exec(n)?.[1]).filter((s) => s !== undefined));
      for (const marker of readdirSync(OWNER_DIR)) {
        if (!present.has(marker) && !mine.has(marker) && ownerAlive(marker) !== true) removeOwner(marker);
      }
    } catch {
      /* no marker dir */
    }
  } catch {
    /* never throw */
  }
  return { removed, kept };
}
