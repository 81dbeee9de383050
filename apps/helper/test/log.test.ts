import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";

function capture(level: Parameters<typeof createLogger>[0]["level"]) {
  const lines: string[] = [];
  const log = createLogger({ name: "knockport-helper", level }, (line) => void lines.push(line));
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("helper logger (JSON lines for journald, pino's field names)", () => {
  it("writes one JSON line per call with pino's level number, time, pid, hostname, name, the fields and msg", () => {
    const { log, lines, parsed } = capture("info");
    const before = Date.now();
    log.info({ event: "helper.ready", httpPort: 8080 }, "helper ready");
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith("}\n")).toBe(true);
    const [line] = parsed();
    expect(line).toEqual({ level: 30, time: expect.any(Number), pid: process.pid, hostname: hostname(), name: "knockport-helper", event: "helper.ready", httpPort: 8080, msg: "helper ready" });
    expect(line!.time as number).toBeGreaterThanOrEqual(before);
  });

  it("numbers levels as pino does and drops the ones below the threshold", () => {
    const { log, parsed } = capture("warn");
    log.debug({ event: "a" }, "a");
    log.info({ event: "b" }, "b");
    log.warn({ event: "c" }, "c");
    log.error({ event: "d" }, "d");
    log.fatal({ event: "e" }, "e");
    expect(parsed().map((l) => [l.event, l.level])).toEqual([["c", 40], ["d", 50], ["e", 60]]);
  });

  it("silent writes nothing; trace writes everything", () => {
    const silent = capture("silent");
    silent.log.fatal({ event: "x" }, "x");
    expect(silent.lines).toEqual([]);
    const trace = capture("trace");
    trace.log.trace({ event: "t" }, "t");
    expect(trace.parsed()[0]!.level).toBe(10);
  });

  it("writes an Error as its type and message, never a stack", () => {
    const { log, lines } = capture("info");
    log.error({ event: "rpc.internal_error", err: new TypeError("boom") }, "handler failed");
    expect(JSON.parse(lines[0]!).err).toEqual({ type: "TypeError", message: "boom" });
    expect(lines[0]).not.toContain("at ");
  });

  it("never throws on a value JSON cannot hold (cycle, bigint): the line says so", () => {
    const { log, parsed } = capture("info");
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => log.warn({ event: "x", cycle, n: 1n }, "odd fields")).not.toThrow();
    expect(parsed()[0]).toMatchObject({ level: 40, event: "x", msg: "odd fields", logError: expect.any(String) });
  });

  it("the fields cannot override level, time or msg", () => {
    const { log, parsed } = capture("info");
    log.info({ event: "x", level: 99, msg: "forged" }, "real");
    expect(parsed()[0]).toMatchObject({ level: 30, msg: "real" });
  });
});
