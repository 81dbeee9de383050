import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, type KnockportConfig } from "@knockport/config";
import { HelperCallError } from "@knockport/helper-client";
import type { MethodName, OpenParams, OpenResult, StatsResult } from "@knockport/protocol";
import type { FastifyInstance } from "fastify";

export const HTTP_PATH = "/knock-one-path";
export const HTTPS_PATH = "/very-secret-https-path-7f3a9c";

/** Every secret of the test config; none may ever show up in a log line. */
export const KEYS = {
  openvpnHttp: ["ovpn-http-key-000", "ovpn-http-key-111"],
  openvpnHttps: ["ovpn-https-key-000", "ovpn-https-key-111"],
  sshHttp: ["ssh-http-key-0000"],
  sshHttps: ["ssh-https-key-0000"],
} as const;

export function makeConfig(global: Record<string, unknown> = {}, extraApps: Record<string, unknown> = {}): KnockportConfig {
  const doc = {
    global: {
      http_post_path: HTTP_PATH,
      https_post_path: HTTPS_PATH,
      interface_ext: "eth0",
      step1_2_rate_limit_per_minute: 1000,
      healthcheck_app_name: "health",
      ...global,
    },
    openvpn: {
      port: 1194,
      protocol: "udp",
      access_key_http: [...KEYS.openvpnHttp],
      access_key_https: [...KEYS.openvpnHttps],
      duration: 86400,
      step2_https_duration: 30,
    },
    ssh: {
      port: 2222,
      access_key_http: [...KEYS.sshHttp],
      access_key_https: [...KEYS.sshHttps],
      duration: 3600,
      step2_https_duration: 10,
    },
    ...extraApps,
  };
  return parseConfig(doc, "test.yaml");
}

/** What the fake helper's `open` answers as the lease's end (unix 1893456030). */
export const FAKE_EXPIRES_AT = "2030-01-01T00:00:30.000Z";

export interface RecordedCall {
  method: MethodName;
  params: unknown;
}

/**
 * Stands in for HelperClient: records every call, answers schema-valid results, or throws what
 * `failNext` says (once per entry).
 */
export class FakeHelper {
  readonly calls: RecordedCall[] = [];
  readonly failures: HelperCallError[] = [];
  /** What `stats` answers (tests change it). */
  stats: StatsResult = {
    startedAt: "2026-11-26T00:00:00.000Z",
    leasesRestored: 0,
    reinstalls: 0,
    reconciliations: 0,
    elementsAdded: 0,
    elementsRetimed: 0,
    elementsRemoved: 0,
    selfHealFailures: 0,
  };

  /** What `counters` answers besides the stats. */
  openLeases: { app: string; step: 1 | 2; count: number }[] = [];

  /** `${app}|${ip}` pairs that `check` answers open for. */
  readonly leases = new Set<string>();

  failNext(err: HelperCallError): void {
    this.failures.push(err);
  }

  async call(method: MethodName, params: unknown): Promise<any> {
    this.calls.push({ method, params });
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (method === "open") {
      const p = params as OpenParams;
      const result: OpenResult = {
        app: p.app,
        ip: p.ip,
        step: p.step,
        durationSeconds: 30,
        expiresAt: FAKE_EXPIRES_AT,
        refreshed: false,
      };
      return result;
    }
    if (method === "close") return { closed: 0 };
    if (method === "release") return { closed: 2 };
    if (method === "check") {
      const p = params as { app: string; ip: string };
      return { open: this.leases.has(`${p.app}|${p.ip}`) };
    }
    if (method === "list") return { leases: [] };
    if (method === "stats") return this.stats;
    if (method === "counters") return { ...this.stats, openLeases: this.openLeases };
    throw new Error(`fake helper: unexpected method ${method}`);
  }

  opens(): OpenParams[] {
    return this.calls.filter((c) => c.method === "open").map((c) => c.params as OpenParams);
  }
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A form POST to `url` through inject() from `remoteAddress`, as curl sends a knock: its status and body. */
export async function postForm(app: FastifyInstance, url: string, fields: Record<string, string>, remoteAddress: string): Promise<{ status: number; body: string }> {
  const res = await app.inject({
    method: "POST",
    url,
    payload: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded" },
    remoteAddress,
  });
  return { status: res.statusCode, body: res.body };
}
