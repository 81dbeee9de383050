import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_MONITOR_LINE, NftMonitor, lineSplitter, touchesTable } from "../src/runtime/monitor.js";
import { readTableListing } from "@knockport/backend-nftables/render";

const SILENT = { warn: (): void => undefined };

const NFT = "/usr/sbin/nft";
const IP = "/usr/sbin/ip";
const canRun = process.getuid?.() === 0 && existsSync(NFT) && existsSync(IP);
const why = canRun ? "" : " (skipped: needs root, nft and ip)";
const TABLES = ["inet knockport"];

describe("touchesTable", () => {
  it("counts table, chain, rule and set events of our table, not elements, generations or other tables", () => {
    expect(touchesTable("delete table inet knockport", TABLES)).toBe(true);
    expect(touchesTable("delete chain inet knockport input", TABLES)).toBe(true);
    expect(touchesTable("delete rule inet knockport input handle 12", TABLES)).toBe(true);
    expect(touchesTable("add rule inet knockport input tcp dport 22 counter packets 0 bytes 0 drop", TABLES)).toBe(true);
    expect(touchesTable("add set inet knockport https_v4 { type ipv4_addr; flags timeout; }", TABLES)).toBe(true);
    expect(touchesTable("add element inet knockport https_v4 { 198.51.100.7 timeout 10s expires 10s }", TABLES)).toBe(false);
    expect(touchesTable("delete element inet knockport kp_sync { 0x00000007 timeout 1h }", TABLES)).toBe(false);
    expect(touchesTable("# new generation 7 by process 11211 (nft)", TABLES)).toBe(false);
    expect(touchesTable("delete table inet knockport2", TABLES)).toBe(false);
    expect(touchesTable("delete table ip filter", TABLES)).toBe(false);
    expect(touchesTable("add chain ip vyos_filter NAME_IN-KnockPort", ["inet knockport", "ip vyos_filter"])).toBe(true);
  });
});

