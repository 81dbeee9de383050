/**
 * The admin `grant` method and audit lines; and that the helper never runs the apps' on_open /
 * on_close commands itself (a recorder script stays unrun), but hands them to watch subscribers.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig, type KnockportConfig } from "@knockport/config";
import { HelperError } from "@knockport/protocol";
import { RecordingFirewall, capturingLogger, recordedCalls } from "./recording-firewall.js";
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

  const recorded = (): string[][] => recordedCalls(calls);

  async function startService(cfg: KnockportConfig): Promise<HelperService> {
    const s = new HelperService(cfg, firewall, capturingLogger(lines), clock);
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
    });
    expect(firewall.changes).toEqual([{ op: "grant", set: "svc_ssh_v4", ip: IP, timeoutSeconds: 3600 }]);
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

  it("the helper runs no hook command itself (knock, grant, revoke, expiry, restart): knockport-hooks does, from watch", async () => {
    await service.handlers.open({ step: 1, app: "ssh", ip: IP6 }, undefined);
    await service.handlers.open({ step: 2, app: "ssh", ip: IP6 }, undefined);
    await service.handlers.grant({ app: "ssh", ip: IP, durationSeconds: 5 }, undefined);
    expect(await service.handlers.close({ app: "ssh", ip: IP6 }, undefined)).toEqual({ closed: 2 });
    clock.t += 6000;
    service.startExpirySweep(5);
    for (let i = 0; i < 100 && !audit().some((l) => l.event === "lease.expired"); i += 1) await new Promise((r) => setTimeout(r, 10));
    expect(audit().find((l) => l.event === "lease.expired")).toMatchObject({ app: "ssh", ip: IP, step: 2 });
    service.stop();
    service = await startService(config());
    await new Promise((r) => setTimeout(r, 200));
    expect(recorded(), "the recorder was never run by the helper").toEqual([]);
  });

  it("watch hands knockport-hooks the apps' commands, so it needs no config and no keys", async () => {
    const peer = { notify: () => undefined, onClose: () => undefined, keepOpen: () => undefined };
    const r = await service.handlers.watch({}, peer);
    expect(r.hooks).toEqual([{ app: "ssh", onOpen: [recorder, "open", "{ip}", "{port}/{protocol}", "for {duration}s", "{app}"], onClose: [recorder, "close", "{ip}", "{port}", "{app}"] }]);
    expect(JSON.stringify(r)).not.toContain("ssh-http-key-0000");
  });

  it("audit lines: one per grant, refresh, expiry and revoke, with audit: true and no secrets", async () => {
    await service.handlers.open({ step: 1, app: "ssh", ip: IP }, undefined);
    await service.handlers.open({ step: 2, app: "ssh", ip: IP }, undefined);
    await service.handlers.open({ step: 2, app: "ssh", ip: IP }, undefined);
    await service.handlers.grant({ app: "nohooks", ip: IP }, undefined);
    await service.handlers.close({ app: "ssh", ip: IP }, undefined);
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
