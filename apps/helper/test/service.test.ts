import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig, type KnockportConfig } from "@knockport/config";
import { HelperError, type OpenParams } from "@knockport/protocol";
import type { FirewallBackend, KernelElement, SetChange } from "../src/backend.js";
import { HelperService } from "../src/service.js";

const IP = "198.51.100.7";
const IP2 = "203.0.113.9";
const T0 = Date.UTC(2030, 0, 1);

function makeConfig(apps: readonly string[] = ["openvpn", "ssh"]): KnockportConfig {
  const all: Record<string, unknown> = {
    openvpn: {
      port: 1194,
      protocol: "udp",
      access_key_http: ["ovpn-http-key-000"],
      access_key_https: ["ovpn-https-key-000"],
      duration: 86400,
      step2_https_duration: 30,
    },
    ssh: {
      port: 2222,
      access_key_http: ["ssh-http-key-0000"],
      access_key_https: ["ssh-https-key-0000"],
      duration: 3600,
      step2_https_duration: 10,
    },
  };
  const doc: Record<string, unknown> = {
    global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
  };
  for (const a of apps) doc[a] = all[a];
  return parseConfig(doc, "test.yaml");
}

/** Records what the service asks of the firewall; can be told to fail. */
class FakeFirewall implements FirewallBackend {
  readonly type = "nftables" as const;
  readonly log: ({ kind: "install"; grants: SetChange[] } | { kind: "apply"; changes: SetChange[] })[] = [];
  failApply = 0;
  /** What listElements answers: the sets' elements a restarted helper finds in the kernel. */
  elements: KernelElement[] | undefined;

  async listElements(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined> {
    return this.elements?.filter((e) => sets.has(e.set));
  }

  renderRuleset(): string {
    return "table inet knockport {}\n";
  }
  async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    this.log.push({ kind: "install", grants: [...grants] });
  }
  async apply(changes: readonly SetChange[]): Promise<void> {
    if (this.failApply > 0) {
      this.failApply -= 1;
      throw new Error("nft: Could not process rule");
    }
    this.log.push({ kind: "apply", changes: [...changes] });
  }
  async uninstall(): Promise<boolean> {
    return true;
  }
  /** Every change applied, flattened, in order. */
  changes(): SetChange[] {
    return this.log.flatMap((e) => (e.kind === "apply" ? e.changes : []));
  }
  reset(): void {
    this.log.length = 0;
  }
}

const silent = pino({ level: "silent" });

async function expectHelperError(promise: Promise<unknown>, name: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HelperError);
  expect((err as HelperError).errorName).toBe(name);
}

