import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import { HelperError } from "@knockport/protocol";
import type { FirewallBackend, SetChange } from "../src/backend.js";
import { HelperService } from "../src/service.js";

const config = parseConfig(
  {
    global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
    ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 600 },
  },
  "test.yaml",
);

/** A firewall whose transactions take a while (as starting nft does) and that refuses one address. */
class SlowFirewall implements FirewallBackend {
  readonly type = "nftables" as const;
  readonly transactions: SetChange[][] = [];
  refuseIp: string | undefined;

  renderRuleset(): string {
    return "";
  }
  async install(): Promise<void> {}
  async apply(changes: readonly SetChange[]): Promise<void> {
    await new Promise((r) => setTimeout(r, 15));
    if (this.refuseIp !== undefined && changes.some((c) => c.ip === this.refuseIp)) throw new Error("nft: refused");
    this.transactions.push([...changes]);
  }
  async uninstall(): Promise<boolean> {
    return true;
  }
}

let dir: string;
let firewall: SlowFirewall;
let service: HelperService;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "kp-group-"));
  firewall = new SlowFirewall();
  service = new HelperService(config, firewall, pino({ level: "silent" }));
  await service.start();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ipOf = (i: number): string => `198.51.100.${i + 1}`;

describe("group commit of grants", () => {
  it("60 concurrent knocks share a few firewall transactions and all succeed", async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => service.handlers.open({ step: 1, app: "ssh", ip: ipOf(i) }, undefined)),
    );
    expect(results.map((r) => r.ip)).toEqual(Array.from({ length: 60 }, (_, i) => ipOf(i)));
    expect(firewall.transactions.length).toBeGreaterThanOrEqual(2); // the first alone, the rest grouped
    expect(firewall.transactions.length).toBeLessThanOrEqual(5);
    expect(firewall.transactions.flat()).toHaveLength(60);
    expect(service.list().leases).toHaveLength(60);
  });

  it("a step 2 queued right behind its step 1 is accepted in the same group", async () => {
    const [a, b] = await Promise.all([
      service.handlers.open({ step: 1, app: "ssh", ip: ipOf(3) }, undefined),
      service.handlers.open({ step: 2, app: "ssh", ip: ipOf(3) }, undefined),
    ]);
    expect([a.step, b.step]).toEqual([1, 2]);
    expect(firewall.transactions.flat().map((c) => c.set)).toEqual(["https_v4", "svc_ssh_v4"]);
  });

  it("one refused change fails only its own request; the rest of its group is retried and opens", async () => {
    firewall.refuseIp = ipOf(5);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => service.handlers.open({ step: 1, app: "ssh", ip: ipOf(i) }, undefined)),
    );
    const failed = outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []));
    expect(failed).toEqual([5]);
    const reason = (outcomes[5] as PromiseRejectedResult).reason as HelperError;
    expect(reason).toBeInstanceOf(HelperError);
    expect(reason.errorName).toBe("FIREWALL_FAILED");
    const leaseIps = service.list().leases.map((l) => l.ip).sort();
    expect(leaseIps).toEqual(Array.from({ length: 12 }, (_, i) => ipOf(i)).filter((ip) => ip !== ipOf(5)).sort());
    expect(firewall.transactions.flat().some((c) => c.ip === ipOf(5))).toBe(false);
  });

  it("validation failures in a group reject at once and do not block the others", async () => {
    const outcomes = await Promise.allSettled([
      service.handlers.open({ step: 1, app: "ssh", ip: ipOf(1) }, undefined),
      service.handlers.open({ step: 2, app: "ssh", ip: ipOf(2) }, undefined), // no step 1
      service.handlers.open({ step: 1, app: "nope", ip: ipOf(3) }, undefined),
      service.handlers.open({ step: 1, app: "ssh", ip: ipOf(4) }, undefined),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    expect(((outcomes[1] as PromiseRejectedResult).reason as HelperError).errorName).toBe("STEP1_REQUIRED");
    expect(((outcomes[2] as PromiseRejectedResult).reason as HelperError).errorName).toBe("UNKNOWN_APP");
  });
});
