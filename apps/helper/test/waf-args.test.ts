import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "@knockport/config";
import { oneAppConfig } from "../../../packages/config/test/fixtures.js";
import { parseHelperArgs } from "../src/args.js";
import { HELPER_USAGE } from "../src/usage.js";

const dir = mkdtempSync(join(tmpdir(), "kp-waf-args-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const CONFIG = join(dir, "config.yaml");
writeFileSync(CONFIG, oneAppConfig("k-waf-step"));

const parse = (...extra: string[]) => parseHelperArgs(["-c", CONFIG, ...extra]);

describe("helper WAF flags", () => {
  it("parses the WAF ports; --waf-trusted-ips is the server's (knockport run passes both daemons the same flags)", () => {
    const waf = (...args: string[]) => {
      const options = parse(...args);
      return options === "help" ? options : options.waf;
    };
    expect(waf("--waf-http-port", "80", "--waf-https-port", "443", "--waf-trusted-ips", "127.0.0.1", "--waf-trusted-ips", "10.0.0.1/0")).toEqual({ wafHttpPort: 80, wafHttpsPort: 443 });
    expect(waf()).toEqual({ wafHttpPort: undefined, wafHttpsPort: undefined });
  });

  it.each([
    [["--waf-http-port", "80x"], "--waf-http-port: must be an integer 1-65535"],
  ])("refuses %j naming the flag", (args, message) => {
    expect(() => parse(...args)).toThrow(UsageError);
    expect(() => parse(...args)).toThrow(message);
  });

  it("--help documents the flags", () => {
    for (const flag of ["--waf-http-port N", "--waf-https-port N", "--waf-trusted-ips LIST"]) expect(HELPER_USAGE).toContain(flag);
  });
});
