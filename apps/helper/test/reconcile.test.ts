import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "@knockport/config";
import type { FirewallBackend, SetChange } from "../src/backend.js";
import type { KernelElement } from "../src/backend.js";
import { HelperService } from "../src/service.js";

const T0 = Date.UTC(2030, 0, 1);
const A = "198.51.100.7";
const B = "198.51.100.8";
const STRAY = "198.51.100.20";

const config = parseConfig(
  {
    global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
    ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 600, step2_https_duration: 30 },
    openvpn: { port: 1194, protocol: "udp", access_key_http: ["ovpn-http-key-000"], access_key_https: ["ovpn-https-key-000"], duration: 3600, step2_https_duration: 30 },
  },
  "test.yaml",
);

/** A kernel in memory: elements with absolute deadlines that vanish when the fake clock passes them. */
class FakeKernel implements FirewallBackend {
  readonly type = "nftables" as const;
  readonly elements = new Map<string, number>();
  /** Per-element counters by `set|ip` (what traffic matched); a grant rewrites the element: back to 0. */
  readonly traffic = new Map<string, { packets: number; bytes: number }>();
  readonly applied: SetChange[][] = [];
  listed = 0;
  constructor(private readonly clock: { now(): number }) {}
  renderRuleset(): string {
    return "";
  }
  async install(grants: readonly Extract<SetChange, { op: "grant" }>[]): Promise<void> {
    this.elements.clear();
    await this.apply(grants);
  }
  async apply(changes: readonly SetChange[]): Promise<void> {
    this.applied.push([...changes]);
    for (const c of changes) {
      if (c.op === "grant") this.elements.set(`${c.set}|${c.ip}`, this.clock.now() + c.timeoutSeconds * 1000);
      else this.elements.delete(`${c.set}|${c.ip}`);
      this.traffic.delete(`${c.set}|${c.ip}`);
    }
  }
  isInstalled?: () => Promise<boolean>;
  async listElements(sets: ReadonlySet<string>): Promise<readonly KernelElement[] | undefined> {
    this.listed += 1;
    const now = this.clock.now();
    const out: KernelElement[] = [];
    for (const [key, deadline] of this.elements) {
      const [set = "", ip = ""] = key.split("|");
      if (deadline <= now) this.elements.delete(key);
      else if (sets.has(set)) out.push({ set, ip, expiresInMs: deadline - now, ...(this.traffic.get(key) ?? { packets: 0, bytes: 0 }) });
    }
    return out;
  }
  async uninstall(): Promise<boolean> {
    return true;
  }
  /** Seconds left per `set|ip`. */
  snapshot(): Record<string, number> {
    const now = this.clock.now();
    return Object.fromEntries([...this.elements].filter(([, d]) => d > now).map(([k, d]) => [k, Number.isFinite(d) ? Math.round((d - now) / 1000) : Infinity]));
  }
}

