// End-to-end: knockport-helper --use-sudo runs every firewall command as `sudo -n -- <absolute path> <args>`,
// and only command lines that `knockport print-sudoers` allows. sudo itself is replaced by a
// recording stand-in (--sudo-path) that checks `-n --`, logs the command line and runs it: the helper
// still runs as root here, so this proves the command discipline, not a non-root deployment.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { describeKnockport, type KnockportOptions } from "./describe-knockport.js";
import { e2eFirewalls, states, type Harness } from "./harness.js";
import { pollUntil } from "./testbed.js";

const FAKE_SUDO = `#!${process.execPath}
// Recording sudo stand-in for the KnockPort e2e suite: sudo -n -- /abs/prog args...
const { appendFileSync } = require("node:fs");
const { spawnSync } = require("node:child_process");
const argv = process.argv.slice(2);
if (argv[0] !== "-n" || argv[1] !== "--" || !String(argv[2] || "").startsWith("/")) {
  process.stderr.write("fake sudo: expected -n -- /absolute/program\\n");
  process.exit(97);
}
appendFileSync(__filename + ".log", JSON.stringify(argv.slice(2)) + "\\n");
const r = spawnSync(argv[2], argv.slice(3), { stdio: "inherit" });
process.exit(r.status === null ? 98 : r.status);
`;

/** Command lines of the sudoers file: the Cmnd_Alias entries, unescaped. */
function allowedCommands(sudoers: string): Set<string> {
  const out = new Set<string>();
  for (const line of sudoers.split("\n")) {
    const m = /^ {4}(\/.*?)(?:, \\)?$/.exec(line);
    if (m?.[1]) out.add(m[1].replace(/\\([\\,:=])/g, "$1"));
  }
  return out;
}

/**
 * Whether sudoers allows a command line: an exact entry, or (sudo 1.9.10+) an entry whose argument list is
 * a regular expression `^…$`, matched against the arguments joined by spaces.
 */
function isAllowed(allowed: ReadonlySet<string>, command: string): boolean {
  if (allowed.has(command)) return true;
  const [program, ...args] = command.split(" ");
  for (const entry of allowed) {
    const space = entry.indexOf(" ");
    if (space < 0 || entry.slice(0, space) !== program) continue;
    const pattern = entry.slice(space + 1);
    if (pattern.startsWith("^") && pattern.endsWith("$") && new RegExp(pattern).test(args.join(" "))) return true;
  }
  return false;
}

/** A recording sudo in its own directory (removed after the file's blocks stopped) and the command lines it ran. */
function fakeSudo(): { path: string; ran: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), "kp-sudo-"));
  const path = join(dir, "sudo.cjs");
  writeFileSync(path, FAKE_SUDO, { mode: 0o755 });
  chmodSync(dir, 0o755);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ran = (): string[] => readFileSync(`${path}.log`, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as string[]).join(" "));
  return { path, ran };
}

/** The command lines of `knockport print-sudoers`. */
async function printedSudoers(h: Harness): Promise<Set<string>> {
  const printed = await h.stack.firewallCommand("print-sudoers");
  expect(printed.exitCode, printed.stderr).toBe(0);
  return allowedCommands(printed.stdout);
}

