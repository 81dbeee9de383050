import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseIpAddress, type IpAddress } from "@knockport/protocol";
import { HookEngine } from "../src/engine.js";
import { HookMetrics } from "../src/metrics.js";
import { OpenRecord, RecordError } from "../src/record.js";
import type { HookApp } from "../src/types.js";

const ip = (text: string): IpAddress => parseIpAddress(text) as IpAddress;
const A = ip("198.51.100.7");
const B = ip("2001:db8::9");

let dir: string;
let state: string;
let script: string;
let logFile: string;

/**
 * A real hook program: appends its arguments and the record's content at that moment to a log, sleeps
 * SLEEP seconds if set, and fails while a "fail-<kind>" counter file holds a positive number.
 */
function writeScript(): void {
  script = join(dir, "hook.sh");
  writeFileSync(
    script,
    `#!/bin/sh
kind="$1"; shift
rec=$(cat "${state}/hooks.json" 2>/dev/null | tr -d '\\n')
echo "start $kind $* rec=$rec" >> "${logFile}"
[ -f "${dir}/sleep" ] && sleep "$(cat "${dir}/sleep")"
f="${dir}/fail-$kind"
if [ -f "$f" ]; then n=$(cat "$f"); if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$f"; echo "end $kind fail" >> "${logFile}"; exit 3; fi; fi
echo "end $kind ok" >> "${logFile}"
`,
  );
  chmodSync(script, 0o755);
}

function app(name = "vpn"): HookApp {
  return { name, onOpen: [script, "open", "{app}", "{ip}", "{port}", "{protocol}", "{duration}"], onClose: [script, "close", "{app}", "{ip}"] };
}

function engine(apps: HookApp[], opts: { maxPerApp?: number; concurrency?: number } = {}) {
  const record = OpenRecord.load(state);
  const metrics = new HookMetrics();
  const e = new HookEngine({
    apps: new Map(apps.map((a) => [a.name, a])),
    record,
    log: pino({ level: "silent" }),
    metrics,
    retry: { initialMs: 20, maxMs: 80 },
    ...opts,
  });
  return { e, record, metrics };
}

