import { describe, expect, it } from "vitest";
import { ROOT_ERRORS, exitStatusOf } from "@knockport/protocol";
import {
  UsageError,
  formatTrustedProxy,
  parseConfig,
  parseTrustedProxy,
  parseWafFlags,
  publicHttpPort,
  publicHttpsPort,
  type PortOverrides,
} from "../src/index.js";
import { baseDoc, FILE, problemsOf, type Doc } from "./helpers.js";

const parse = (doc: Doc, overrides?: PortOverrides) => parseConfig(doc, FILE, overrides);
const bare = (doc: Doc, overrides?: PortOverrides) => problemsOf(() => parse(doc, overrides)).map((p) => p.slice(FILE.length + 2));
const withGlobal = (extra: Record<string, unknown>): Doc => {
  const d = baseDoc();
  Object.assign(d.global, extra);
  return d;
};
const trustedOf = (doc: Doc, overrides?: PortOverrides) => parse(doc, overrides).waf?.trustedProxies.map(formatTrustedProxy);

describe("parseTrustedProxy", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["10.0.0.0/8", "10.0.0.0/8"],
    ["192.0.2.7/32", "192.0.2.7"],
    ["fd00:0:0:0::/64", "fd00::/64"],
    ["2001:DB8::1", "2001:db8::1"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
  ])("%s -> %s", (text, canonical) => {
    const p = parseTrustedProxy(text);
    expect(p).toBeDefined();
    expect(formatTrustedProxy(p!)).toBe(canonical);
  });

  it.each(["", "0.0.0.0/0", "::/0", "10.0.0.0/0", "10.0.0.0/33", "::1/129", "fe80::1%eth0", "[::1]", "127.0.0.1:80", "localhost", "10.0.0.1/", "10.0.0.1/8/8", " 10.0.0.1", "::ffff:10.0.0.0/104", "224.0.0.1", "1.2.3"])(
    "refuses %j",
    (text) => {
      expect(parseTrustedProxy(text)).toBeUndefined();
    },
  );
});