describe("nft monitor's output is read in bounded memory", () => {
  it("skips an endless line as it arrives, flags it once, and reads the event after it", async () => {
    // 256 MiB without a newline, then an event of ours: a reader that buffers whole lines holds all of it.
    const writer = [
      "const chunk = 'x'.repeat(1 << 20); let left = 256;",
      "const more = () => { while (left > 0) { left -= 1; if (!process.stdout.write(chunk)) return void process.stdout.once('drain', more); }",
      "  process.stdout.write('\\ndelete table inet knockport\\n'); setTimeout(() => undefined, 5000); };",
      "more();",
    ].join("\n");
    const events: string[] = [];
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const monitor = new NftMonitor({ command: process.execPath, args: ["-e", writer], tables: TABLES, onChange: (e) => events.push(e), log: SILENT });
    monitor.start();
    try {
      for (let i = 0; i < 1500 && !events.includes("delete table inet knockport"); i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      monitor.stop();
      clearInterval(sampler);
    }
    expect(peak - before, "resident memory grew by the line's size").toBeLessThan(64 * 1024 * 1024);
    expect(events).toEqual([`nft monitor printed a line over ${MAX_MONITOR_LINE} characters`, "delete table inet knockport"]);
  });

  it("holds at most the cap of a line across chunks, and splits lines at every newline", () => {
    const lines: string[] = [];
    let overlong = 0;
    const split = lineSplitter(8, (l) => lines.push(l), () => (overlong += 1));
    for (const chunk of ["add ", "tab", "le\nx\n\n0123", "45678", "9abc", "\nok\nend"]) split(chunk);
    expect(lines).toEqual(["x", "", "ok"]);
    expect(overlong).toBe(2);
    split("\n");
    expect(lines.at(-1)).toBe("end");
  });
});

/** A named network namespace of this test: nothing on the host changes. */
describe.skipIf(!canRun)(`nft monitor and table fingerprint on the real kernel${why}`, () => {
  const ns = `kp-unit-monitor-${process.pid}`;
  const nft = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(IP, ["netns", "exec", ns, NFT, ...args], { encoding: "utf8" });
  const TABLE = [
    "add table inet knockport",
    "add set inet knockport s { type ipv4_addr; flags timeout; counter; }",
    "add chain inet knockport input { type filter hook input priority filter - 10; policy accept; }",
    "add rule inet knockport input tcp dport 22 ip saddr @s counter accept",
    "add rule inet knockport input tcp dport 22 counter drop",
  ].join("\n");
  let monitor: NftMonitor | undefined;
  beforeAll(() => {
    expect(spawnSync(IP, ["netns", "add", ns]).status).toBe(0);
  });
  afterEach(() => monitor?.stop());
  afterAll(() => {
    spawnSync(IP, ["netns", "delete", ns]);
  });

  const waitFor = async (what: () => boolean, ms: number): Promise<boolean> => {
    for (let i = 0; i < ms / 10 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
    return what();
  };

  it("reports a flush ruleset, a deleted rule and a deleted chain within a fraction of a second, not an element", async () => {
    expect(spawnSync(IP, ["netns", "exec", ns, NFT, "-f", "-"], { input: `${TABLE}\n` }).status).toBe(0);
    const events: string[] = [];
    monitor = new NftMonitor({ command: IP, args: ["netns", "exec", ns, NFT, "monitor"], tables: TABLES, onChange: (e) => events.push(e), log: SILENT });
    monitor.start();
    await new Promise((r) => setTimeout(r, 300)); // nft monitor subscribed
    expect(nft("add", "element", "inet", "knockport", "s", "{ 198.51.100.1 timeout 60s }").status).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(events, "an element is a lease, not a change of the rules").toEqual([]);
    const handle = /# handle (\d+)/.exec(nft("-a", "list", "chain", "inet", "knockport", "input").stdout.split("\n").find((l) => l.includes("drop")) ?? "")?.[1] ?? "";
    expect(nft("delete", "rule", "inet", "knockport", "input", "handle", handle).status).toBe(0);
    expect(await waitFor(() => events.some((e) => e.startsWith("delete rule inet knockport input")), 1000)).toBe(true);
    expect(nft("flush", "ruleset").status).toBe(0);
    expect(await waitFor(() => events.some((e) => e === "delete table inet knockport"), 1000)).toBe(true);
  });

  it("starts nft monitor again when it dies, and reports that events may have been missed", async () => {
    const events: string[] = [];
    monitor = new NftMonitor({
      command: IP,
      args: ["netns", "exec", ns, NFT, "monitor"],
      tables: TABLES,
      onChange: (e) => events.push(e),
      log: SILENT,
      restartDelayMs: { first: 50, max: 200 },
    });
    monitor.start();
    await new Promise((r) => setTimeout(r, 300));
    const pids = () => spawnSync("pgrep", ["-f", `^${NFT} monitor$`], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean);
    const mine = pids().filter((p) => spawnSync(IP, ["netns", "identify", p], { encoding: "utf8" }).stdout.trim() === ns);
    expect(mine).toHaveLength(1);
    process.kill(Number(mine[0]), "SIGKILL");
    expect(await waitFor(() => events.some((e) => e.startsWith("nft monitor ended")), 1000)).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(spawnSync(IP, ["netns", "exec", ns, NFT, "-f", "-"], { input: `${TABLE}\n` }).status).toBe(0);
    expect(await waitFor(() => events.some((e) => e === "add table inet knockport"), 1000), "the restarted monitor reports again").toBe(true);
    nft("flush", "ruleset");
  });

  it("fingerprints the rules, hooks and priorities, not the elements or counters", () => {
    nft("flush", "ruleset");
    expect(spawnSync(IP, ["netns", "exec", ns, NFT, "-f", "-"], { input: `${TABLE}\n` }).status).toBe(0);
    const print = (): string => readTableListing(nft("-t", "-j", "list", "table", "inet", "knockport").stdout, false).fingerprint;
    const installed = print();
    expect(nft("add", "element", "inet", "knockport", "s", "{ 198.51.100.1 timeout 60s }").status).toBe(0);
    expect(print(), "an element changes nothing").toBe(installed);
    // Traffic through the counters: curl to port 22 on lo passes the input hook (and is dropped there).
    expect(spawnSync(IP, ["-n", ns, "link", "set", "lo", "up"]).status).toBe(0);
    spawnSync(IP, ["netns", "exec", ns, "curl", "-sS", "-m", "1", "http://127.0.0.1:22/"]);
    expect(nft("list", "chain", "inet", "knockport", "input").stdout).toMatch(/counter packets [1-9]/);
    expect(print(), "counted packets change nothing").toBe(installed);
    expect(nft("flush", "chain", "inet", "knockport", "input").status).toBe(0);
    expect(print(), "a flushed chain differs").not.toBe(installed);
    nft("flush", "ruleset");
    const moved = TABLE.replace("priority filter - 10", "priority filter + 10");
    expect(spawnSync(IP, ["netns", "exec", ns, NFT, "-f", "-"], { input: `${moved}\n` }).status).toBe(0);
    expect(print(), "another priority differs").not.toBe(installed);
    nft("flush", "ruleset");
  });
});
