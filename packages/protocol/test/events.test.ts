import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { describe, expect, it } from "vitest";
import { EVENTS, EVENTS_BY_PROCESS, logEvent as logAppEvent } from "../src/events-apps.js";
import { EVENT_MEANINGS } from "../src/event-meanings.js";
import { logEvent } from "../src/log-event.js";
import { leaseEvent } from "../src/results.js";
import { root, sources } from "./sources.js";

const CATALOGUE_FILES = ["events.ts", "events-apps.ts", "event-meanings.ts"].map((f) => `packages/protocol/src/${f}`);

/** The lease events of the helper's `watch` stream (a wire value, not a log line's event). */
const WATCH_EVENTS: readonly string[] = leaseEvent.properties.event.enum;

/**
 * A log line's event written in place instead of through logEvent: `event: "x"`, `event: c ? "x" : "y"`,
 * `"event":"x"` in a string, or a bare `{ event }` / `{ ...f, event }` handed to a logger.
 */
const INLINE = [
  /\bevent:\s*(?:[^,{}\n]*?\?\s*)?"([a-z0-9._-]+)"(?:\s*:\s*"([a-z0-9._-]+)")?/g,
  /\\?"event\\?":\s*\\?"([a-z0-9._-]+)/g,
  /\blog\w*\.(?:trace|debug|info|warn|error|fatal)\(\s*\{[^}]*\bevent\b/g,
];

function inlineEvents(text: string): string[] {
  const found: string[] = [];
  for (const re of INLINE) for (const m of text.matchAll(re)) found.push(...(m.length > 1 ? m.slice(1).filter((x): x is string => x !== undefined) : [m[0]]));
  return found.filter((name) => !WATCH_EVENTS.includes(name));
}

describe("event catalogue", () => {
  it("finds inline events the way the source check below does", () => {
    expect(inlineEvents(`log.warn({ event: "rpc.overrun" }, "x")`)).toEqual(["rpc.overrun", "log.warn({ event"]);
    expect(inlineEvents(`{ audit: true, event: refreshed ? "lease.refreshed" : "lease.opened", via }`)).toEqual(["lease.refreshed", "lease.opened"]);
    expect(inlineEvents(`this.o.log.info({ ...fields, event }, m)`)).toHaveLength(1);
    expect(inlineEvents(`JSON.stringify({"event":"knock"})`)).toEqual(["knock"]);
    expect(inlineEvents(`emit(ctx, { event: refreshed ? "refresh" : "open", ...view })`)).toEqual([]);
    expect(inlineEvents(`logEvent(log, "warn", "rpc.overrun", {}, "x")`)).toEqual([]);
  });

  it("no source logs an event by an inline name: every log line goes through logEvent", () => {
    const offenders: string[] = [];
    for (const file of sources()) {
      const rel = relative(root, file);
      if (CATALOGUE_FILES.includes(rel)) continue;
      for (const name of inlineEvents(readFileSync(file, "utf8"))) offenders.push(`${rel}: ${name}`);
    }
    expect(offenders).toEqual([]);
  });

  it("every catalogued event is logged somewhere (its name appears in a source outside the catalogue)", () => {
    const text = sources().filter((f) => !CATALOGUE_FILES.includes(relative(root, f))).map((f) => readFileSync(f, "utf8")).join("\n");
    expect(Object.keys(EVENTS).filter((name) => !text.includes(`"${name}"`))).toEqual([]);
  });

  it("an event two processes log has one entry, and every event has a meaning", () => {
    const seen = new Map<string, string>();
    for (const events of Object.values(EVENTS_BY_PROCESS)) {
      for (const [name, spec] of Object.entries(events)) {
        const json = JSON.stringify(spec);
        expect(seen.get(name) ?? json, name).toBe(json);
        seen.set(name, json);
      }
    }
    expect(Object.keys(EVENT_MEANINGS).sort()).toEqual([...seen.keys()].sort());
    for (const [name, meaning] of Object.entries(EVENT_MEANINGS)) expect(meaning, name).toMatch(/^\S.*\.$/);
  });

  it("logEvent writes the event's name first, then its fields, at the level given", () => {
    const lines: [string, Record<string, unknown>, string | undefined][] = [];
    const at = (level: string) => (fields: Record<string, unknown>, msg?: string): void => void lines.push([level, fields, msg]);
    const log = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
    logEvent(log, "warn", "rpc.connection_refused", { socket: "/run/k.sock", limit: 16 }, "full");
    logAppEvent(log, "info", "knock.refused", { step: 1, app: "ssh", ip: "192.0.2.7", reason: "bad-key", status: 403 });
    expect(lines).toEqual([
      ["warn", { event: "rpc.connection_refused", socket: "/run/k.sock", limit: 16 }, "full"],
      ["info", { event: "knock.refused", step: 1, app: "ssh", ip: "192.0.2.7", reason: "bad-key", status: 403 }, undefined],
    ]);
    expect(Object.keys(lines[1]![1])[0]).toBe("event");
  });

  it("the types hold a call to the catalogue: name, level, field names and types, audit (pnpm typecheck fails otherwise)", () => {
    const log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    // @ts-expect-error an event the catalogue does not have
    logAppEvent(log, "info", "knock.maybe", {});
    // @ts-expect-error the catalogue's level for knock.rate_limited is warn
    logAppEvent(log, "info", "knock.rate_limited", { step: 1, ip: "192.0.2.7", status: 429 });
    // @ts-expect-error a field the event does not have
    logAppEvent(log, "warn", "knock.rate_limited", { step: 1, ip: "192.0.2.7", status: 429, key: "x" });
    // @ts-expect-error a field of the wrong type
    logAppEvent(log, "warn", "knock.rate_limited", { step: "1", ip: "192.0.2.7", status: 429 });
    // @ts-expect-error a required field missing
    logAppEvent(log, "warn", "knock.rate_limited", { step: 1, status: 429 });
    // @ts-expect-error a value the catalogue's list for the field does not hold
    logAppEvent(log, "info", "knock.refused", { step: 1, app: "ssh", ip: "192.0.2.7", reason: "bad-mood", status: 403 });
    // @ts-expect-error an audit event without "audit":true
    logEvent(log, "warn", "rpc.not_allowed", { socket: "knock", method: "grant" });
    // @ts-expect-error the helper's logEvent knows only the helper's events
    logEvent(log, "info", "knock.refused", { step: 1, app: "ssh", ip: "192.0.2.7", reason: "bad-key", status: 403 });
    logEvent(log, "warn", "rpc.not_allowed", { audit: true, socket: "knock", method: "grant" });
    logAppEvent(log, "warn", "knock.rate_limited", { step: 1, ip: "192.0.2.7", proxy: undefined, status: 429 });
  });
});
