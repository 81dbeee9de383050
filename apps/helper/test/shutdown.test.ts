import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import type { FirewallBackend, SetChange } from "../src/backend.js";
import { HelperService } from "../src/service.js";
import { revokeAllLeases } from "../src/shutdown.js";
import { parseHelperArgs } from "../src/args.js";

const config = parseConfig(
  {
    global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
    openvpn: { port: 1194, protocol: "udp", access_key_http: ["ovpn-http-key-000"], access_key_https: ["ovpn-https-key-000"], duration: 86400, step2_https_duration: 30 },
    ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 3600 },
  },
  "test.yaml",
);

class RecordingFirewall implements FirewallBackend {
  readonly type = "nftables" as const;
  readonly applied: SetChange[] = [];
  installs = 0;
  uninstalls = 0;
  failNext = false;
  renderRuleset(): string {
    return "";
  }
  async install(): Promise<void> {
    this.installs += 1;
  }
  async apply(changes: readonly SetChange[]): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error("nft: refused");
    }
    this.applied.push(...changes);
  }
  async uninstall(): Promise<boolean> {
    this.uninstalls += 1;
    return true;
  }
}

describe("--service-rule-cleanup-on-shutdown: revokeAllLeases", () => {
  let dir: string;
  let firewall: RecordingFirewall;
  let service: HelperService;
  const log = pino({ level: "silent" });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-shutdown-"));
    firewall = new RecordingFirewall();
    service = new HelperService(config, firewall, log);
    await service.start();
  });
  afterEach(() => {
    service.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("revokes every live grant (service and HTTPS elements) and keeps the table", async () => {
    for (const ip of ["198.51.100.7", "2001:db8::7"]) {
      await service.handlers.open({ step: 1, app: "ssh", ip }, undefined);
      await service.handlers.open({ step: 2, app: "ssh", ip }, undefined);
    }
    await service.handlers.open({ step: 1, app: "openvpn", ip: "203.0.113.9" }, undefined);
    expect(service.list().leases).toHaveLength(5);
    firewall.applied.length = 0;

    const r = await revokeAllLeases(service, log);

    expect(r).toEqual({ revoked: 5, failed: 0 });
    expect(service.list().leases).toEqual([]);
    const revokes = firewall.applied.filter((c) => c.op === "revoke").map((c) => `${c.set} ${c.ip}`);
    for (const expected of [
      "svc_ssh_v4 198.51.100.7",
      "https_v4 198.51.100.7",
      "svc_ssh_v6 2001:db8::7",
      "https_v6 2001:db8::7",
      "https_v4 203.0.113.9",
    ]) {
      expect(revokes).toContain(expected);
    }
    expect(firewall.applied.filter((c) => c.op === "grant")).toEqual([]);
    // Never fail open: the table (and so its drop rules) is neither removed nor reloaded.
    expect(firewall.uninstalls).toBe(0);
    expect(firewall.installs).toBe(1);
  });

  it("with nothing open it changes nothing", async () => {
    expect(await revokeAllLeases(service, log)).toEqual({ revoked: 0, failed: 0 });
    expect(firewall.applied).toEqual([]);
  });

  it("reports a revoke the firewall refused (the helper then exits non-zero) and keeps that lease on record", async () => {
    await service.handlers.open({ step: 1, app: "ssh", ip: "198.51.100.7" }, undefined);
    await service.handlers.open({ step: 2, app: "ssh", ip: "198.51.100.7" }, undefined);
    firewall.failNext = true;
    const r = await revokeAllLeases(service, log);
    expect(r).toEqual({ revoked: 0, failed: 1 });
    // The lease stays in the book, and in the kernel, which ends it on time.
    expect(service.list().leases).toHaveLength(2);
  });
});

describe("--service-rule-cleanup-on-shutdown flag", () => {
  it("is off by default and on when given", () => {
    const off = parseHelperArgs(["-c", "config.yaml"]);
    const on = parseHelperArgs(["-c", "config.yaml", "--service-rule-cleanup-on-shutdown"]);
    expect(off !== "help" && off.serviceRuleCleanupOnShutdown).toBe(false);
    expect(on !== "help" && on.serviceRuleCleanupOnShutdown).toBe(true);
  });
});
