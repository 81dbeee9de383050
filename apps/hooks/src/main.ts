#!/usr/bin/env node
import pino from "pino";
import { UsageError } from "@knockport/config";
import { checkPrivateDir, makeDirs } from "@knockport/durable-file";
import { EXIT_ERRORS, ROOT_ERRORS, exitStatusOf } from "@knockport/protocol/errors";
import { HOOKS_USAGE, parseHooksArgs } from "./args.js";
import { HookEngine } from "./engine.js";
import { HookMetrics } from "./metrics.js";
import { OpenRecord } from "./record.js";
import { parseEvent, parseSnapshot, type WatchSnapshot } from "./stream.js";
import type { HookApp, LeaseEvent } from "./types.js";
import { WatchClient } from "./watch-client.js";
import { logEvent } from "@knockport/protocol/events";

const METRICS_EVERY_MS = 5000;

function fail(message: string, exitCode: number): never {
  process.stderr.write(`knockport-hooks: ${message}\n`);
  process.exit(exitCode);
}

async function main(): Promise<void> {
  let opts;
  try {
    opts = parseHooksArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) fail(err.message, ROOT_ERRORS.USAGE.exit);
    throw err;
  }
  if (opts === undefined) {
    process.stdout.write(`${HOOKS_USAGE}\n`);
    return;
  }
  if (process.geteuid?.() === 0) fail("refusing to run as root: hook commands run as this process's user; start it as knockport-hooks (see deploy/systemd)", 1);
  const log = pino({ level: opts.logLevel, base: { service: "knockport-hooks" } });
  let record: OpenRecord;
  try {
    makeDirs(opts.stateDir, 0o700);
    checkPrivateDir(opts.stateDir, { label: "--state-dir" });
    record = OpenRecord.load(opts.stateDir);
  } catch (err) {
    fail((err as Error).message, exitStatusOf(err, EXIT_ERRORS) ?? 1);
  }
  const apps = new Map<string, HookApp>();
  const metrics = new HookMetrics();
  const engine = new HookEngine({ apps, record, log, metrics, concurrency: opts.concurrency, limits: { timeoutMs: opts.timeoutMs, maxOutputBytes: 16 * 1024 } });
  const writeMetrics = (): void => {
    if (opts.metricsFile === undefined) return;
    try {
      metrics.writeTo(opts.metricsFile, { pendingCloses: engine.pendingCloses(), recorded: record.size() });
    } catch (err) {
      logEvent(log, "warn", "hooks.metrics_failed", { err: (err as Error).message }, `cannot write ${opts.metricsFile}`);
    }
  };
  const metricsTimer = setInterval(writeMetrics, METRICS_EVERY_MS);
  let lastProblem = "";
  const client = new WatchClient<WatchSnapshot, LeaseEvent | null>(
    { socketPath: opts.eventsSocket },
    { snapshot: parseSnapshot, event: parseEvent },
    {
      onSnapshot(snapshot) {
        // The helper's config is the one source of hook commands: a restarted helper may bring new ones.
        apps.clear();
        for (const app of snapshot.apps) apps.set(app.name, app);
        logEvent(log, "info", "hooks.subscribed", { apps: snapshot.apps.length, leases: snapshot.leases.length, recorded: record.size() }, "subscribed to the helper's lease events");
        engine.snapshot(snapshot.leases);
      },
      onEvent(event) {
        if (event !== null) engine.event(event);
      },
      onConnected(connected) {
        metrics.connected = connected;
        if (!connected) logEvent(log, "warn", "hooks.disconnected", {}, "lost the helper's lease events; reconnecting");
        writeMetrics();
      },
      onProblem(message) {
        // One line per distinct problem: a helper that is down for an hour is not 7,000 lines.
        if (message === lastProblem) return;
        lastProblem = message;
        logEvent(log, "warn", "hooks.watch_problem", { err: message }, message);
      },
    },
  );
  client.start();
  logEvent(log, "info", "hooks.started", { socket: opts.eventsSocket, stateDir: opts.stateDir, recorded: record.size() }, "knockport-hooks started");
  const stop = (signal: string): void => {
    logEvent(log, "info", "hooks.stopping", { signal, pendingCloses: engine.pendingCloses() }, "stopping; pending closes stay recorded for the next start");
    client.stop();
    clearInterval(metricsTimer);
    void engine.stop().then(() => {
      writeMetrics();
      process.exit(0);
    });
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => fail(`unexpected error: ${(err as Error)?.message ?? String(err)}`, 70));
