import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { takeInstanceLock } from "@knockport/durable-file";
import { oneAppConfig } from "../../../packages/config/test/fixtures.js";

// knockport dry-run, print-sudoers and uninstall-firewall (the built CLI): the helper's one-shot modes,
// moved out of the process that runs as root.
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI = join(REPO, "bin/knockport");
const dir = mkdtempSync(join(tmpdir(), "kp-fw-cmds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CONFIG = join(dir, "config.yaml");
writeFileSync(CONFIG, oneAppConfig("k-waf-step"));
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 20_000 });

describe("knockport dry-run in WAF mode", () => {
  const run = (...args: string[]) => cli("dry-run", "-c", CONFIG, ...args);

  it("nftables: stealth on nginx's port 80, step-1 set on 443, KnockPort's own ports dropped", () => {
    const r = run("--waf-http-port", "80", "--waf-https-port", "443");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`iifname "eth0" tcp dport { 8080, 8443 } counter drop comment "WAF mode:`);
    expect(r.stdout).toContain(`iifname "eth0" tcp dport 80 notrack`);
    expect(r.stdout).toContain(`iifname "eth0" tcp dport 443 ip saddr @https_v4 counter accept`);
  });

  it("iptables: the same, as iptables-restore text", () => {
    const r = run("--firewall-type", "iptables", "--waf-http-port", "80", "--waf-https-port", "443", "--http-port", "9080");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("-A KNOCKPORT-INPUT -i eth0 -p tcp --dport 9080 -m comment --comment \"WAF mode: KnockPort's own port 9080 is reached only through nginx\" -j DROP");
    expect(r.stdout).toContain("-A KNOCKPORT-PREROUTING -i eth0 -p tcp --dport 80 ");
  });

  it.each([
    [["--waf-http-port", "80"], "--waf-http-port: WAF mode needs both public ports; also set --waf-https-port"],
    [["--waf-http-port", "8080", "--waf-https-port", "443"], "--waf-http-port: the WAF HTTP port (--waf-http-port) must differ from the HTTP knock port"],
    [["--waf-trusted-ips", "127.0.0.1"], "--waf-trusted-ips: only used in WAF mode"],
    [["--waf-http-port", "80", "--waf-https-port", "443", "--waf-trusted-ips", "fe80::1%eth0"], '--waf-trusted-ips: "fe80::1%eth0" is not'],
  ])("%j exits 2 with a message naming the flag, no stack trace", (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("knockport print-sudoers", () => {
  it("without a config prints the shipped nftables file, for the helper's own user", () => {
    const r = cli("print-sudoers");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(REPO, "deploy/sudoers/knockport"), "utf8"));
  });

  it.each([["knockport"], ["root"], ["x y"]])("refuses --sudo-user %s, exit 2 naming the flag", (user) => {
    const r = cli("print-sudoers", "--sudo-user", user);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--sudo-user/);
  });
});

describe("knockport uninstall-firewall", () => {
  it("refuses while a helper holds the state dir's lock, before any firewall command", async () => {
    const state = mkdtempSync(join(dir, "state-"));
    writeFileSync(join(state, "leases.json"), '{"version":1,"log":"x","leases":[]}');
    const lock = await takeInstanceLock(join(state, "helper.lock"), "test");
    try {
      // --iptables-binary names a binary that does not exist: any firewall command would fail louder.
      const r = cli("uninstall-firewall", "--state-dir", state, "--firewall-type", "iptables", "--iptables-binary", "/nonexistent/iptables");
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/another knockport-helper is running/);
      expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
      expect(readFileSync(join(state, "leases.json"), "utf8"), "the saved leases stay").toContain('"leases":[]');
    } finally {
      lock.release();
    }
  });
});