describe("HelperService.reconcile (kernel <-> lease book <-> clock)", () => {
  let dir: string;
  let clock: { t: number; now(): number };
  let kernel: FakeKernel;
  let service: HelperService;
  const open = (step: 1 | 2, app: string, ip: string) => service.handlers.open({ step, app, ip }, undefined);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-reconcile-"));
    clock = { t: T0, now: () => clock.t };
    kernel = new FakeKernel(clock);
    service = new HelperService(config, kernel, pino({ level: "silent" }), clock);
    await service.start();
    await open(1, "ssh", A);
    await open(2, "ssh", A);
    await open(1, "openvpn", B);
    await open(2, "openvpn", B);
    kernel.applied.length = 0;
  });
  afterEach(() => {
    service.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("changes nothing when the kernel matches the leases (no transaction at all)", async () => {
    clock.t += 5000;
    expect(await service.reconcile()).toEqual({ added: 0, retimed: 0, removed: 0 });
    expect(kernel.applied).toEqual([]);
  });

  it("removes a stray element of ours (no lease for it), whatever its timeout", async () => {
    kernel.elements.set(`svc_ssh_v4|${STRAY}`, clock.t + 3600_000);
    kernel.elements.set(`https_v4|${STRAY}`, Infinity);
    expect(await service.reconcile()).toEqual({ added: 0, retimed: 0, removed: 2 });
    expect(kernel.snapshot()).toEqual({ "https_v4|198.51.100.7": 30, "svc_ssh_v4|198.51.100.7": 600, "https_v4|198.51.100.8": 30, "svc_openvpn_v4|198.51.100.8": 3600 });
  });

  it("re-adds a live lease missing from the kernel with its REMAINING time, and never an expired one", async () => {
    clock.t += 100_000; // step-1 leases (30 s) are over, ssh has 500 s left, openvpn 3500 s
    kernel.elements.clear(); // e.g. `nft flush set`
    expect(await service.reconcile()).toEqual({ added: 2, retimed: 0, removed: 0 });
    expect(kernel.snapshot()).toEqual({ "svc_ssh_v4|198.51.100.7": 500, "svc_openvpn_v4|198.51.100.8": 3500 });
  });

  it("resets an element whose kernel timeout is far from its lease's deadline (hand-made timeout 1h, or none)", async () => {
    kernel.elements.set(`svc_ssh_v4|${A}`, clock.t + 3600_000);
    kernel.elements.set(`svc_openvpn_v4|${B}`, Infinity);
    clock.t += 10_000;
    expect(await service.reconcile()).toEqual({ added: 0, retimed: 2, removed: 0 });
    expect(kernel.snapshot()).toMatchObject({ "svc_ssh_v4|198.51.100.7": 590, "svc_openvpn_v4|198.51.100.8": 3590 });
  });

  it("never duplicates: one transaction, each element once, and a second pass finds nothing to do", async () => {
    kernel.elements.clear();
    kernel.elements.set(`svc_openvpn_v4|${STRAY}`, clock.t + 1000_000);
    await service.reconcile();
    expect(kernel.applied).toHaveLength(1);
    const keys = (kernel.applied[0] ?? []).map((c) => `${c.op}|${c.set}|${c.ip}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.sort()).toEqual(
      ["grant|https_v4|198.51.100.7", "grant|https_v4|198.51.100.8", "grant|svc_openvpn_v4|198.51.100.8", "grant|svc_ssh_v4|198.51.100.7", "revoke|svc_openvpn_v4|198.51.100.20"].sort(),
    );
    expect(await service.reconcile()).toEqual({ added: 0, retimed: 0, removed: 0 });
    expect(kernel.applied).toHaveLength(1);
  });

  it("leaves sets that are not lease sets alone and does nothing when the table is absent", async () => {
    kernel.elements.set(`dnat_targets|${STRAY}`, Infinity);
    expect(await service.reconcile()).toEqual({ added: 0, retimed: 0, removed: 0 });
    expect(kernel.elements.has(`dnat_targets|${STRAY}`)).toBe(true);
    kernel.listElements = async () => undefined;
    expect(await service.reconcile()).toBeUndefined();
  });

  it("keeps a knock that lands just before the listing (the book is read after the kernel)", async () => {
    const C = "198.51.100.9";
    const real = kernel.listElements.bind(kernel);
    // A knock for C commits, then the listing (which holds C) is taken: C must not look like a stray.
    kernel.listElements = async (sets) => {
      await open(1, "ssh", C);
      return real(sets);
    };
    expect(await service.reconcile()).toEqual({ added: 0, retimed: 0, removed: 0 });
    expect(kernel.snapshot()[`https_v4|${C}`]).toBe(30);
  });

  it("keeps a knock that lands between the listing and the commit", async () => {
    const C = "198.51.100.9";
    const real = kernel.listElements.bind(kernel);
    kernel.listElements = async (sets) => {
      const listed = await real(sets);
      await open(1, "ssh", C);
      return listed;
    };
    await service.reconcile();
    expect(kernel.snapshot()[`https_v4|${C}`]).toBe(30);
  });
});

describe("HelperService: per-lease counters and self-heal stats", () => {
  let dir: string;
  let clock: { t: number; now(): number };
  let kernel: FakeKernel;
  let service: HelperService;
  const open = (step: 1 | 2, app: string, ip: string) => service.handlers.open({ step, app, ip }, undefined);
  const row = (step: 1 | 2, app: string, ip: string) => service.list().leases.find((l) => l.step === step && l.app === app && l.ip === ip);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-counters-"));
    clock = { t: T0, now: () => clock.t };
    kernel = new FakeKernel(clock);
    kernel.elements.set("svc_ssh_v6|2001:db8::7", T0 + 60_000); // a lease the kernel kept across a restart
    service = new HelperService(config, kernel, pino({ level: "silent" }), clock);
    await service.start();
  });
  afterEach(() => {
    service.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists each lease with its element's counters as the last reconciliation read them, and when", async () => {
    await open(1, "ssh", A);
    await open(1, "openvpn", A);
    await open(2, "ssh", A);
    expect(service.list().countersAt, "nothing read yet").toBeUndefined();
    expect(row(2, "ssh", A)).not.toHaveProperty("packets");
    kernel.traffic.set(`svc_ssh_v4|${A}`, { packets: 12, bytes: 840 });
    kernel.traffic.set(`https_v4|${A}`, { packets: 7, bytes: 3000 });
    // the kernel prints IPv6 its own way: still the lease's element
    kernel.elements.set("svc_ssh_v6|2001:0db8:0:0:0:0:0:7", kernel.elements.get("svc_ssh_v6|2001:db8::7") ?? 0);
    kernel.elements.delete("svc_ssh_v6|2001:db8::7");
    kernel.traffic.set("svc_ssh_v6|2001:0db8:0:0:0:0:0:7", { packets: 3, bytes: 180 });
    clock.t += 1500;
    await service.reconcile();
    const listed = service.list();
    expect(listed.countersAt).toBe(new Date(T0 + 1500).toISOString());
    expect(row(2, "ssh", A)).toMatchObject({ packets: 12, bytes: 840 });
    // step-1 leases of one address share the HTTPS element, and so its counters
    expect(row(1, "ssh", A)).toMatchObject({ packets: 7, bytes: 3000 });
    expect(row(1, "openvpn", A)).toMatchObject({ packets: 7, bytes: 3000 });
    expect(row(2, "ssh", "2001:db8::7")).toMatchObject({ packets: 3, bytes: 180 });
    // more traffic shows only after the next reading (list() asks the kernel nothing)
    kernel.traffic.set(`svc_ssh_v4|${A}`, { packets: 20, bytes: 1400 });
    expect(row(2, "ssh", A)).toMatchObject({ packets: 12 });
    const listings = kernel.listed;
    for (let i = 0; i < 50; i++) service.list();
    expect(kernel.listed).toBe(listings);
    await service.reconcile();
    expect(row(2, "ssh", A)).toMatchObject({ packets: 20, bytes: 1400 });
    // a refresh rewrites the element: its counters restart at 0 (seen at the next reading)
    await open(1, "ssh", A);
    await open(2, "ssh", A);
    await service.reconcile();
    expect(row(2, "ssh", A)).toMatchObject({ packets: 0, bytes: 0 });
  });

  it("a lease granted after the last reading has no counters yet; a re-apply drops the reading", async () => {
    await service.reconcile();
    await open(1, "ssh", B);
    expect(service.list().countersAt).toBeDefined();
    expect(row(1, "ssh", B)).not.toHaveProperty("packets");
    await service.reinstall();
    expect(service.list().countersAt).toBeUndefined();
    expect(service.list().leases.every((l) => l.packets === undefined && l.bytes === undefined)).toBe(true);
  });

  it("counts restored leases, reconciliations, corrected elements and re-applies (the stats method)", async () => {
    const before = await service.handlers.stats({}, undefined);
    expect(before).toEqual({
      startedAt: new Date(T0).toISOString(),
      leasesRestored: 1,
      reinstalls: 0,
      reconciliations: 0,
      elementsAdded: 0,
      elementsRetimed: 0,
      elementsRemoved: 0,
      selfHealFailures: 0,
    });
    await open(1, "ssh", A);
    await open(2, "ssh", A);
    await service.reconcile(); // nothing to correct
    kernel.elements.delete(`svc_ssh_v4|${A}`);
    kernel.elements.set(`svc_ssh_v4|${STRAY}`, clock.t + 3600_000);
    kernel.elements.set(`https_v4|${A}`, Infinity);
    await service.reconcile();
    kernel.listElements = async () => undefined; // table gone: no reconciliation happened
    await service.reconcile();
    await service.reinstall();
    await service.reinstall();
    expect(await service.handlers.stats({}, undefined)).toMatchObject({
      leasesRestored: 1,
      reinstalls: 2,
      reconciliations: 2,
      elementsAdded: 1,
      elementsRetimed: 1,
      elementsRemoved: 1,
    });
  });

  it("the self-heal loop re-applies a missing firewall, reconciles an installed one, and counts failed checks", async () => {
    let installed = false;
    let failing = true;
    kernel.isInstalled = async () => {
      if (failing) throw new Error("nft: cannot list");
      return installed;
    };
    service.startSelfHeal(20);
    const until = async (ok: () => Promise<boolean>) => {
      for (let i = 0; i < 200 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 10));
    };
    const stats = () => service.handlers.stats({}, undefined);
    await until(async () => (await stats()).selfHealFailures >= 2);
    failing = false;
    await until(async () => (await stats()).reinstalls >= 1);
    installed = true;
    await until(async () => (await stats()).reconciliations >= 1);
    const s = await stats();
    expect(s.selfHealFailures).toBeGreaterThanOrEqual(2);
    expect(s.reinstalls).toBeGreaterThanOrEqual(1);
    expect(s.reconciliations).toBeGreaterThanOrEqual(1);
    service.stop();
    const stopped = await stats();
    await new Promise((r) => setTimeout(r, 100));
    expect(await stats(), "stop() ends the loop").toEqual(stopped);
  });
});

describe("HelperService: leases put back with a rounded-up timeout end on their own deadline", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a restored lease's element is removed at its deadline, not up to 1 s later; a refreshed one is left alone", async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-ontime-"));
    const clock = { t: T0, now: () => clock.t };
    const kernel = new FakeKernel(clock);
    // 300 ms left for both at the restart: the re-installed table gets whole seconds (1 s).
    kernel.elements.set(`svc_ssh_v4|${A}`, T0 + 300);
    kernel.elements.set(`svc_openvpn_v4|${B}`, T0 + 300);
    const service = new HelperService(config, kernel, pino({ level: "silent" }), clock);
    try {
      await service.start();
      expect(kernel.snapshot()).toEqual({ "svc_ssh_v4|198.51.100.7": 1, "svc_openvpn_v4|198.51.100.8": 1 });
      // B is refreshed by an admin grant before its deadline: its timer must not remove the new grant.
      await service.handlers.grant({ app: "openvpn", ip: B, durationSeconds: 600 }, undefined);
      clock.t = T0 + 300;
      await new Promise((r) => setTimeout(r, 600));
      const left = kernel.snapshot();
      expect(left["svc_ssh_v4|198.51.100.7"], "removed on the deadline (the kernel would hold it 700 ms more)").toBeUndefined();
      expect(left["svc_openvpn_v4|198.51.100.8"]).toBe(600);
    } finally {
      service.stop();
    }
  });
});

describe("HelperService: restored leases and a lowered duration", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a kernel element longer than the app's current duration is cut to it (book and kernel); the HTTPS element is not put back", async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-clamp-"));
    const clock = { t: T0, now: () => clock.t };
    const kernel = new FakeKernel(clock);
    // granted under an older config: ssh duration 86400 (now 600); openvpn within its 3600
    kernel.elements.set(`svc_ssh_v4|${A}`, T0 + 86_400_000);
    kernel.elements.set(`https_v4|${A}`, T0 + 3_600_000);
    kernel.elements.set(`svc_openvpn_v4|${B}`, T0 + 1_000_000);
    const service = new HelperService(config, kernel, pino({ level: "silent" }), clock);
    try {
      await service.start();
      expect(kernel.snapshot()).toEqual({ "svc_ssh_v4|198.51.100.7": 600, "svc_openvpn_v4|198.51.100.8": 1000 });
      const leases = (await service.handlers.list({}, undefined)).leases;
      expect(leases.map((l) => [l.app, l.step, l.remainingSeconds]).sort()).toEqual([
        ["openvpn", 2, 1000],
        ["ssh", 2, 600],
      ]);
    } finally {
      service.stop();
    }
  });
});