describe("HelperService", () => {
  let dir: string;
  let clock: { t: number; now(): number };
  let firewall: FakeFirewall;
  let service: HelperService;

  const open = (p: OpenParams) => service.handlers.open(p, undefined);
  const close = (app: string, ip: string) => service.handlers.close({ app, ip }, undefined);
  const list = () => service.handlers.list({}, undefined);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-helper-"));
    clock = { t: T0, now: () => clock.t };
    firewall = new FakeFirewall();
    service = new HelperService(makeConfig(), firewall, silent, clock);
    await service.start();
    firewall.reset();
  });
  afterEach(() => {
    service.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("step 1 grants the HTTPS set element for step2_https_duration", async () => {
    const result = await open({ step: 1, app: "openvpn", ip: IP });
    expect(result).toEqual({
      app: "openvpn",
      ip: IP,
      step: 1,
      durationSeconds: 30,
      expiresAt: new Date(T0 + 30_000).toISOString(),
      refreshed: false,
    });
    expect(firewall.log).toEqual([{ kind: "apply", changes: [{ op: "grant", set: "https_v4", ip: IP, timeoutSeconds: 30 }] }]);
  });

  it("normalises addresses: an IPv4-mapped address goes to the v4 set, IPv6 to the v6 set", async () => {
    expect((await open({ step: 1, app: "ssh", ip: `::ffff:${IP}` })).ip).toBe(IP);
    expect((await open({ step: 1, app: "ssh", ip: "2001:DB8:0::0:5" })).ip).toBe("2001:db8::5");
    await open({ step: 2, app: "ssh", ip: "2001:db8::5" });
    expect(firewall.changes()).toEqual([
      { op: "grant", set: "https_v4", ip: IP, timeoutSeconds: 10 },
      { op: "grant", set: "https_v6", ip: "2001:db8::5", timeoutSeconds: 10 },
      { op: "grant", set: "svc_ssh_v6", ip: "2001:db8::5", timeoutSeconds: 3600 },
    ]);
  });

  it("refuses a new lease past the app's max_leases for that step and family (TOO_MANY_LEASES); refreshes, the other family and freed slots still work", async () => {
    service.stop();
    const doc = makeConfig(["ssh"]);
    const config = { ...doc, apps: doc.apps.map((a) => ({ ...a, maxLeases: 2 })) };
    service = new HelperService(config, firewall, silent, clock);
    await service.start();
    firewall.reset();
    await open({ step: 1, app: "ssh", ip: IP });
    await open({ step: 1, app: "ssh", ip: IP2 });
    await expectHelperError(open({ step: 1, app: "ssh", ip: "198.51.100.99" }), "TOO_MANY_LEASES");
    expect((await list()).leases).toHaveLength(2);
    expect(firewall.changes()).toHaveLength(2); // nothing reached the kernel for the refused one
    expect((await open({ step: 1, app: "ssh", ip: IP })).refreshed).toBe(true);
    await open({ step: 1, app: "ssh", ip: "2001:db8::7" });
    await open({ step: 2, app: "ssh", ip: IP }); // step 2 has its own budget
    await expectHelperError(service.handlers.grant({ app: "ssh", ip: "198.51.100.98" }, undefined).then(() => service.handlers.grant({ app: "ssh", ip: "198.51.100.97" }, undefined)), "TOO_MANY_LEASES");
    await close("ssh", IP2);
    await open({ step: 1, app: "ssh", ip: "198.51.100.99" });
    clock.t += 11_000; // the step-1 leases (10 s) end: their slots are free again, swept or not
    await open({ step: 1, app: "ssh", ip: "198.51.100.50" });
  });

  it("refuses step 2 without a step 1 of the same app and address", async () => {
    await expectHelperError(open({ step: 2, app: "openvpn", ip: IP }), "STEP1_REQUIRED");
    await open({ step: 1, app: "ssh", ip: IP });
    await open({ step: 1, app: "openvpn", ip: IP2 });
    await expectHelperError(open({ step: 2, app: "openvpn", ip: IP }), "STEP1_REQUIRED");
    expect(firewall.changes().filter((c) => c.set.startsWith("svc_"))).toEqual([]);
  });

  it("refuses step 2 once the step-1 lease has expired", async () => {
    await open({ step: 1, app: "ssh", ip: IP });
    clock.t += 10_000;
    await expectHelperError(open({ step: 2, app: "ssh", ip: IP }), "STEP1_REQUIRED");
  });

  it("step 2 after step 1 grants the app's service set for `duration`", async () => {
    await open({ step: 1, app: "openvpn", ip: IP });
    clock.t += 29_000;
    const result = await open({ step: 2, app: "openvpn", ip: IP });
    expect(result).toMatchObject({ step: 2, durationSeconds: 86400, refreshed: false });
    expect(result.expiresAt).toBe(new Date(clock.t + 86_400_000).toISOString());
    expect(firewall.changes().at(-1)).toEqual({ op: "grant", set: "svc_openvpn_v4", ip: IP, timeoutSeconds: 86400 });
  });

  it("a re-open refreshes the lease instead of adding a second one", async () => {
    await open({ step: 1, app: "openvpn", ip: IP });
    await open({ step: 2, app: "openvpn", ip: IP });
    clock.t += 60_000;
    await open({ step: 1, app: "openvpn", ip: IP });
    const again = await open({ step: 2, app: "openvpn", ip: IP });
    expect(again.refreshed).toBe(true);
    const leases = (await list()).leases;
    expect(leases.filter((l) => l.step === 2)).toHaveLength(1);
    expect(leases.filter((l) => l.step === 2)[0]?.remainingSeconds).toBe(86400);
    expect(firewall.changes().at(-1)).toEqual({ op: "grant", set: "svc_openvpn_v4", ip: IP, timeoutSeconds: 86400 });
  });

  it("an open after the previous lease expired is not a refresh", async () => {
    await open({ step: 1, app: "ssh", ip: IP });
    clock.t += 11_000;
    expect((await open({ step: 1, app: "ssh", ip: IP })).refreshed).toBe(false);
  });

  it("a firewall failure answers FIREWALL_FAILED and records no lease", async () => {
    firewall.failApply = 1;
    await expectHelperError(open({ step: 1, app: "openvpn", ip: IP }), "FIREWALL_FAILED");
    expect((await list()).leases).toEqual([]);
    // and step 2 is still refused: the failed step 1 opened nothing
    await expectHelperError(open({ step: 2, app: "openvpn", ip: IP }), "STEP1_REQUIRED");
  });

  it("a firewall failure on a refresh keeps the previous lease", async () => {
    await open({ step: 1, app: "openvpn", ip: IP });
    clock.t += 10_000;
    firewall.failApply = 1;
    await expectHelperError(open({ step: 1, app: "openvpn", ip: IP }), "FIREWALL_FAILED");
    expect((await list()).leases.map((l) => l.remainingSeconds)).toEqual([20]);
  });

  it("close removes both leases and revokes the service and HTTPS elements", async () => {
    await open({ step: 1, app: "openvpn", ip: IP });
    await open({ step: 2, app: "openvpn", ip: IP });
    firewall.reset();
    expect(await close("openvpn", IP)).toEqual({ closed: 2 });
    expect(firewall.changes()).toEqual([
      { op: "revoke", set: "svc_openvpn_v4", ip: IP },
      { op: "revoke", set: "https_v4", ip: IP },
    ]);
    expect((await list()).leases).toEqual([]);
    await expectHelperError(open({ step: 2, app: "openvpn", ip: IP }), "STEP1_REQUIRED");
  });

  it("close of one app's step 1 re-grants the HTTPS element for another app's remaining time", async () => {
    await open({ step: 1, app: "ssh", ip: IP }); // 10 s
    await open({ step: 1, app: "openvpn", ip: IP }); // 30 s
    expect(firewall.changes()).toEqual([
      { op: "grant", set: "https_v4", ip: IP, timeoutSeconds: 10 },
      { op: "grant", set: "https_v4", ip: IP, timeoutSeconds: 30 },
    ]);
    clock.t += 4_000;
    // re-opening the shorter one must not shorten the shared element
    await open({ step: 1, app: "ssh", ip: IP });
    expect(firewall.changes().at(-1)).toEqual({ op: "grant", set: "https_v4", ip: IP, timeoutSeconds: 26 });
    clock.t += 3_000;
    expect(await close("openvpn", IP)).toEqual({ closed: 1 });
    // ssh's step 1 (re-opened at +4 s for 10 s) has 7 s left
    expect(firewall.changes().at(-1)).toEqual({ op: "grant", set: "https_v4", ip: IP, timeoutSeconds: 7 });
    expect((await list()).leases.map((l) => [l.app, l.step])).toEqual([["ssh", 1]]);
    await close("ssh", IP);
    expect(firewall.changes().at(-1)).toEqual({ op: "revoke", set: "https_v4", ip: IP });
  });

  it("close of an address without leases closes nothing and still revokes", async () => {
    expect(await close("ssh", IP2)).toEqual({ closed: 0 });
    expect(firewall.changes()).toEqual([
      { op: "revoke", set: "svc_ssh_v4", ip: IP2 },
      { op: "revoke", set: "https_v4", ip: IP2 },
    ]);
  });

  it("list shows live leases with their remaining seconds, soonest first", async () => {
    await open({ step: 1, app: "openvpn", ip: IP });
    await open({ step: 2, app: "openvpn", ip: IP });
    await open({ step: 1, app: "ssh", ip: IP2 });
    clock.t += 2_500;
    const { leases } = await list();
    expect(leases).toEqual([
      {
        app: "ssh",
        ip: IP2,
        step: 1,
        port: 8443,
        protocol: "tcp",
        expiresAt: new Date(T0 + 10_000).toISOString(),
        remainingSeconds: 7.5,
      },
      {
        app: "openvpn",
        ip: IP,
        step: 1,
        port: 8443,
        protocol: "tcp",
        expiresAt: new Date(T0 + 30_000).toISOString(),
        remainingSeconds: 27.5,
      },
      {
        app: "openvpn",
        ip: IP,
        step: 2,
        port: 1194,
        protocol: "udp",
        expiresAt: new Date(T0 + 86_400_000).toISOString(),
        remainingSeconds: 86397.5,
      },
    ]);
    clock.t += 7_500;
    expect((await list()).leases.map((l) => l.app + l.step)).toEqual(["openvpn1", "openvpn2"]);
  });

  it("hello reports the firewall type, knock ports and service ports", async () => {
    const hello = await service.handlers.hello({}, undefined);
    expect(hello).toMatchObject({ firewallType: "nftables", httpPort: 8080, httpsPort: 8443 });
    expect(hello.services).toEqual([
      { app: "openvpn", port: 1194, protocol: "udp" },
      { app: "ssh", port: 2222, protocol: "tcp" },
    ]);
  });

  it("refuses unknown apps and addresses that are not unicast", async () => {
    await expectHelperError(open({ step: 1, app: "nosuchapp", ip: IP }), "UNKNOWN_APP");
    await expectHelperError(close("nosuchapp", IP), "UNKNOWN_APP");
    for (const bad of ["fe80::1%eth0", "224.0.0.1", "255.255.255.255", "0.0.0.0", "::", "ff02::1", "198.51.100.7/32", "1.2.3"]) {
      await expectHelperError(open({ step: 1, app: "ssh", ip: bad }), "INVALID_ADDRESS");
    }
    await expectHelperError(close("ssh", "224.0.0.1"), "INVALID_ADDRESS");
    expect(firewall.log).toEqual([]);
  });

  it("restart: the service elements the kernel holds come back as leases with the kernel's time left; the HTTPS element, strays and unknown apps' sets do not", async () => {
    const firewall2 = new FakeFirewall();
    firewall2.elements = [
      { set: "svc_openvpn_v4", ip: IP, expiresInMs: 86_380_250 },
      { set: "svc_openvpn_v6", ip: "2001:DB8::0:7", expiresInMs: 5_000 },
      { set: "https_v4", ip: IP, expiresInMs: 10_000 }, // whose step 1 it was, the kernel cannot say
      { set: "svc_openvpn_v4", ip: IP2, expiresInMs: Infinity }, // added by hand without a timeout: never ours
      { set: "svc_openvpn_v6", ip: IP2, expiresInMs: 3_000 }, // a v4 address in a v6 set
      { set: "svc_ssh_v4", ip: IP2, expiresInMs: 60_000 }, // the new configuration no longer has "ssh"
    ];
    const restarted = new HelperService(makeConfig(["openvpn"]), firewall2, silent, clock);
    await restarted.start();
    // one install transaction carrying the live grants: no moment in which their owners are locked out
    expect(firewall2.log).toEqual([
      {
        kind: "install",
        grants: [
          { op: "grant", set: "svc_openvpn_v4", ip: IP, timeoutSeconds: 86381 },
          { op: "grant", set: "svc_openvpn_v6", ip: "2001:db8::7", timeoutSeconds: 5 },
        ],
      },
    ]);
    const leases = (await restarted.handlers.list({}, undefined)).leases;
    expect(leases.map((l) => [l.app, l.step, l.ip, l.expiresAt])).toEqual([
      ["openvpn", 2, "2001:db8::7", new Date(T0 + 5_000).toISOString()],
      ["openvpn", 2, IP, new Date(T0 + 86_380_250).toISOString()],
    ]);
    expect((await restarted.handlers.stats({}, undefined)).leasesRestored).toBe(2);
    // a step 2 after the restart needs a fresh step 1
    await expectHelperError(restarted.handlers.open({ step: 2, app: "openvpn", ip: IP }, undefined), "STEP1_REQUIRED");
    await restarted.handlers.open({ step: 1, app: "openvpn", ip: IP }, undefined);
    expect((await restarted.handlers.open({ step: 2, app: "openvpn", ip: IP }, undefined)).refreshed).toBe(true);
    restarted.stop();
  });

  it("restart: a kernel element longer than the app's current duration is cut to it", async () => {
    const firewall2 = new FakeFirewall();
    firewall2.elements = [{ set: "svc_ssh_v4", ip: IP, expiresInMs: 7200_000 }];
    const restarted = new HelperService(makeConfig(), firewall2, silent, clock);
    await restarted.start();
    expect(firewall2.log).toEqual([{ kind: "install", grants: [{ op: "grant", set: "svc_ssh_v4", ip: IP, timeoutSeconds: 3600 }] }]);
    expect((await restarted.handlers.list({}, undefined)).leases.map((l) => l.remainingSeconds)).toEqual([3600]);
    restarted.stop();
  });

  it("restart without our table (first start, after a reboot) starts with no leases", async () => {
    const firewall2 = new FakeFirewall();
    const restarted = new HelperService(makeConfig(), firewall2, silent, clock);
    await restarted.start();
    expect(firewall2.log).toEqual([{ kind: "install", grants: [] }]);
    expect((await restarted.handlers.list({}, undefined)).leases).toEqual([]);
    restarted.stop();
  });
});
