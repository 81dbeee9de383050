import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import type { FirewallBackend, SetChange } from "../src/backend.js";
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
    const service = new HelperService(config, firewall, pino({ level: "silent" }), clock);
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

/** A firewall that reports changes like `nft monitor` does and says whether its rules are in place. */
class WatchedFirewall extends RecordingFirewall {
  inPlace = true;
  onChange: ((reason: string) => void) | undefined;
  override async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    await super.install(grants);
    this.inPlace = true;
  }
  async isInstalled(): Promise<boolean> {
    return this.inPlace;
  }
  watch(onChange: (reason: string) => void): () => void {
    this.onChange = onChange;
    return () => {
      this.onChange = undefined;
    };
  }
}

describe("self-heal on a reported change", () => {
  const until = async (what: () => boolean, ms: number): Promise<boolean> => {
    for (let i = 0; i < ms / 5 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
    return what();
  };

  it("re-applies at once when the backend reports a change, not at the next tick; a second one within 1 s waits", async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-reinstall-"));
    const firewall = new WatchedFirewall();
    const service = new HelperService(config, firewall, pino({ level: "silent" }));
    await service.start();
    await service.handlers.open({ step: 1, app: "ssh", ip: "198.51.100.7" }, undefined);
    service.startSelfHeal(60_000); // the periodic tick never comes during this test
    expect(firewall.onChange, "the self-heal watches the backend").toBeDefined();
    firewall.inPlace = false;
    const reported = performance.now();
    firewall.onChange?.("delete table inet knockport");
    expect(await until(() => firewall.installs.length === 2, 500), "re-applied on the event").toBe(true);
    expect(performance.now() - reported).toBeLessThan(200);
    expect(firewall.installs[1]?.map((g) => g.ip)).toEqual(["198.51.100.7"]);
    // An event while the rules are in place re-applies nothing.
    firewall.onChange?.("add rule inet knockport input ...");
    await new Promise((r) => setTimeout(r, 50));
    expect(firewall.installs).toHaveLength(2);
    // Gone again right away: the second re-apply waits until 1 s after the first.
    firewall.inPlace = false;
    firewall.onChange?.("delete table inet knockport");
    await new Promise((r) => setTimeout(r, 300));
    expect(firewall.installs).toHaveLength(2);
    expect(await until(() => firewall.installs.length === 3, 1500)).toBe(true);
    service.stop();
    expect(firewall.onChange, "stop ends the watch").toBeUndefined();
  });
});