const lines = (): string[] => (existsSync(logFile) ? readFileSync(logFile, "utf8").trim().split("\n") : []);

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}; log: ${lines().join(" | ")}`);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kp-hooks-"));
  state = join(dir, "state");
  mkdirSync(state);
  logFile = join(dir, "log");
  writeScript();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));


describe("HookEngine with real hook commands", () => {
  it("runs on_open with every placeholder, after the address is written to the record", async () => {
    const { e } = engine([app()]);
    e.event({ kind: "open", reason: "knock", app: "vpn", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    await e.idle();
    const [start, end] = lines();
    expect(start).toMatch(/^start open vpn 198\.51\.100\.7 1194 udp 60 rec=/);
    expect(start, "the record held the address before on_open ran").toContain('"ip":"198.51.100.7"');
    expect(end).toBe("end open ok");
  });

  it("a refresh runs no hook; a close runs on_close and clears the record", async () => {
    const { e, record } = engine([app()]);
    e.event({ kind: "open", reason: "knock", app: "vpn", ip: B, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    e.event({ kind: "refresh", reason: "knock", app: "vpn", ip: B, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 90_000, durationSeconds: 60 });
    e.event({ kind: "close", reason: "expiry", app: "vpn", ip: B, port: 1194, protocol: "udp" });
    await e.idle();
    expect(lines().filter((l) => l.startsWith("start")).map((l) => l.split(" rec=")[0])).toEqual(["start open vpn 2001:db8::9 1194 udp 60", "start close vpn 2001:db8::9"]);
    expect(record.has("vpn", B)).toBe(false);
    expect(JSON.parse(readFileSync(join(state, "hooks.json"), "utf8")).open).toEqual([]);
  });

  it("a failing on_close is retried until it succeeds, and stays recorded until then", async () => {
    const { e, record, metrics } = engine([app()]);
    e.event({ kind: "open", reason: "knock", app: "vpn", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    await e.idle();
    writeFileSync(join(dir, "fail-close"), "3");
    e.event({ kind: "close", reason: "revoke", app: "vpn", ip: A, port: 1194, protocol: "udp" });
    await until(() => lines().filter((l) => l === "end close fail").length >= 1, "a first failed close");
    expect(record.has("vpn", A), "still recorded while on_close has not succeeded").toBe(true);
    expect(e.pendingCloses()).toBe(1);
    await e.idle();
    expect(lines().filter((l) => l.startsWith("end close"))).toEqual(["end close fail", "end close fail", "end close fail", "end close ok"]);
    expect(metrics.closeRetries).toBe(3);
    expect(metrics.runsOf("on_close", "failed")).toBe(3);
    expect(record.has("vpn", A)).toBe(false);
    expect(e.pendingCloses()).toBe(0);
  });

  it("after a restart, a recorded address that is no longer live is closed; a live one not recorded is opened", async () => {
    const first = engine([app()]);
    first.e.event({ kind: "open", reason: "knock", app: "vpn", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    await first.e.idle();
    writeFileSync(join(dir, "fail-close"), "1000");
    first.e.event({ kind: "close", reason: "expiry", app: "vpn", ip: A, port: 1194, protocol: "udp" });
    await until(() => lines().includes("end close fail"), "a failed close");
    await first.e.stop();
    rmSync(join(dir, "fail-close"));
    rmSync(logFile);

    const second = engine([app()]);
    expect(second.record.has("vpn", A), "the failed close survived the restart").toBe(true);
    second.e.snapshot([{ app: "vpn", ip: B, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 30_000, durationSeconds: 60 }]);
    await second.e.idle();
    const started = lines().filter((l) => l.startsWith("start")).map((l) => l.split(" rec=")[0]).sort();
    expect(started).toEqual(["start close vpn 198.51.100.7", "start open vpn 2001:db8::9 1194 udp 60"]);
    expect(second.record.has("vpn", A)).toBe(false);
    expect(second.record.has("vpn", B)).toBe(true);
  });

  it("a new open of the same address ends a close that is waiting for its retry", async () => {
    const { e, record } = engine([app()]);
    e.event({ kind: "open", reason: "knock", app: "vpn", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    await e.idle();
    writeFileSync(join(dir, "fail-close"), "1000");
    e.event({ kind: "close", reason: "expiry", app: "vpn", ip: A, port: 1194, protocol: "udp" });
    await until(() => lines().includes("end close fail"), "a failed close");
    rmSync(join(dir, "fail-close"));
    e.event({ kind: "open", reason: "knock", app: "vpn", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    await e.idle();
    const ends = lines().filter((l) => l.startsWith("end"));
    expect(ends.at(-1)).toBe("end open ok");
    expect(ends.filter((l) => l === "end close ok"), "the superseded close did not run again").toEqual([]);
    expect(record.has("vpn", A)).toBe(true);
  });

  it("past max addresses per app, on_open is not run and counted (nothing is opened that could not be closed)", async () => {
    const { e, metrics } = engine([app()], { maxPerApp: 1 });
    e.event({ kind: "open", reason: "knock", app: "vpn", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    e.event({ kind: "open", reason: "knock", app: "vpn", ip: B, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    await e.idle();
    expect(lines().filter((l) => l.startsWith("start")).length).toBe(1);
    expect(metrics.refusedOpens).toBe(1);
  });

  it("runs at most `concurrency` commands at once, and one address's close never overtakes its open", async () => {
    writeFileSync(join(dir, "sleep"), "0.2");
    const { e } = engine([app()], { concurrency: 2 });
    const ips = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"].map(ip);
    for (const a of ips) e.event({ kind: "open", reason: "knock", app: "vpn", ip: a, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    for (const a of ips) e.event({ kind: "close", reason: "revoke", app: "vpn", ip: a, port: 1194, protocol: "udp" });
    await e.idle();
    let running = 0;
    let most = 0;
    for (const l of lines()) {
      running += l.startsWith("start") ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(most).toBe(2);
    for (const a of ips) {
      const mine = lines().filter((l) => l.includes(` ${a} `) || l.endsWith(` ${a}`) || l.includes(` ${a} rec`));
      expect(mine.map((l) => l.split(" ")[1]), a).toEqual(["open", "close"]);
    }
  });

  it("apps without hooks are ignored; an app removed from the config leaves a loud log, not a stuck entry", async () => {
    const first = engine([app("vpn"), { name: "ssh", onOpen: undefined, onClose: undefined }]);
    first.e.event({ kind: "open", reason: "knock", app: "ssh", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    first.e.event({ kind: "open", reason: "knock", app: "vpn", ip: A, port: 1194, protocol: "udp", expiresAtMs: Date.now() + 60_000, durationSeconds: 60 });
    await first.e.idle();
    expect(first.record.size()).toBe(1);
    const second = engine([]);
    second.e.snapshot([]);
    await second.e.idle();
    expect(second.record.size()).toBe(0);
  });
});

describe("OpenRecord", () => {
  it("refuses a torn or foreign file instead of forgetting what must be closed", () => {
    writeFileSync(join(state, "hooks.json"), '{"format":1,"open":[{"app":"vpn","ip":"198.51.');
    expect(() => OpenRecord.load(state)).toThrow(RecordError);
    writeFileSync(join(state, "hooks.json"), '{"format":1,"open":[{"app":"vpn","ip":"not-an-ip"}]}');
    expect(() => OpenRecord.load(state)).toThrow(/malformed entry/);
    writeFileSync(join(state, "hooks.json"), '{"leases":[]}');
    expect(() => OpenRecord.load(state)).toThrow(/not a knockport-hooks record/);
  });
});
