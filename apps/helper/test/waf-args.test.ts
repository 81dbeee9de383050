import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "@knockport/config";
import { HELPER_USAGE, parseHelperArgs } from "../src/args.js";

const HELPER = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/knockport-helper");
const dir = mkdtempSync(join(tmpdir(), "kp-waf-args-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CONFIG = join(dir, "config.yaml");
writeFileSync(
  CONFIG,
  `global:
  http_post_path: /k-waf-step-one
  https_post_path: /k-waf-step-two
  interface_ext: eth0
ssh:
  port: 2222
  access_key_http: [ssh-http-key-1]
  access_key_https: [ssh-https-key-1]
  duration: 60
`,
);

const parse = (...extra: string[]) => parseHelperArgs(["-c", CONFIG, ...extra]);

describe("helper WAF flags", () => {
  it("parses the three flags; repeated --waf-trusted-ips accumulate", () => {
    expect(parse("--waf-http-port", "80", "--waf-https-port", "443", "--waf-trusted-ips", "127.0.0.1", "--waf-trusted-ips", "::1,10.0.0.0/8")).toMatchObject({
      waf: { wafHttpPort: 80, wafHttpsPort: 443, wafTrustedIps: ["127.0.0.1", "::1", "10.0.0.0/8"] },
    });
    expect(parse()).toMatchObject({ waf: { wafHttpPort: undefined, wafHttpsPort: undefined, wafTrustedIps: undefined } });
  });

  it.each([
    [["--waf-http-port", "80x"], "--waf-http-port: must be an integer 1-65535"],
    [["--waf-trusted-ips", "10.0.0.1/0"], '--waf-trusted-ips: "10.0.0.1/0" is not'],
  ])("refuses %j naming the flag", (args, message) => {
    expect(() => parse(...args)).toThrow(UsageError);
    expect(() => parse(...args)).toThrow(message);
  });

  it("--help documents the flags", () => {
    for (const flag of ["--waf-http-port N", "--waf-https-port N", "--waf-trusted-ips LIST"]) expect(HELPER_USAGE).toContain(flag);
  });
});

describe("knockport-helper --dry-run in WAF mode (the built binary)", () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [HELPER, "-c", CONFIG, "--dry-run", ...args], { encoding: "utf8", timeout: 20_000 });

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