// iptables-nft and iptables-legacy run the same command lines with other binary names: one of them is enough.
for (const firewall of e2eFirewalls().filter((f) => f !== "iptables-nft" || !e2eFirewalls().includes("iptables-legacy"))) {
  const sudo = fakeSudo();
  const stack: KnockportOptions = {
    duration: 3,
    step2HttpsDuration: 5,
    rateLimitPerMinute: 1000,
    helperArgs: ["--use-sudo", "--sudo-path", sudo.path],
    // close_established on the first app: its revoke runs conntrack through sudo too.
    apps: (_topo, base) => base.apps.map((a, i) => (i === 0 ? { ...a, closeEstablished: true } : a)),
  };

  describeKnockport("knockport end to end ($firewall): --use-sudo", firewall, stack, (h) => {
    it("knocks work through sudo, and every command run is one the printed sudoers file allows", async () => {
      const ssh = h.ssh;
      await h.fullKnock("cli", ssh);
      expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
      const revoke = await h.stack.cli(["revoke", "--app", ssh.name, "--ip", h.ip("cli"), "--admin-socket", h.stack.adminSocketPath]);
      expect(revoke.exitCode, revoke.stderr).toBe(0);
      // The revoke cuts the flows; if the 3 s lease ended first, the expiry sweep does (within a second).
      const cut = await pollUntil(async () => h.stack.helper.lines.some((l) => l.line.includes('"event":"conntrack.deleted"')) || undefined, 3000, 50);
      expect(cut, "conntrack ran through sudo at the revoke or the expiry").toBe(true);
      h.stack.helper.signal("SIGTERM");
      await h.stack.helper.exited;
      const un = await h.stack.firewallCommand("uninstall-firewall");
      expect(un.exitCode, `knockport uninstall-firewall: ${un.stdout}${un.stderr}`).toBe(0);
      expect(await h.firewallState(), "uninstalled (knockport uninstall-firewall runs as root)").toBeUndefined();

      const allowed = await printedSudoers(h);
      const ran = sudo.ran();
      expect(ran.length, "commands run through sudo").toBeGreaterThan(1);
      expect(ran.filter((c) => c.includes("conntrack -D")), "the conntrack command ran through sudo").toHaveLength(1);
      expect([...new Set(ran)].filter((c) => !isAllowed(allowed, c)), `allowed:\n${[...allowed].join("\n")}`).toEqual([]);
    });
  });
}

// Custom chains (docs/firewall.md "Custom tables and chains") read the admin's table with two more command lines.
for (const firewall of e2eFirewalls().filter((f) => f === "nftables")) {
  const sudo = fakeSudo();
  const stack: KnockportOptions = {
    duration: 3,
    step2HttpsDuration: 5,
    rateLimitPerMinute: 1000,
    helperArgs: ["--use-sudo", "--sudo-path", sudo.path, "--nftables-table-filter", "filter"],
    beforeKnockport: async (topo) => {
      const r = await topo.exec("srv", "nft", ["-f", "-"], {
        timeoutMs: 10_000,
        input: "table inet filter {\n  chain input {\n    type filter hook input priority filter; policy drop;\n    ct state established,related accept\n    meta l4proto { icmp, ipv6-icmp } accept\n  }\n}\n",
      });
      if (r.exitCode !== 0) throw new Error(`admin ruleset: ${r.stderr}`);
    },
  };

  describeKnockport("knockport end to end (nftables, --nftables-table-filter): --use-sudo", firewall, stack, (h) => {
    it("knocks and self-heal checks work through sudo, with only the printed command lines; uninstall leaves the admin's table", async () => {
      const ssh = h.ssh;
      await h.fullKnock("cli", ssh);
      expect(await states({ cli: () => h.svc("cli", ssh), cli2: () => h.svc("cli2", ssh) })).toEqual({ cli: "open", cli2: "closed" });
      await new Promise((resolve) => setTimeout(resolve, 2500)); // at least one self-heal check and reconciliation
      h.stack.helper.signal("SIGTERM");
      await h.stack.helper.exited;
      const un = await h.stack.firewallCommand("uninstall-firewall");
      expect(un.exitCode, `knockport uninstall-firewall: ${un.stdout}${un.stderr}`).toBe(0);
      const left = await h.topo.exec("srv", "nft", ["list", "ruleset"], { timeoutMs: 10_000 });
      expect(left.stdout, "uninstalled").not.toContain("knockport");
      expect(left.stdout).toContain("chain input");

      const allowed = await printedSudoers(h);
      const ran = new Set(sudo.ran());
      expect([...ran].filter((c) => !allowed.has(c)), `allowed:\n${[...allowed].join("\n")}`).toEqual([]);
      expect([...ran].filter((c) => / list table inet filter$/.test(c)).length, "both listings of the admin's table ran").toBe(2);
    });
  });
}
