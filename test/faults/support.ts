// Shared bits of the fault suite: seeds, fd/heap measurements, a throwaway certificate, figures.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The repository root does not depend on pino; borrow the server's copy (same version as the apps').
export { pino, type Logger } from "../../apps/server/node_modules/pino/pino.js";

/**
 * Seed of every property run: fixed so a failure reproduces, overridable with FAULTS_SEED=<n>.
 * fast-check also prints the seed and the shrunk counterexample when a property fails.
 */
export function faultSeed(offset: number): number {
  const base = process.env.FAULTS_SEED === undefined ? 20261125 : Number(process.env.FAULTS_SEED);
  if (!Number.isSafeInteger(base)) throw new Error(`FAULTS_SEED must be an integer (got ${process.env.FAULTS_SEED})`);
  return (base + offset) | 0;
}

/** Open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Heap in use after a full collection (vitest.faults.config.ts runs the worker with --expose-gc). */
export function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc (pnpm test:faults does)");
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  // tmpfs when there is one: the helper fsyncs its journal on every grant
  const base = readdirSync("/dev").includes("shm") ? "/dev/shm" : tmpdir();
  const path = mkdtempSync(join(base, prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A self-signed P-256 certificate for 127.0.0.1, for the step-2 listener. */
export function makeCert(dir: string): { cert: Buffer; key: Buffer } {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
      "-days", "1", "-keyout", keyFile, "-out", certFile],
    { stdio: "ignore", timeout: 20_000 },
  );
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it is true or `timeoutMs` passed; returns its last value. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= until) return false;
    await sleep(20);
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** One summary line per test, grep-able from the test output: "[faults] <name> {json}". */
export function figure(name: string, data: Record<string, unknown>): void {
  console.log(`[faults] ${name} ${JSON.stringify(data)}`);
}

/** Runs `tasks` with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await task(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Strings that break shells, nft scripts, JSON, HTTP framing or C strings. */
export const INJECTIONS = [
  "; flush ruleset",
  "ssh; nft flush ruleset",
  '"}',
  '"},{"step":2',
  "\n",
  "\r\nX-Injected: 1",
  "\u0000",
  "ssh\u0000",
  "$(reboot)",
  "`id`",
  "' OR '1'='1",
  "../../etc/passwd",
  "%00",
  "%0a",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "__proto__",
  "constructor",
  "\u202e\ufeff\ud800",
  "fe80::1%eth0",
  "198.51.100.7; nft flush ruleset",
];