describe("parseWafFlags", () => {
  it("accumulates repeated --waf-trusted-ips, each comma-separated", () => {
    const f = parseWafFlags({ "waf-http-port": "80", "waf-https-port": "443", "waf-trusted-ips": ["127.0.0.1, ::1", "10.0.0.0/8"] });
    expect(f).toEqual({ wafHttpPort: 80, wafHttpsPort: 443, wafTrustedIps: ["127.0.0.1", "::1", "10.0.0.0/8"] });
  });

  it("leaves everything undefined without flags", () => {
    expect(parseWafFlags({})).toEqual({ wafHttpPort: undefined, wafHttpsPort: undefined, wafTrustedIps: undefined });
  });

  it.each([
    [{ "waf-http-port": "0" }, "--waf-http-port: must be an integer 1-65535"],
    [{ "waf-https-port": "44x" }, "--waf-https-port: must be an integer 1-65535"],
    [{ "waf-trusted-ips": ["127.0.0.1,"] }, '--waf-trusted-ips: "" is not'],
    [{ "waf-trusted-ips": ["0.0.0.0/0"] }, '--waf-trusted-ips: "0.0.0.0/0" is not'],
    [{ "waf-trusted-ips": ["fe80::1%eth0"] }, '--waf-trusted-ips: "fe80::1%eth0" is not'],
    [{ "waf-trusted-ips": [Array.from({ length: 65 }, (_, i) => `10.0.${i}.1`).join(",")] }, "--waf-trusted-ips: at most 64 entries"],
  ])("%j is a usage error naming the flag", (values, message) => {
    let err: unknown;
    try {
      parseWafFlags(values);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect(exitStatusOf(err, ROOT_ERRORS)).toBe(2);
    expect((err as Error).message).toContain(message);
  });
});

describe("parseConfig: WAF mode", () => {
  it("is off by default", () => {
    const c = parse(baseDoc());
    expect(c.waf).toBeUndefined();
    expect([publicHttpPort(c), publicHttpsPort(c)]).toEqual([8080, 8443]);
  });

  it("takes the config keys; loopback is trusted when nobody is named", () => {
    const c = parse(withGlobal({ waf_http_port: 80, waf_https_port: 443 }));
    expect(c.waf).toMatchObject({ httpPort: 80, httpsPort: 443, trustedProxiesDefault: true });
    expect(c.waf?.trustedProxies.map(formatTrustedProxy)).toEqual(["127.0.0.1", "::1"]);
    expect([publicHttpPort(c), publicHttpsPort(c), c.httpPort, c.httpsPort]).toEqual([80, 443, 8080, 8443]);
  });

  it("flags win over the port keys", () => {
    const c = parse(withGlobal({ waf_http_port: 80, waf_https_port: 443 }), { wafHttpPort: 8081, wafHttpsPort: 8444 });
    expect([c.waf?.httpPort, c.waf?.httpsPort]).toEqual([8081, 8444]);
  });

  it("flags ADD to global.waf_trusted_ips, never replace it; duplicates fold; an explicit list replaces the default", () => {
    const doc = withGlobal({ waf_http_port: 80, waf_https_port: 443, waf_trusted_ips: ["10.0.0.0/8", "::1"] });
    expect(trustedOf(doc)).toEqual(["10.0.0.0/8", "::1"]);
    expect(trustedOf(doc, { wafTrustedIps: ["192.0.2.1", "::1", "0:0::1"] })).toEqual(["10.0.0.0/8", "::1", "192.0.2.1"]);
    expect(parse(doc).waf?.trustedProxiesDefault).toBe(false);
    expect(trustedOf(baseDoc(), { wafHttpPort: 80, wafHttpsPort: 443, wafTrustedIps: ["192.0.2.1"] })).toEqual(["192.0.2.1"]);
  });

  it.each([
    [{ waf_http_port: 80 }, {}, "global.waf_http_port: WAF mode needs both public ports; also set --waf-https-port (or global.waf_https_port)"],
    [{}, { wafHttpsPort: 443 }, "--waf-https-port: WAF mode needs both public ports; also set --waf-http-port (or global.waf_http_port)"],
    [{ waf_trusted_ips: ["127.0.0.1"] }, {}, "global.waf_trusted_ips: only used in WAF mode; also set --waf-http-port and --waf-https-port (or global.waf_http_port and global.waf_https_port), or remove it"],
    [{}, { wafTrustedIps: ["127.0.0.1"] }, "--waf-trusted-ips: only used in WAF mode; also set --waf-http-port and --waf-https-port (or global.waf_http_port and global.waf_https_port), or remove it"],
    [{ waf_http_port: 443, waf_https_port: 443 }, {}, "global.waf_https_port: the WAF HTTPS port (global.waf_https_port) must differ from the WAF HTTP port (global.waf_http_port); both are 443"],
    [{ waf_http_port: 8080, waf_https_port: 443 }, {}, "global.waf_http_port: the WAF HTTP port (global.waf_http_port) must differ from the HTTP knock port (the default; global.http_port or --http-port moves it); both are 8080"],
    [{ waf_http_port: 80, waf_https_port: 443 }, { httpsPort: 80 }, "global.waf_http_port: the WAF HTTP port (global.waf_http_port) must differ from the HTTPS knock port (--https-port); both are 80"],
    [{ waf_http_port: 80, waf_https_port: 2222 }, {}, "ssh.port: 2222 is also the WAF HTTPS port (global.waf_https_port); use another port for the service or move the knock"],
    [{ waf_http_port: 80, waf_https_port: 443, waf_trusted_ips: ["127.0.0.1", "0.0.0.0/0"] }, {}, 'global.waf_trusted_ips.1: must be an IPv4 or IPv6 address or network such as 127.0.0.1, ::1, 10.0.0.0/8 or fd00::/64 (no /0: that would trust every peer) (got "0.0.0.0/0")'],
    [{ waf_http_port: 80, waf_https_port: 443, waf_trusted_ips: "127.0.0.1" }, {}, "global.waf_trusted_ips: must be a list of at most 64 addresses or networks"],
    [{ waf_http_port: 0, waf_https_port: 443 }, {}, "global.waf_http_port: must be an integer 1-65535"],
  ])("global %j with flags %j: %s", (extra, overrides, message) => {
    expect(bare(withGlobal(extra), overrides as PortOverrides).join("\n")).toContain(message);
  });
});
