// End-to-end: deploy/fail2ban on the real server's log. Real knocks from cli and cli2 over IPv4 and
// IPv6 (accepted, wrong key, unknown app, rate limited), the server's own JSON lines, and Debian's
// fail2ban-regex with the shipped filter: it matches every refused or rate-limited knock with that
// client's address and never an accepted one. fail2ban-client checks the shipped jail.
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { REPO_ROOT, e2eFirewalls } from "./harness.js";

const run = promisify(execFile);
const FILTER = join(REPO_ROOT, "deploy/fail2ban/filter.d/knockport.conf");
const JAIL = join(REPO_ROOT, "deploy/fail2ban/jail.d/knockport.conf");
const RATE_LIMIT = 4;

interface KnockLine {
  event: string;
  step: number;
  ip: string;
  reason?: string;
}

// The filter reads the server's lines, which are the same with every backend: one backend is enough.
const stack = { duration: 60, step2HttpsDuration: 10, rateLimitPerMinute: RATE_LIMIT };

describeKnockport("fail2ban filter on the real server's log lines ($firewall)", e2eFirewalls()[0] ?? "nftables", stack, (h) => {
  const dir = mkdtempSync(join(tmpdir(), "kp-fail2ban-"));
  let serverLines: string[] = [];

  beforeAll(async () => {
    const ssh = h.ssh;
    const wrong = { key: "wrong-key-0123456789abcdef" };
    // cli over IPv4: a good knock only; cli over IPv6: a good step 1, then a wrong step-2 key
    await h.fullKnock("cli", ssh, 4);
    await h.step1("cli", ssh, { family: 6 });
    expect((await h.step2("cli", ssh, { family: 6, ...wrong })).status).toBe(403);
    // cli2 over IPv4: wrong keys and an unknown app; over IPv6: wrong keys past the rate limit
    await h.step1("cli2", ssh, { family: 4, ...wrong });
    await h.step1("cli2", ssh, { family: 4, ...wrong });
    await h.step1("cli2", ssh, { family: 4, appName: "no-such-app" });
    for (let i = 0; i < RATE_LIMIT + 2; i += 1) await h.step1("cli2", ssh, { family: 6, ...wrong });
    await new Promise((r) => setTimeout(r, 500)); // the last lines reach the pipe
    serverLines = h.stack.server.lines.filter((l) => l.stream === "stdout").map((l) => l.line);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const knockLines = (): KnockLine[] =>
    serverLines.flatMap((l) => {
      try {
        const o = JSON.parse(l) as KnockLine;
        return typeof o.event === "string" && o.event.startsWith("knock.") ? [o] : [];
      } catch {
        return [];
      }
    });
  const refused = (l: KnockLine): boolean => l.event === "knock.refused" || l.event === "knock.rate_limited";

  it("the server logged each knock with its client: accepted, refused with the reason, rate limited", () => {
    const by = (ip: string): string[] => knockLines().filter((l) => l.ip === ip).map((l) => `${l.event} ${l.step}${l.reason ? ` ${l.reason}` : ""}`);
    expect(by(h.ip("cli", 4))).toEqual(["knock.accepted 1", "knock.accepted 2"]);
    expect(by(h.ip("cli", 6))).toEqual(["knock.accepted 1", "knock.refused 2 bad-key"]);
    expect(by(h.ip("cli2", 4))).toEqual(["knock.refused 1 bad-key", "knock.refused 1 bad-key", "knock.refused 1 unknown-app"]);
    const flood = by(h.ip("cli2", 6));
    expect(flood).toHaveLength(RATE_LIMIT + 2);
    expect(flood.filter((l) => l === "knock.rate_limited 1").length).toBeGreaterThanOrEqual(2);
    expect(flood.filter((l) => l !== "knock.rate_limited 1").every((l) => l === "knock.refused 1 bad-key")).toBe(true);
  });

  it("fail2ban-regex matches exactly the refused and rate-limited lines, each with its client's address, IPv4 and IPv6", async () => {
    const log = join(dir, "server.log");
    writeFileSync(log, `${serverLines.join("\n")}\n`);
    const { stdout } = await run("fail2ban-regex", ["-o", "ip", log, FILTER], { timeout: 60_000 });
    const matched = stdout.split("\n").filter((l) => l.trim() !== "").sort();
    const expected = knockLines().filter(refused).map((l) => l.ip).sort();
    expect(expected.length).toBeGreaterThanOrEqual(3 + 1 + RATE_LIMIT + 2);
    expect(matched).toEqual(expected);
    expect(new Set(matched)).toEqual(new Set([h.ip("cli", 6), h.ip("cli2", 4), h.ip("cli2", 6)]));
    expect(matched).not.toContain(h.ip("cli", 4));
  });

  it("fail2ban-client accepts the shipped jail with the filter (systemd backend, the server's unit)", async () => {
    const conf = join(dir, "fail2ban");
    cpSync("/etc/fail2ban", conf, { recursive: true });
    rmSync(join(conf, "jail.d"), { recursive: true, force: true });
    cpSync(JAIL, join(conf, "jail.d/knockport.conf"));
    cpSync(FILTER, join(conf, "filter.d/knockport.conf"));
    const test = await run("fail2ban-client", ["-c", conf, "-t"], { timeout: 60_000 });
    expect(test.stdout).toContain("OK");
    const dump = await run("fail2ban-client", ["-c", conf, "-d"], { timeout: 60_000 });
    expect(dump.stdout).toContain("['add', 'knockport', 'systemd']");
    expect(dump.stdout).toContain("['set', 'knockport', 'addjournalmatch', '_SYSTEMD_UNIT=knockport-server.service']");
  });
});
