/**
 * The knock socket's `check` (read-only: one address, one app, live service leases only) and `release`
 * (a client's own revoke, only behind a live step-1 lease of that address and app).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import { HelperError } from "@knockport/protocol";
import { RecordingFirewall } from "./recording-firewall.js";
import { HelperService } from "../src/service.js";

const IP = "198.51.100.7";
const OTHER = "198.51.100.8";
const T0 = Date.UTC(2030, 0, 1);

const config = parseConfig(
  {
    global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
    web: { port: 8081, access_key_http: ["web-http-key-0000"], access_key_https: ["web-https-key-0000"], duration: 60 },
    ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 60 },
  },
  "test.yaml",
);

describe("check", () => {
  let dir: string;
  let clock: { t: number; now(): number };
  let firewall: RecordingFirewall;
  let service: HelperService;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-check-"));
    clock = { t: T0, now: () => clock.t };
    firewall = new RecordingFirewall();
    service = new HelperService(config, firewall, pino({ level: "silent" }), clock);
    await service.start();
  });
  afterEach(() => {
    service.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const check = (app: string, ip: string): Promise<{ open: boolean }> => service.handlers.check({ app, ip }, undefined);

  it("is open only for the address and app holding a live step-2 lease, until its deadline", async () => {
    expect(await check("web", IP)).toEqual({ open: false });
    await service.handlers.open({ step: 1, app: "web", ip: IP }, undefined);
    expect(await check("web", IP), "a step-1 lease is not access to the app").toEqual({ open: false });
    await service.handlers.open({ step: 2, app: "web", ip: IP }, undefined);
    const changesBefore = firewall.changes.length;
    expect(await check("web", IP)).toEqual({ open: true });
    expect(await check("web", `::ffff:${IP}`), "the IPv4-mapped form is the same address").toEqual({ open: true });
    expect(await check("web", OTHER)).toEqual({ open: false });
    expect(await check("ssh", IP), "another app's question").toEqual({ open: false });
    expect(firewall.changes.length, "check changes nothing").toBe(changesBefore);
    clock.t += 59_999;
    expect(await check("web", IP)).toEqual({ open: true });
    clock.t += 1;
    expect(await check("web", IP), "at the deadline, before any sweep removed it").toEqual({ open: false });
  });

  it("names unknown apps and bad addresses", async () => {
    const unknown = await check("nope", IP).catch((e: unknown) => e);
    expect((unknown as HelperError).errorName).toBe("UNKNOWN_APP");
    const bad = await check("web", "224.0.0.1").catch((e: unknown) => e);
    expect((bad as HelperError).errorName).toBe("INVALID_ADDRESS");
  });

  it("release closes that address's leases of that app only while it holds a live step-1 lease of it", async () => {
    await service.handlers.open({ step: 1, app: "web", ip: IP }, undefined);
    await service.handlers.open({ step: 2, app: "web", ip: IP }, undefined);
    await service.handlers.open({ step: 1, app: "web", ip: OTHER }, undefined);
    await service.handlers.open({ step: 2, app: "web", ip: OTHER }, undefined);
    clock.t += 5_000; // past step2_https_duration (5 s): the step-1 leases are over, the service leases live
    const late = await service.handlers.release({ app: "web", ip: IP }, undefined).catch((e: unknown) => e);
    expect((late as HelperError).errorName).toBe("STEP1_REQUIRED");
    expect(await check("web", IP), "nothing closed without a fresh step 1").toEqual({ open: true });
    const noStep1 = await service.handlers.release({ app: "ssh", ip: IP }, undefined).catch((e: unknown) => e);
    expect((noStep1 as HelperError).errorName).toBe("STEP1_REQUIRED");
    await service.handlers.open({ step: 1, app: "web", ip: IP }, undefined);
    expect(await service.handlers.release({ app: "web", ip: IP }, undefined)).toEqual({ closed: 2 });
    expect(await check("web", IP)).toEqual({ open: false });
    expect(await check("web", OTHER), "another address keeps its lease").toEqual({ open: true });
    const unknown = await service.handlers.release({ app: "nope", ip: IP }, undefined).catch((e: unknown) => e);
    expect((unknown as HelperError).errorName).toBe("UNKNOWN_APP");
  });
});
