import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import type { FirewallBackend, SetChange } from "../src/backend.js";
import { LeaseJournal } from "../src/leases.js";
import { HelperService } from "../src/service.js";

class RecordingFirewall implements FirewallBackend {
  readonly type = "nftables" as const;
  readonly installs: SetChange[][] = [];
  renderRuleset(): string {
    return "";
  }
  async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    this.installs.push([...grants]);
  }
  async apply(): Promise<void> {}
  async uninstall(): Promise<boolean> {
    return true;
  }
}

const config = parseConfig(
  {
    global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
    ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 3600, step2_https_duration: 10 },
  },
  "test.yaml",
);

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("HelperService.reinstall (self-heal)", () => {
  it("re-applies the whole firewall with every live lease and its remaining time, none that expired", async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-reinstall-"));
    const clock = { t: Date.UTC(2030, 0, 1), now: () => clock.t };
    const firewall = new RecordingFirewall();
    const service = new HelperService(config, firewall, new LeaseJournal(join(dir, "state")), pino({ level: "silent" }), clock);
    await service.start();
    await service.handlers.open({ step: 1, app: "ssh", ip: "198.51.100.7" }, undefined);
    await service.handlers.open({ step: 2, app: "ssh", ip: "198.51.100.7" }, undefined);
    clock.t += 100_000; // the 10 s step-1 lease has ended, the 3600 s step-2 lease has 3500 s left
    await service.reinstall();
    expect(firewall.installs).toHaveLength(2);
    expect(firewall.installs[1]).toEqual([{ op: "grant", set: "svc_ssh_v4", ip: "198.51.100.7", timeoutSeconds: 3500 }]);
    service.stop();
  });
});
