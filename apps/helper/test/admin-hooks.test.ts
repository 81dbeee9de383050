/**
 * The admin `grant` method, audit lines, and apps' on_open / on_close commands, run for real
 * (execa, no shell) against a small script that records each call's arguments.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig, type KnockportConfig } from "@knockport/config";
import { HelperError, type IpAddress } from "@knockport/protocol";
import { RecordingFirewall } from "./recording-firewall.js";
import { HookRunner } from "../src/hooks.js";
import { LeaseJournal } from "../src/leases.js";
import { HelperService } from "../src/service.js";

const IP = "198.51.100.7";
const IP6 = "2001:db8::7";
const T0 = Date.UTC(2030, 0, 1);


type Line = Record<string, unknown>;

describe("grant, audit lines and command hooks", () => {
  let dir: string;
  let calls: string;
  let recorder: string;
  let clock: { t: number; now(): number };
  let firewall: RecordingFirewall;
  let lines: Line[];
  let service: HelperService;

  /** A config whose apps call the recorder; `extra` overrides app keys. */
  function config(extra: Record<string, unknown> = {}): KnockportConfig {
    return parseConfig(
      {
        global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
        ssh: {
          port: 2222,
          access_key_http: ["ssh-http-key-0000"],
          access_key_https: ["ssh-https-key-0000"],
          duration: 3600,
          on_open: [recorder, "open", "{ip}", "{port}/{protocol}", "for {duration}s", "{app}"],
          on_close: [recorder, "close", "{ip}", "{port}", "{app}"],
          ...extra,
        },
        nohooks: {
          port: 2223,
          access_key_http: ["nh-http-key-00000"],
          access_key_https: ["nh-https-key-00000"],
          duration: 60,
        },
      },
      "test.yaml",
    );
  }

  function recorded(): string[][] {
    if (!existsSync(calls)) return [];
    return readFileSync(calls, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.split("\t"));
  }

  async function startService(cfg: KnockportConfig, timeoutMs = 5000): Promise<HelperService> {
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    const s = new HelperService(cfg, firewall, new LeaseJournal(join(dir, "state")), log, clock, new HookRunner(log, { timeoutMs }));
    await s.start();
    return s;
  }

  const audit = (): Line[] => lines.filter((l) => l.audit === true);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-hooks-"));
    calls = join(dir, "calls.tsv");
    recorder = join(dir, "record-call");
    // Test fixture: appends its arguments, tab-separated, one call per line.
    writeFileSync(recorder, `#!/bin/sh\nIFS="$(printf '\\t')"\nprintf '%s\\n' "$*" >> '${calls}'\n`);
    chmodSync(recorder, 0o755);
    clock = { t: T0, now: () => clock.t };
    firewall = new RecordingFirewall();
    lines = [];
    service = await startService(config());
  });
  afterEach(async () => {
    service.stop();
    await service.hooks.idle();
    rmSync(dir, { recursive: true, force: true });
  });

  it("grant opens the service port without a step 1, for the app's duration by default", async () => {
    const r = await service.handlers.grant({ app: "ssh", ip: IP }, undefined);
    expect(r).toEqual({
      app: "ssh",
      ip: IP,
      step: 2,
      durationSeconds: 3600,
      expiresAt: new Date(T0 + 3_600_000).toISOString(),
      refreshed: false,
      hooks: { ran: 1, failed: 0 },
    });
    expect(firewall.changes).toEqual([{ op: "grant", set: "svc_ssh_v4", ip: IP, timeoutSeconds: 3600 }]);
    expect(recorded()).toEqual([["open", IP, "2222/tcp", "for 3600s", "ssh"]]);
    expect((await service.handlers.list({}, undefined)).leases.map((l) => [l.app, l.step, l.ip])).toEqual([["ssh", 2, IP]]);
  });

  it("grant takes a shorter duration, refuses a longer one (DURATION_TOO_LONG) and unknown apps", async () => {
    expect((await service.handlers.grant({ app: "nohooks", ip: IP6, durationSeconds: 30 }, undefined)).durationSeconds).toBe(30);
    expect(firewall.changes).toEqual([{ op: "grant", set: "svc_nohooks_v6", ip: IP6, timeoutSeconds: 30 }]);
    const err = await service.handlers.grant({ app: "nohooks", ip: IP, durationSeconds: 61 }, undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HelperError);
    expect((err as HelperError).errorName).toBe("DURATION_TOO_LONG");
    expect((err as HelperError).message).toMatch(/nohooks\.duration/);
    const unknown = await service.handlers.grant({ app: "nope", ip: IP }, undefined).catch((e: unknown) => e);
    expect((unknown as HelperError).errorName).toBe("UNKNOWN_APP");
    expect(firewall.changes).toHaveLength(1);
  });

  it("a grant of an app without hooks reports no hooks; a re-grant refreshes and does not re-run on_open", async () => {
    const r = await service.handlers.grant({ app: "nohooks", ip: IP }, undefined);
    expect(r.hooks).toBeUndefined();
    await service.handlers.grant({ app: "ssh", ip: IP }, undefined);
    clock.t += 1000;
    const again = await service.handlers.grant({ app: "ssh", ip: IP }, undefined);
    expect(again.refreshed).toBe(true);
    expect(again.hooks).toBeUndefined();
    expect(recorded()).toHaveLength(1);
  });

  it("a knock's step 2 runs on_open in the background with the substituted arguments; step 1 runs nothing", async () => {
    await service.handlers.open({ step: 1, app: "ssh", ip: IP6 }, undefined);
    await service.hooks.idle();
    expect(recorded()).toEqual([]);
    const r = await service.handlers.open({ step: 2, app: "ssh", ip: IP6 }, undefined);
    expect(r).not.toHaveProperty("hooks");
    await service.hooks.idle();
    expect(recorded()).toEqual([["open", IP6, "2222/tcp", "for 3600s", "ssh"]]);
  });

  it("revoke (close) runs on_close and reports it; closing nothing runs nothing", async () => {
    await service.handlers.grant({ app: "ssh", ip: IP }, undefined);
    const r = await service.handlers.close({ app: "ssh", ip: IP }, undefined);
    expect(r).toEqual({ closed: 1, hooks: { ran: 1, failed: 0 } });
    expect(recorded()).toEqual([
      ["open", IP, "2222/tcp", "for 3600s", "ssh"],
      ["close", IP, "2222", "ssh"],
    ]);
    expect(await service.handlers.close({ app: "ssh", ip: IP }, undefined)).toEqual({ closed: 0 });
    expect(recorded()).toHaveLength(2);
  });

  it("expiry runs on_close once the sweep sees the lease ended", async () => {
    await service.handlers.grant({ app: "ssh", ip: IP, durationSeconds: 5 }, undefined);
    clock.t += 6000;
    service.startExpirySweep(5);
    for (let i = 0; i < 200 && recorded().length < 2; i += 1) await new Promise((r) => setTimeout(r, 10));
    await service.hooks.idle();
    expect(recorded()).toEqual([
      ["open", IP, "2222/tcp", "for 5s", "ssh"],
      ["close", IP, "2222", "ssh"],
    ]);
    expect(audit().find((l) => l.event === "lease.expired")).toMatchObject({ app: "ssh", ip: IP, step: 2 });
  });

  it("a lease that expired while the helper was down gets its on_close at the next start", async () => {
    await service.handlers.grant({ app: "ssh", ip: IP, durationSeconds: 5 }, undefined);
    await service.hooks.idle();
    service.stop();
    clock.t += 60_000;
    lines = [];
    const restarted = await startService(config());
    await restarted.hooks.idle();
    expect(recorded()).toEqual([
      ["open", IP, "2222/tcp", "for 5s", "ssh"],
      ["close", IP, "2222", "ssh"],
    ]);
    expect(audit().find((l) => l.event === "lease.expired")).toMatchObject({ app: "ssh", ip: IP, step: 2, whileDown: true });
    restarted.stop();
  });

  it("a failing hook is logged and reported, and the grant stays", async () => {
    service.stop();
    const failing = join(dir, "fail");
    writeFileSync(failing, "#!/bin/sh\necho 'AccessDenied: not allowed' >&2\nexit 3\n");
    chmodSync(failing, 0o755);
    service = await startService(config({ on_open: [failing, "{ip}"] }));
    const r = await service.handlers.grant({ app: "ssh", ip: IP }, undefined);
    expect(r.hooks).toEqual({ ran: 1, failed: 1 });
    expect(firewall.changes).toEqual([{ op: "grant", set: "svc_ssh_v4", ip: IP, timeoutSeconds: 3600 }]);
    expect((await service.handlers.list({}, undefined)).leases).toHaveLength(1);
    expect(audit().find((l) => l.event === "hook.failed")).toMatchObject({
      hook: "on_open",
      app: "ssh",
      ip: IP,
      outcome: "failed",
      exitCode: 3,
      error: "exit code 3",
      stderr: "AccessDenied: not allowed",
    });
  });

  it("a hook that hangs is killed at the timeout; a missing program is reported as not started", async () => {
    service.stop();
    const hang = join(dir, "hang");
    writeFileSync(hang, "#!/bin/sh\nexec sleep 30\n");
    chmodSync(hang, 0o755);
    service = await startService(config({ on_open: [hang], on_close: [join(dir, "does-not-exist")] }), 300);
    const started = Date.now();
    expect((await service.handlers.grant({ app: "ssh", ip: IP }, undefined)).hooks).toEqual({ ran: 1, failed: 1 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await service.handlers.close({ app: "ssh", ip: IP }, undefined)).hooks).toEqual({ ran: 1, failed: 1 });
    const failed = audit().filter((l) => l.event === "hook.failed");
    expect(failed.map((l) => [l.hook, l.outcome])).toEqual([
      ["on_open", "timeout"],
      ["on_close", "not-started"],
    ]);
  });

  it("a hook that prints more than the output limit is stopped and reported", async () => {
    service.stop();
    const chatty = join(dir, "chatty");
    writeFileSync(chatty, "#!/bin/sh\nexec yes knockport\n");
    chmodSync(chatty, 0o755);
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    service = new HelperService(config({ on_open: [chatty] }), firewall, new LeaseJournal(join(dir, "state")), log, clock, new HookRunner(log, { maxOutputBytes: 4096 }));
    await service.start();
    expect((await service.handlers.grant({ app: "ssh", ip: IP }, undefined)).hooks).toEqual({ ran: 1, failed: 1 });
    expect(audit().find((l) => l.event === "hook.failed")).toMatchObject({ outcome: "failed", error: "printed more than 4096 bytes" });
  });

  it("a command that cannot even be spawned is reported, never thrown", async () => {
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    const runner = new HookRunner(log);
    const app = { ...config().apps[0]!, onOpen: ["/bin/echo", "a\0b"] }; // the config loader refuses NUL; bypassed here
    expect(await runner.run({ kind: "on_open", app, ip: IP as IpAddress, durationSeconds: 1, reason: "test" })).not.toBe("ok");
    expect(audit().find((l) => l.event === "hook.failed")).toMatchObject({ hook: "on_open", reason: "test" });
  });

  it("an address is one argument: no shell, no splitting, placeholders replaced inside arguments only", async () => {
    service.stop();
    service = await startService(config({ on_open: [recorder, "--cidr={ip}/32", "{unknown-but-literal"] }));
    await service.handlers.grant({ app: "ssh", ip: IP6 }, undefined);
    expect(recorded()).toEqual([[`--cidr=${IP6}/32`, "{unknown-but-literal"]]);
  });

  it("audit lines: one per grant, refresh, expiry and revoke, with audit: true and no secrets", async () => {
    await service.handlers.open({ step: 1, app: "ssh", ip: IP }, undefined);
    await service.handlers.open({ step: 2, app: "ssh", ip: IP }, undefined);
    await service.handlers.open({ step: 2, app: "ssh", ip: IP }, undefined);
    await service.handlers.grant({ app: "nohooks", ip: IP }, undefined);
    await service.handlers.close({ app: "ssh", ip: IP }, undefined);
    await service.hooks.idle();
    const leaseLines = audit().filter((l) => String(l.event).startsWith("lease."));
    expect(leaseLines.map((l) => [l.event, l.via, l.app, l.step])).toEqual([
      ["lease.opened", "knock", "ssh", 1],
      ["lease.opened", "knock", "ssh", 2],
      ["lease.refreshed", "knock", "ssh", 2],
      ["lease.opened", "admin", "nohooks", 2],
      ["lease.closed", "admin", "ssh", undefined],
    ]);
    for (const l of leaseLines) expect(l).toMatchObject({ ip: IP });
    const text = JSON.stringify(lines);
    for (const secret of ["ssh-http-key-0000", "ssh-https-key-0000", "/knock-one-path", "/knock-two-path"]) expect(text).not.toContain(secret);
  });
});
