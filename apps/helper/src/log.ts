import { hostname } from "node:os";

// The helper's logger: one JSON line per event on stdout (journald stores it), with pino's field names
// and level numbers, so that the lines read as the server's do. A few lines instead of pino and its
// eleven packages in the process that runs as root.

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LogLevel = keyof typeof LEVELS | "silent";
export type LogFields = Record<string, unknown>;
export type LogFn = (fields: LogFields, msg?: string) => void;
export type Logger = Record<keyof typeof LEVELS, LogFn>;

/** An Error as its type and message: stacks stay out of the journal. */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { type: value.name, message: value.message } : value;
}

export function createLogger(
  options: { name: string; level: LogLevel },
  write: (line: string) => void = (line) => void process.stdout.write(line),
): Logger {
  const threshold = options.level === "silent" ? Infinity : LEVELS[options.level];
  const base = { pid: process.pid, hostname: hostname(), name: options.name };
  const at = (level: number): LogFn =>
    level < threshold
      ? () => undefined
      : (fields, msg) => {
          const head = { level, time: Date.now(), ...base };
          let line: string;
          try {
            line = JSON.stringify({ ...head, ...fields, level, time: head.time, msg }, replacer);
          } catch (err) {
            // A cycle or a bigint in the fields: the event is still logged, without them.
            line = JSON.stringify({ ...head, event: fields.event, msg, logError: (err as Error).message });
          }
          write(`${line}\n`);
        };
  return Object.fromEntries(Object.entries(LEVELS).map(([name, level]) => [name, at(level)])) as Logger;
}
