// End-to-end: per-lease packet/byte counters in `knockport status --json` on the real kernel (nftables
// set elements with `counter`, ipset sets with `counters`): the knocker's real traffic is counted on
// its lease and agrees with the kernel, a bystander's is not, a re-knock restarts them, and a helper
// started over sets an earlier version made without counters (an upgrade) replaces them, keeps the
// lease and counts.
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { e2eFirewalls } from "./harness.js";
import { pollUntil, sleep, type AppSpec, type ManagedProcess } from "./testbed.js";

interface Lease {
  app: string;
  ip: string;
  step: number;
  packets?: number;
  bytes?: number;
}
interface Status {
  leases: Lease[];
  countersAt?: string;
}

/** Connections to the service, each a connect + echo + close. */
const CONNECTS = 5;
/** From the client, per echo connection at least: SYN, ACK, the data segment, FIN (more with delayed ACKs). */
const MIN_PACKETS_PER_CONNECT = 4;

describeKnockport("per-lease counters ($firewall, real kernel)", e2eFirewalls(), { duration: 120, step2HttpsDuration: 30, rateLimitPerMinute: 1000 }, (h, { firewall }) => {
  let ssh: AppSpec;
  let cliIp: string;
  const extra: ManagedProcess[] = [];

  beforeAll(() => {
    ssh = h.ssh;
    cliIp = h.ip("cli");
  });
  afterAll(async () => {
    for (const p of extra) await p.stop(3000).catch(() => undefined);
  });

  const status = async (): Promise<Status> => {
    const r = await h.stack.cli(["status", "--admin-socket", h.stack.adminSocketPath, "--json"]);
    if (r.exitCode !== 0) throw new Error(`knockport status: exit ${String(r.exitCode)}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Status;
  };
  /** The first status whose counters the helper read after `t` (it reads them every 2 s). */
  const statusReadAfter = async (t: number): Promise<Status> => {
    const s = await pollUntil(async () => {
      const r = await status();
      return r.countersAt !== undefined && Date.parse(r.countersAt) > t ? r : undefined;
    }, 10_000, 250);
    if (s === undefined) throw new Error(`no counter reading after ${new Date(t).toISOString()} within 10 s`);
    return s;
  };
  const leaseOf = (s: Status, step: 1 | 2, ip = cliIp): Lease | undefined => s.leases.find((l) => l.step === step && l.ip === ip && (step === 1 || l.app === ssh.name));
  /** The kernel's own counter of the knocker's service element (nft -j / ipset save, read by the testbed). */
  const kernelCounter = async (): Promise<{ packets?: number; bytes?: number } | undefined> =>
    (await h.elementsHolding(cliIp)).find((e) => e.set === `svc_${ssh.name}_v${h.family}`);

  it("counts the knocker's traffic to the service on its lease, as the kernel does; a bystander's is not counted", async () => {
    await h.fullKnock("cli", ssh);
    const first = await statusReadAfter(Date.now());
    expect(leaseOf(first, 2), "nothing sent to the service yet").toMatchObject({ packets: 0, bytes: 0 });
    // the step-2 knock itself went through the HTTPS element
    expect(leaseOf(first, 1)?.packets ?? 0, "step-2 HTTPS request counted on the step-1 lease").toBeGreaterThan(0);

    for (let i = 0; i < CONNECTS; i++) expect(await h.svc("cli", ssh)).toBe("open");
    for (let i = 0; i < 3; i++) expect(await h.svc("cli2", ssh, h.family, 400)).toBe("closed");
    const after = await statusReadAfter(Date.now());
    const lease = leaseOf(after, 2);
    console.info(`[counters ${firewall}] after ${CONNECTS} echo connections: ${JSON.stringify(lease)}`);
    expect(lease?.packets ?? 0).toBeGreaterThanOrEqual(CONNECTS * MIN_PACKETS_PER_CONNECT);
    // bytes are IP lengths: at least the IP + TCP headers of every packet
    expect(lease?.bytes ?? 0).toBeGreaterThanOrEqual((lease?.packets ?? 0) * (h.family === 4 ? 40 : 60));
    expect(after.leases.filter((l) => l.ip === h.ip("cli2")), "the bystander has no lease").toEqual([]);
    // The kernel's own reading, taken after the helper's, is at least as high and not far beyond it
    // (nothing was sent since except what the kernel may still count from closing connections).
    const kernel = await kernelCounter();
    expect(kernel?.packets ?? -1).toBeGreaterThanOrEqual(lease?.packets ?? 0);
    expect(kernel?.packets ?? Infinity).toBeLessThanOrEqual((lease?.packets ?? 0) + 4);

    // human-readable form shows the same numbers
    const table = await h.stack.cli(["status", "--admin-socket", h.stack.adminSocketPath]);
    console.info(`[counters ${firewall}] knockport status:\n${table.stdout}`);
    expect(table.stdout).toMatch(/PACKETS\s+BYTES/);
    expect(table.stdout).toContain("counters read from the kernel at ");
  });

  it("a re-knock rewrites the element: its counters restart at 0", async () => {
    const before = leaseOf(await status(), 2);
    expect(before?.packets ?? 0).toBeGreaterThan(0);
    await h.fullKnock("cli", ssh);
    const refreshed = await statusReadAfter(Date.now());
    expect(leaseOf(refreshed, 2)).toMatchObject({ packets: 0, bytes: 0 });
    expect(await h.svc("cli", ssh)).toBe("open");
    const again = await statusReadAfter(Date.now());
    expect(leaseOf(again, 2)?.packets ?? 0).toBeGreaterThanOrEqual(MIN_PACKETS_PER_CONNECT);
  });

  it("upgrade: a helper started over sets made without counters replaces them, keeps the lease, and counts", async () => {
    h.stack.helper.signal("SIGTERM");
    await Promise.race([h.stack.helper.exited, sleep(5000)]);
    await downgradeSets();
    const state = await h.firewallState();
    expect(state?.elements.some((e) => e.ip === cliIp && e.set === `svc_${ssh.name}_v${h.family}` && e.packets === undefined), "old-style element without counter").toBe(true);
    expect(await h.svc("cli", ssh), "the old sets still let the knocker in").toBe("open");

    const helper = h.topo.spawn("srv", process.execPath, [...h.stack.helperArgv], { label: "knockport-helper (upgraded)" });
    extra.push(helper);
    await helper.waitForLine(/"msg":"helper ready"/, 20_000);
    expect(await h.svc("cli", ssh), "the lease survives the upgrade").toBe("open");
    expect(await h.svc("cli2", ssh, h.family, 400)).toBe("closed");
    const upgraded = await h.firewallState();
    const element = upgraded?.elements.find((e) => e.ip === cliIp && e.set === `svc_${ssh.name}_v${h.family}`);
    expect(element?.packets, "the re-created element has a counter").toBeGreaterThanOrEqual(0);
    for (let i = 0; i < 2; i++) expect(await h.svc("cli", ssh)).toBe("open");
    const after = await statusReadAfter(Date.now());
    expect(leaseOf(after, 2)?.packets ?? 0).toBeGreaterThanOrEqual(2 * MIN_PACKETS_PER_CONNECT);
    expect(helper.lines.some((l) => l.line.includes('"event":"firewall.installed"'))).toBe(true);
  });

  /** Turns the installed sets into what a version without counters made, elements kept (helper stopped). */
  async function downgradeSets(): Promise<void> {
    if (firewall === "nftables" || firewall === "vyos") {
      const listed = await h.topo.exec("srv", "nft", ["list", "table", "inet", "knockport"], { timeoutMs: 10_000 });
      if (listed.exitCode !== 0) throw new Error(listed.stderr);
      const old = listed.stdout
        .split("\n")
        .filter((l) => l.trim() !== "counter")
        .join("\n")
        .replace(/ counter packets \d+ bytes \d+/g, "")
        .replace(/ expires \S+?(?=[,\s}])/g, "");
      expect(old).not.toMatch(/\bcounter packets \d+ bytes \d+ timeout/);
      const loaded = await h.topo.exec("srv", "nft", ["-f", "-"], { input: `table inet knockport {}\ndelete table inet knockport\n${old}`, timeoutMs: 10_000 });
      if (loaded.exitCode !== 0) throw new Error(`loading the old-style table: ${loaded.stderr}`);
      return;
    }
    // ipset: swap each of our sets for one without counters holding the same elements (the rules follow the swap)
    const saved = await h.topo.exec("srv", "ipset", ["save"], { timeoutMs: 10_000 });
    if (saved.exitCode !== 0) throw new Error(saved.stderr);
    const ours = saved.stdout.split("\n").filter((l) => /^(create|add) kp-\S+-v[46] /.test(l));
    const names = ours.filter((l) => l.startsWith("create ")).map((l) => l.split(" ")[1] ?? "");
    const script = [
      ...ours.map((l) => l.replace(/^(create|add) (\S+)/, "$1 $2-o").replace(/ counters\b/, "").replace(/ packets \d+ bytes \d+/, "")),
      ...names.flatMap((n) => [`swap ${n} ${n}-o`, `destroy ${n}-o`]),
      "",
    ].join("\n");
    const r = await h.topo.exec("srv", "ipset", ["restore"], { input: script, timeoutMs: 10_000 });
    if (r.exitCode !== 0) throw new Error(`making old-style ipsets: ${r.stderr}`);
    const check = await h.topo.exec("srv", "ipset", ["save"], { timeoutMs: 10_000 });
    expect(check.stdout).not.toMatch(/^create kp-.* counters/m);
  }
});
