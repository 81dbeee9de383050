/**
 * `knockport knock --keep`: knock, then knock again before the lease ends, at once when this
 * machine's address towards the server changes or (behind a NAT, whose public address this machine
 * cannot see) when the service stops taking connections, and after a growing pause when a knock
 * failed; until SIGINT/SIGTERM, then optionally close the lease.
 */
import { createSocket } from "node:dgram";
import { isIP } from "node:net";
import { UsageError } from "@knockport/config";
import type { KnockOutcome } from "./knock.js";

/** Re-knock when this share of the time left has passed. */
export const KEEP_REFRESH_SHARE = 0.75;
/** A server that does not say when the lease ends (older than `expires=`) is knocked this often. */
export const KEEP_FALLBACK_MS = 60_000;
export const KEEP_BACKOFF_MIN_MS = 2_000;
export const KEEP_BACKOFF_MAX_MS = 120_000;
/** How often the local address towards the server is looked at (a route lookup, no packet). */
export const KEEP_ADDRESS_POLL_MS = 1_000;
/** A probe's connection attempt; no answer by then means the firewall dropped it. */
export const KEEP_PROBE_TIMEOUT_MS = 2_000;

/** A cheap check that the lease still lets this machine in: one TCP connection to the service. */
export interface KeepProbe {
  /** For messages, e.g. "tcp/22". */
  what: string;
  everyMs: number;
  /** True when the service accepted a connection from this machine. */
  answers: (serverAddress: string) => Promise<boolean>;
}

export interface KeepDeps {
  signal: AbortSignal;
  log: (line: string) => void;
  warn: (line: string) => void;
  /** Both steps; rejects with KnockFailure (retried) or UsageError (not). */
  knock: () => Promise<KnockOutcome>;
  /** --revoke: run once after the stop. */
  revoke?: () => Promise<void>;
  /** This machine's source address for packets to the server; undefined without a route. */
  localAddress: (serverAddress: string) => Promise<string | undefined>;
  /** Tried between knocks when the server sees another address than this machine's own (or does not say). */
  probe?: KeepProbe;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  pollMs?: number;
}

/** Milliseconds until the next knock: 75% of the time left, at least 1 s. */
export function nextKnockDelay(expiresAtMs: number, nowMs: number): number {
  return Math.max(1_000, Math.floor((expiresAtMs - nowMs) * KEEP_REFRESH_SHARE));
}

/** 2 s, 4 s, 8 s ... at most 120 s after the `failures`-th failure in a row. */
export function backoffMs(failures: number): number {
  return Math.min(KEEP_BACKOFF_MAX_MS, KEEP_BACKOFF_MIN_MS * 2 ** Math.min(Math.max(failures - 1, 0), 16));
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;

/** Runs until `signal` aborts; returns the exit code (0, or the revoke's failure). */
export async function keepOpen(d: KeepDeps): Promise<number> {
  const now = d.now ?? Date.now;
  const sleep = d.sleep ?? abortableSleep;
  const pollMs = d.pollMs ?? KEEP_ADDRESS_POLL_MS;
  let failures = 0;
  let server: string | undefined;
  let local: string | undefined;
  let seen: string | undefined;
  while (!d.signal.aborted) {
    let delay: number;
    let probeAt = Infinity;
    try {
      const outcome = await d.knock();
      failures = 0;
      server = outcome.address;
      local = await d.localAddress(server);
      const behindNat = noteSeenAddress(d, seen, outcome.seenAddress, local);
      seen = outcome.seenAddress ?? seen;
      if (d.probe !== undefined && behindNat) probeAt = now() + d.probe.everyMs;
      if (outcome.expiresAtMs === undefined) {
        delay = KEEP_FALLBACK_MS;
        d.warn(`keep: the server did not say when the lease ends (an older server?); knocking again every ${seconds(delay)}`);
      } else {
        delay = nextKnockDelay(outcome.expiresAtMs, now());
      }
      d.log(`keep: next knock in ${seconds(delay)}`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      failures += 1;
      delay = backoffMs(failures);
      d.warn(`keep: knock failed (${(err as Error).message}); next try in ${seconds(delay)}`);
    }
    // Wait for the delay, a stop, a new local address (route or interface change) or, behind a NAT, a
    // service that stopped taking connections (the lease is gone or the public address changed).
    const until = now() + delay;
    while (!d.signal.aborted && now() < until) {
      await sleep(Math.min(pollMs, Math.max(until - now(), 0)), d.signal);
      if (d.signal.aborted || server === undefined) continue;
      const current = await d.localAddress(server);
      if (current !== local) {
        d.log(`keep: this machine's address towards the server changed (${local ?? "none"} -> ${current ?? "none"}); knocking now`);
        local = current;
        break;
      }
      if (d.probe !== undefined && now() >= probeAt) {
        if (!(await d.probe.answers(server))) {
          d.log(`keep: ${d.probe.what} did not answer within ${seconds(KEEP_PROBE_TIMEOUT_MS)} (the lease is gone or the server sees another address now); knocking now`);
          break;
        }
        probeAt = now() + d.probe.everyMs;
      }
    }
  }
  if (d.revoke === undefined) return 0;
  try {
    await d.revoke();
    return 0;
  } catch (err) {
    d.warn(`keep: could not close the lease on exit (${(err as Error).message}); it ends on its own at its deadline`);
    return (err as { exitCode?: number }).exitCode ?? 1;
  }
}

/**
 * Says what the server's `address=` line tells: a new public address, or a NAT in between. True when
 * the probe is worth running: the server sees another address than this machine's own, or does not say.
 */
function noteSeenAddress(d: KeepDeps, before: string | undefined, now: string | undefined, local: string | undefined): boolean {
  if (now === undefined) return true;
  if (before !== undefined && now !== before) d.log(`keep: the server now sees this machine as ${now} (was ${before})`);
  if (before === undefined && local !== undefined && now !== local) {
    d.log(
      `keep: the server sees this machine as ${now}, its own address towards the server is ${local}: a NAT in between; ` +
        (d.probe !== undefined
          ? `${d.probe.what} is tried every ${seconds(d.probe.everyMs)} to notice a new public address`
          : "a new public address is noticed at the next scheduled knock only (a TCP --check-port, with --probe-interval not 0, has the service tried between knocks)"),
    );
  }
  return local === undefined || now !== local;
}

/** The source address the kernel picks for `address` (a connected UDP socket sends nothing). */
export function localAddressTowards(address: string, port: number, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(isIP(address) === 6 ? "udp6" : "udp4");
    const finish = (value: string | undefined): void => {
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        /* already closed after an error */
      }
      resolve(value);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once("error", () => finish(undefined));
    socket.connect(port, address, () => {
      try {
        finish(socket.address().address);
      } catch {
        finish(undefined);
      }
    });
  });
}
