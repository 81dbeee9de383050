import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT_ERRORS, exitStatusOf } from "@knockport/protocol";
import {
  DEFAULT_HTTP_PORT,
  DEFAULT_HTTPS_PORT,
  HTTP_POST_PATH_MAX_LENGTH,
  parseConfig,
  parseDestination,
  type PortOverrides,
} from "../src/index.js";
import type { Port } from "@knockport/protocol";
import { baseDoc, configError, FILE, problemsOf, SECRETS, withDoc, withoutFile, type Doc } from "./helpers.js";

const parse = (doc: Doc, overrides?: PortOverrides) => parseConfig(doc, FILE, overrides);
const problems = (doc: Doc, overrides?: PortOverrides) => problemsOf(() => parse(doc, overrides));
/** Problems without the file prefix, which every line carries. */
const bare = (doc: Doc, overrides?: PortOverrides) => withoutFile(problems(doc, overrides));

describe("parseConfig: a valid config", () => {
  it("normalises keys and fills every default", () => {
    const c = parse(baseDoc());
    expect(c.file).toBe(FILE);
    expect(c.httpPort).toBe(8080);
    expect(c.httpsPort).toBe(8443);
    expect(DEFAULT_HTTP_PORT).toBe(8080);
    expect(DEFAULT_HTTPS_PORT).toBe(8443);
    expect(c.global).toEqual({
      httpPostPath: "/k-step-one",
      httpsPostPath: "/k-step-two",
      rateLimitPerMinute: 5,
      rateLimitIpv6Prefix: 64,
      httpsConnectionLimit: { perMinute: 60, burst: 20 },
      interfaceExt: "eth0",
      interfaceInt: "eth0",
      allowMissingInterfaces: [],
      twoFactorFolder: resolve("config", "2fa"),
      twoFactorSkewPeriods: 1,
      healthcheckAppName: undefined,
    });
    expect(c.apps).toEqual([
      {
        name: "openvpn",
        port: 1194,
        protocol: "udp",
        accessKeysHttp: ["openvpn-http-1", "openvpn-http-2"],
        accessKeysHttps: ["openvpn-https-1", "openvpn-https-2"],
        destination: { kind: "local" },
        durationSeconds: 86400,
        step2HttpsDurationSeconds: 5,
        maxLeases: 100_000,
        interfaceExt: "eth0",
        interfaceInt: "eth0",
        masquerade: true,
        closeEstablished: false,
      },
      {
        name: "ssh",
        port: 2222,
        protocol: "tcp",
        accessKeysHttp: ["ssh-http-key-1"],
        accessKeysHttps: ["ssh-https-key-1"],
        destination: { kind: "local" },
        durationSeconds: 3600,
        step2HttpsDurationSeconds: 5,
        maxLeases: 100_000,
        interfaceExt: "eth0",
        interfaceInt: "eth0",
        masquerade: true,
        closeEstablished: false,
      },
    ]);
  });

  it("takes every optional global key", () => {
    const c = parse(
      withDoc((d) => {
        Object.assign(d.global, {
          step1_2_rate_limit_per_minute: 30,
          rate_limit_ipv6_prefix: 56,
          https_connection_limit_per_minute: 12,
          https_connection_limit_burst: 3,
          interface_int: "eth1",
          "2fa_config_folder": "/etc/knockport/2fa",
          "2fa_skew_periods": 0,
          healthcheck_app_name: "health",
          http_port: 80,
          https_port: 443,
        });
      }),
    );
    expect(c.httpPort).toBe(80);
    expect(c.httpsPort).toBe(443);
    expect(c.global.rateLimitPerMinute).toBe(30);
    expect(c.global.rateLimitIpv6Prefix).toBe(56);
    expect(c.global.httpsConnectionLimit).toEqual({ perMinute: 12, burst: 3 });
    expect(c.global.interfaceInt).toBe("eth1");
    expect(c.global.twoFactorFolder).toBe("/etc/knockport/2fa");
    expect(c.global.twoFactorSkewPeriods).toBe(0);
    expect(c.global.healthcheckAppName).toBe("health");
    expect(c.apps.every((a) => a.interfaceExt === "eth0" && a.interfaceInt === "eth1")).toBe(true);
  });

  it("per-app interfaces override the global ones", () => {
    const c = parse(
      withDoc((d) => {
        d.global.interface_int = "lan0";
        d.openvpn.interface_ext = "wan1";
        d.ssh.interface_int = "lan2";
      }),
    );
    expect(c.apps.map((a) => [a.name, a.interfaceExt, a.interfaceInt])).toEqual([
      ["openvpn", "wan1", "lan0"],
      ["ssh", "eth0", "lan2"],
    ]);
  });

  it("interface_int falls back to interface_ext", () => {
    const c = parse(withDoc((d) => (d.global.interface_ext = "ens3")));
    expect(c.global.interfaceInt).toBe("ens3");
    expect(c.apps[0]?.interfaceInt).toBe("ens3");
  });

  it("takes per-app step2_https_duration and protocol", () => {
    const c = parse(
      withDoc((d) => {
        d.ssh.step2_https_duration = 30;
        d.ssh.protocol = "tcp";
      }),
    );
    expect(c.apps[1]?.step2HttpsDurationSeconds).toBe(30);
    expect(c.apps[1]?.protocol).toBe("tcp");
  });

  it("takes per-app max_leases, 100,000 when absent", () => {
    const c = parse(withDoc((d) => (d.ssh.max_leases = 500)));
    expect(c.apps[0]?.maxLeases).toBe(100_000);
    expect(c.apps[1]?.maxLeases).toBe(500);
  });

  it("treats an empty (null) optional key as absent", () => {
    const c = parse(
      withDoc((d) => {
        Object.assign(d.global, {
          step1_2_rate_limit_per_minute: null,
          rate_limit_ipv6_prefix: null,
          https_connection_limit_per_minute: null,
          https_connection_limit_burst: null,
          interface_int: null,
          "2fa_config_folder": null,
          healthcheck_app_name: null,
          http_port: null,
          https_port: null,
        });
        Object.assign(d.ssh, { protocol: null, destination: null, step2_https_duration: null, interface_ext: null });
      }),
    );
    expect(c.httpPort).toBe(8080);
    expect(c.global.healthcheckAppName).toBeUndefined();
    expect(c.global.rateLimitPerMinute).toBe(5);
    expect(c.global.rateLimitIpv6Prefix).toBe(64);
    expect(c.global.httpsConnectionLimit).toEqual({ perMinute: 60, burst: 20 });
    expect(c.apps[1]).toMatchObject({ protocol: "tcp", destination: { kind: "local" }, step2HttpsDurationSeconds: 5 });
  });

  it("turns the HTTPS connection limit off with https_connection_limit_per_minute: 0 (the burst is then unused)", () => {
    const c = parse(withDoc((d) => Object.assign(d.global, { https_connection_limit_per_minute: 0, https_connection_limit_burst: 5 })));
    expect(c.global.httpsConnectionLimit).toBeUndefined();
  });

  it("resolves a relative 2fa folder from the config file's folder", () => {
    const c = parseConfig(withDoc((d) => (d.global["2fa_config_folder"] = "../secrets/2fa")), "/etc/knockport/config.yaml");
    expect(c.global.twoFactorFolder).toBe("/etc/secrets/2fa");
  });

  it("allows one port for tcp and udp in two apps", () => {
    const c = parse(
      withDoc((d) => {
        d.ssh.port = 1194;
      }),
    );
    expect(c.apps.map((a) => `${a.protocol}/${a.port}`)).toEqual(["udp/1194", "tcp/1194"]);
  });

  it("accepts the limits: 64-character step-1 path, 200-character step-2 path, 128-character key", () => {
    const path64 = `/${"a".repeat(63)}`;
    const path200 = `/${"b/".repeat(99)}c`;
    expect(path64).toHaveLength(HTTP_POST_PATH_MAX_LENGTH);
    expect(path200).toHaveLength(200);
    const c = parse(
      withDoc((d) => {
        d.global.http_post_path = path64;
        d.global.https_post_path = path200;
        d.ssh.access_key_http = ["k".repeat(128)];
      }),
    );
    expect(c.global.httpPostPath).toBe(path64);
    expect(c.global.httpsPostPath).toBe(path200);
  });
});

describe("parseConfig: error messages", () => {
  it("a string port: exactly the documented message", () => {
    expect(problems(withDoc((d) => (d.openvpn.port = "11940")))).toEqual([
      'config/config.yaml: openvpn.port: must be an integer 1-65535 (got "11940")',
    ]);
  });

  it.each([
    [0, "0"],
    [65536, "65536"],
    [-1, "-1"],
    [22.5, "22.5"],
    [null, "null"],
    [true, "true"],
    [[22], "[22]"],
  ])("port %j: must be an integer 1-65535", (value, shown) => {
    expect(bare(withDoc((d) => (d.ssh.port = value)))).toEqual([`ssh.port: must be an integer 1-65535 (got ${shown})`]);
  });

  it("missing global section", () => {
    expect(bare(withDoc((d) => delete d.global))).toEqual([
      "global: required section is missing; add it (see config/config.example.yaml)",
    ]);
  });

  it.each([
    [null, "null"],
    ["x", '"x"'],
    [[1], "[1]"],
  ])("global that is not a mapping (%j)", (value, shown) => {
    expect(bare(withDoc((d) => (d.global = value)))).toEqual([
      `global: must be a mapping with http_post_path, https_post_path and interface_ext (got ${shown})`,
    ]);
  });

  it("no apps", () => {
    expect(bare({ global: baseDoc().global })).toEqual([`no apps configured; add at least one app key next to "global"`]);
  });

  it("unknown global key, with the known keys listed", () => {
    const out = bare(withDoc((d) => (d.global.http_path = "/x")));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^global\.http_path: unknown key; remove it or check its spelling \(known keys: http_post_path, https_post_path, /);
    expect(out[0]).toContain("healthcheck_app_name");
  });

  it("unknown app key, with the known keys listed", () => {
    const out = bare(withDoc((d) => (d.ssh.durration = 5)));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^ssh\.durration: unknown key; remove it or check its spelling \(known keys: port, access_key_http, /);
  });

  it("missing required global keys, each with what to add", () => {
    const out = bare(withDoc((d) => (d.global = {})));
    expect(out).toEqual([
      expect.stringMatching(/^global\.http_post_path: required key is missing; add a path such as \/k-7Hq2x/),
      expect.stringMatching(/^global\.https_post_path: required key is missing; add a path starting with "\/"/),
      expect.stringMatching(/^global\.interface_ext: required key is missing; add a network interface name/),
    ]);
  });

  it("missing required app keys", () => {
    expect(bare(withDoc((d) => (d.ssh = { protocol: "tcp" })))).toEqual([
      "ssh.port: required key is missing; add an integer 1-65535",
      expect.stringMatching(/^ssh\.access_key_http: required key is missing; add a list of keys, each 10-128 /),
      expect.stringMatching(/^ssh\.access_key_https: required key is missing; add a list of keys/),
      "ssh.duration: required key is missing; add an integer number of seconds 1-31622400",
    ]);
  });

  it.each([
    ["null", null, "null"],
    ["a list", [1], "[1]"],
    ["a string", "1194", '"1194"'],
  ])("an app that is %s", (_what, value, shown) => {
    expect(bare(withDoc((d) => (d.ssh = value)))).toEqual([
      `ssh: must be a mapping with port, access_key_http, access_key_https and duration (got ${shown})`,
    ]);
  });

  it.each([
    ["protocol", "sctp", 'ssh.protocol: must be either "tcp" or "udp" (got "sctp")'],
    ["protocol", "TCP", 'ssh.protocol: must be either "tcp" or "udp" (got "TCP")'],
    ["duration", "1h", 'ssh.duration: must be an integer number of seconds 1-31622400 (got "1h")'],
    ["duration", 0, "ssh.duration: must be an integer number of seconds 1-31622400 (got 0)"],
    ["duration", 31622401, "ssh.duration: must be an integer number of seconds 1-31622400 (got 31622401)"],
    ["step2_https_duration", 3601, "ssh.step2_https_duration: must be an integer number of seconds 1-3600 (got 3601)"],
    ["step2_https_duration", 1.5, "ssh.step2_https_duration: must be an integer number of seconds 1-3600 (got 1.5)"],
    ["max_leases", 0, "ssh.max_leases: must be an integer 1-1000000 (live leases per step and address family) (got 0)"],
    ["max_leases", 1000001, "ssh.max_leases: must be an integer 1-1000000 (live leases per step and address family) (got 1000001)"],
    ["max_leases", "many", 'ssh.max_leases: must be an integer 1-1000000 (live leases per step and address family) (got "many")'],
    ["interface_ext", "eth0:1", 'ssh.interface_ext: must be a network interface name such as eth0 (1-15 characters of A-Z a-z 0-9 _ . -) (got "eth0:1")'],
    ["interface_int", "eth+", 'ssh.interface_int: must be a network interface name such as eth1 (1-15 characters of A-Z a-z 0-9 _ . -) (got "eth+")'],
    ["interface_int", "..", 'ssh.interface_int: must be a network interface name such as eth1 (1-15 characters of A-Z a-z 0-9 _ . -) (got "..")'],
    ["interface_ext", "a-very-long-ifname", 'ssh.interface_ext: must be a network interface name such as eth0 (1-15 characters of A-Z a-z 0-9 _ . -) (got "a-very-long-ifname")'],
    ["destination", 5, `ssh.destination: must be either "local" or the LAN host as IPv4, IPv4:PORT, IPv6, [IPv6] or [IPv6]:PORT (a unicast address) (got 5)`],
  ])("app key %s = %j", (key, value, message) => {
    expect(bare(withDoc((d) => (d.ssh[key] = value)))).toEqual([message]);
  });

  it.each([
    ["step1_2_rate_limit_per_minute", 0, "must be an integer 1-100000 (requests per minute per client address and step) (got 0)"],
    ["step1_2_rate_limit_per_minute", "5", 'must be an integer 1-100000 (requests per minute per client address and step) (got "5")'],
    ["rate_limit_ipv6_prefix", 31, "must be an integer 32-128 (IPv6 clients share one rate limit per prefix of this length; 128: per address) (got 31)"],
    ["rate_limit_ipv6_prefix", 129, "must be an integer 32-128 (IPv6 clients share one rate limit per prefix of this length; 128: per address) (got 129)"],
    ["rate_limit_ipv6_prefix", 64.5, "must be an integer 32-128 (IPv6 clients share one rate limit per prefix of this length; 128: per address) (got 64.5)"],
    [
      "https_connection_limit_per_minute",
      -1,
      "must be an integer 0-10000 (new connections per minute per client address to the HTTPS knock port; 0 turns the limit off) (got -1)",
    ],
    [
      "https_connection_limit_per_minute",
      10001,
      "must be an integer 0-10000 (new connections per minute per client address to the HTTPS knock port; 0 turns the limit off) (got 10001)",
    ],
    [
      "https_connection_limit_burst",
      0,
      "must be an integer 1-10000 (new connections one address may open at once before https_connection_limit_per_minute applies) (got 0)",
    ],
    [
      "https_connection_limit_burst",
      2.5,
      "must be an integer 1-10000 (new connections one address may open at once before https_connection_limit_per_minute applies) (got 2.5)",
    ],
    ["interface_ext", "eth 0", 'must be a network interface name such as eth0 (1-15 characters of A-Z a-z 0-9 _ . -) (got "eth 0")'],
    ["interface_ext", "", 'must be a network interface name such as eth0 (1-15 characters of A-Z a-z 0-9 _ . -) (got "")'],
    ["2fa_config_folder", "", `must be a folder path (relative paths are taken from the config file's folder) (got "")`],
    ["2fa_skew_periods", 3, "must be 0, 1 or 2 (TOTP periods before and after now whose token is still accepted) (got 3)"],
    ["2fa_skew_periods", 0.5, "must be 0, 1 or 2 (TOTP periods before and after now whose token is still accepted) (got 0.5)"],
    ["healthcheck_app_name", "bad name", 'must be a name of 1-32 characters A-Z a-z 0-9 _ - that is not an app (got "bad name")'],
    ["http_port", 0, "must be an integer 1-65535 (got 0)"],
    ["https_port", "443", 'must be an integer 1-65535 (got "443")'],
  ])("global key %s = %j", (key, value, message) => {
    expect(bare(withDoc((d) => (d.global[key] = value)))).toEqual([`global.${key}: ${message}`]);
  });

  it("one message per key even when it breaks several rules", () => {
    const out = bare(withDoc((d) => (d.global.http_post_path = `no slash and ${"x".repeat(80)}`)));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^global\.http_post_path: must be a path such as \/k-7Hq2x starting with "\/", 2-64 characters .* \(got "no slash and x+"\.\.\. \(93 characters\)\)$/);
  });
});

describe("parseConfig: knock ports", () => {
  it("a service on the default HTTP knock port", () => {
    expect(bare(withDoc((d) => (d.ssh.port = 8080)))).toEqual([
      "ssh.port: 8080 is also the HTTP knock port (the default; global.http_port or --http-port moves it); use another port for the service or move the knock",
    ]);
  });

  it("a service on the HTTPS knock port set in global", () => {
    expect(
      bare(
        withDoc((d) => {
          d.global.https_port = 443;
          d.ssh.port = 443;
        }),
      ),
    ).toEqual(["ssh.port: 443 is also the HTTPS knock port (global.https_port); use another port for the service or move the knock"]);
  });

  it("a udp service on a knock port is refused too", () => {
    expect(bare(withDoc((d) => (d.openvpn.port = 8443)))).toEqual([
      expect.stringMatching(/^openvpn\.port: 8443 is also the HTTPS knock port /),
    ]);
  });

  it("the flag wins over global.http_port, and the message names --http-port", () => {
    const doc = withDoc((d) => {
      d.global.http_port = 2222; // would clash with ssh, but the flag moves the knock elsewhere
    });
    expect(parse(doc, { httpPort: 80 }).httpPort).toBe(80);
    expect(bare(doc)).toEqual([
      "ssh.port: 2222 is also the HTTP knock port (global.http_port); use another port for the service or move the knock",
    ]);
    expect(bare(baseDoc(), { httpPort: 1194 })).toEqual([
      "openvpn.port: 1194 is also the HTTP knock port (--http-port); use another port for the service or move the knock",
    ]);
  });

  it("the flag wins over global.https_port, and the message names --https-port", () => {
    const doc = withDoc((d) => (d.global.https_port = 9443));
    expect(parse(doc, { httpsPort: 443 }).httpsPort).toBe(443);
    expect(bare(baseDoc(), { httpsPort: 2222 })).toEqual([
      "ssh.port: 2222 is also the HTTPS knock port (--https-port); use another port for the service or move the knock",
    ]);
  });

  it("http_port equal to https_port", () => {
    expect(
      bare(
        withDoc((d) => {
          d.global.http_port = 9000;
          d.global.https_port = 9000;
        }),
      ),
    ).toEqual([
      "global.https_port: the HTTPS knock port (global.https_port) must differ from the HTTP knock port (global.http_port); both are 9000",
    ]);
  });

  it("a flag that makes the knock ports equal names the flag", () => {
    expect(bare(baseDoc(), { httpPort: 8443 })).toEqual([
      "global.https_port: the HTTPS knock port (the default; global.https_port or --https-port moves it) must differ from the HTTP knock port (--http-port); both are 8443",
    ]);
    expect(bare(baseDoc(), { httpPort: 443, httpsPort: 443 })).toEqual([
      "--https-port: the HTTPS knock port (--https-port) must differ from the HTTP knock port (--http-port); both are 443",
    ]);
  });

  it.each([0, 65536, Number.NaN, 80.5])("an invalid flag value %s", (value) => {
    expect(bare(baseDoc(), { httpPort: value })).toEqual([`--http-port: must be an integer 1-65535 (got ${String(value)})`]);
    expect(bare(baseDoc(), { httpsPort: value })).toEqual([`--https-port: must be an integer 1-65535 (got ${String(value)})`]);
  });
});

describe("parseConfig: knock paths", () => {
  it("http_post_path equal to https_post_path", () => {
    expect(bare(withDoc((d) => (d.global.https_post_path = "/k-step-one")))).toEqual([
      "global.https_post_path: must differ from global.http_post_path, or step 2 would be reachable with step 1's path",
    ]);
  });

  it("refuses the original's published sample paths", () => {
    expect(
      bare(
        withDoc((d) => {
          d.global.http_post_path = "/1-SECRET";
          d.global.https_post_path = "/2-SECRET";
        }),
      ),
    ).toEqual([
      'global.http_post_path: "/1-SECRET" is a published sample path; choose your own secret path',
      'global.https_post_path: "/2-SECRET" is a published sample path; choose your own secret path',
    ]);
  });

  it("refuses a 65-character step-1 path but takes 64", () => {
    expect(bare(withDoc((d) => (d.global.http_post_path = `/${"a".repeat(64)}`)))).toEqual([
      expect.stringMatching(/^global\.http_post_path: must be a path such as \/k-7Hq2x starting with "\/", 2-64 characters/),
    ]);
    expect(parse(withDoc((d) => (d.global.http_post_path = `/${"a".repeat(63)}`))).global.httpPostPath).toHaveLength(64);
  });

  it("refuses a 1025-character step-2 path", () => {
    expect(bare(withDoc((d) => (d.global.https_post_path = `/${"a".repeat(1024)}`)))).toEqual([
      expect.stringMatching(/^global\.https_post_path: must be a path starting with "\/", up to 1024 characters/),
    ]);
  });

  it.each(["/", "x/abc", "/a b", "/a?b=1", "/a%20b", "/é", "/a#b", "/a\nb"])("refuses the path %j", (path) => {
    expect(bare(withDoc((d) => (d.global.http_post_path = path)))).toEqual([
      expect.stringMatching(/^global\.http_post_path: must be a path such as/),
    ]);
  });

  it.each(["/a/../b", "/a/./b", "/..", "/knock/."])("refuses the dot-segment path %j (clients rewrite it)", (path) => {
    expect(bare(withDoc((d) => (d.global.https_post_path = path)))).toEqual([
      `global.https_post_path: must not contain "." or ".." segments, which clients rewrite before sending (got ${JSON.stringify(path)})`,
    ]);
  });

  it("dots inside a segment are fine", () => {
    expect(parse(withDoc((d) => (d.global.https_post_path = "/.well-known/k..2"))).global.httpsPostPath).toBe("/.well-known/k..2");
  });
});

describe("parseConfig: access keys", () => {
  it("a key shorter than 10 characters is refused without showing it", () => {
    const doc = withDoc((d) => (d.ssh.access_key_http = ["short-key"]));
    const out = bare(doc);
    expect(out).toEqual([
      "ssh.access_key_http.0: must be a key of 10-128 characters of A-Z a-z 0-9 . _ ~ - (got a string; the value is not shown)",
    ]);
    expect(problems(doc).join("\n")).not.toContain("short-key");
  });

  it.each([
    ["too long", "k".repeat(129)],
    ["with a space", "has a space in it"],
    ["with a tab", "has\ta-tab-in-it"],
    ["non-ASCII", "clé-secrète-1234"],
    ["with base64 symbols that need URL-encoding", "abc+def/ghi=="],
  ])("a key %s is refused without showing it", (_what, key) => {
    const doc = withDoc((d) => (d.ssh.access_key_https = [key]));
    const out = problems(doc);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/ssh\.access_key_https\.0: must be a key of 10-128 characters of A-Z a-z 0-9 . _ ~ -/);
    expect(out[0]).not.toContain(key);
  });

  it("a key YAML read as a number gets a hint to quote it", () => {
    expect(bare(withDoc((d) => (d.ssh.access_key_http = [12345678901])))).toEqual([
      "ssh.access_key_http.0: must be a key of 10-128 characters of A-Z a-z 0-9 . _ ~ - (got a YAML number; quote the key)",
    ]);
  });

  it.each([
    ["a string", "ssh-http-key-1", "a string; the value is not shown"],
    ["an empty list", [], "an empty list"],
    ["null", null, "an empty value"],
    ["a mapping", { a: "ssh-http-key-1" }, "a mapping"],
  ])("a key list that is %s", (_what, value, got) => {
    const out = bare(withDoc((d) => (d.ssh.access_key_http = value)));
    expect(out).toEqual([
      `ssh.access_key_http: must be a list of keys, each 10-128 characters of A-Z a-z 0-9 . _ ~ - (got ${got})`,
    ]);
  });

  it("lists of different lengths", () => {
    expect(bare(withDoc((d) => d.openvpn.access_key_https.pop()))).toEqual([
      "openvpn.access_key_https: must have as many keys as access_key_http (2 vs 1); key i of one list pairs with key i of the other",
    ]);
  });

  it("a key used in both lists of one app", () => {
    expect(bare(withDoc((d) => (d.openvpn.access_key_https[1] = "openvpn-http-1")))).toEqual([
      "openvpn.access_key_https.1: same key as access_key_http.0; step-1 keys travel in clear text, so step-2 keys must differ",
    ]);
  });

  it("a step-2 key that is another app's step-1 key", () => {
    expect(bare(withDoc((d) => (d.ssh.access_key_https = ["openvpn-http-2"])))).toEqual([
      'ssh.access_key_https.0: same key as a step-1 key of app "openvpn"; step-1 keys travel in clear text, so step-2 keys must differ from every step-1 key',
    ]);
    expect(bare(withDoc((d) => (d.openvpn.access_key_https[0] = "ssh-http-key-1")))).toEqual([
      'openvpn.access_key_https.0: same key as a step-1 key of app "ssh"; step-1 keys travel in clear text, so step-2 keys must differ from every step-1 key',
    ]);
  });

  it("a step-2 key equal to a step-1 key of its own app and of another app is reported once", () => {
    expect(
      bare(
        withDoc((d) => {
          d.ssh.access_key_http = ["openvpn-http-1"];
          d.ssh.access_key_https = ["openvpn-http-1"];
        }),
      ),
    ).toEqual([
      "ssh.access_key_https.0: same key as access_key_http.0; step-1 keys travel in clear text, so step-2 keys must differ",
    ]);
  });

  it("the same step-1 key in two apps is allowed (the app field tells them apart)", () => {
    expect(parse(withDoc((d) => (d.ssh.access_key_http = ["openvpn-http-1"]))).apps).toHaveLength(2);
  });

  it("a key twice in one list", () => {
    expect(
      bare(
        withDoc((d) => {
          d.openvpn.access_key_http = ["openvpn-http-1", "openvpn-http-1"];
          d.openvpn.access_key_https = ["openvpn-https-1", "openvpn-https-2", "openvpn-https-1"];
          d.openvpn.access_key_http.push("openvpn-http-3");
        }),
      ),
    ).toEqual([
      "openvpn.access_key_http.1: same key as access_key_http.0; make each key unique",
      "openvpn.access_key_https.2: same key as access_key_https.0; make each key unique",
    ]);
  });

  it("no message ever contains a key, however broken the config", () => {
    const doc = withDoc((d) => {
      d.global.bogus = "openvpn-http-1";
      d.openvpn.access_key_https = ["openvpn-http-1", "openvpn-http-2", "openvpn-https-1", "openvpn-https-1"];
      d.openvpn.access_key_http.push("ssh-https-key-1 with space");
      d.ssh.access_key_http = "ssh-http-key-1";
      d.ssh.access_key_https = [{ key: "ssh-https-key-1" }, "ssh-https-key-1"];
      d.ssh.port = "not a port";
    });
    const text = problems(doc).join("\n");
    expect(text.split("\n").length).toBeGreaterThan(5);
    for (const secret of SECRETS) expect(text).not.toContain(secret);
  });
});

describe("parseConfig: app names", () => {
  it.each(["bad name", "-ssh", "_ssh", "ssh.old", "a".repeat(33), "ssh/1", "", "é"])("refuses the app name %j", (name) => {
    const d = baseDoc();
    d[name] = d.ssh;
    delete d.ssh;
    expect(bare(d)).toEqual([
      `${JSON.stringify(name)}: app names must be 1-32 characters A-Z a-z 0-9 _ - starting with a letter or digit; rename the key`,
    ]);
  });

  it.each(["a", "A".repeat(32), "0app", "my_app-2"])("takes the app name %j", (name) => {
    const d = baseDoc();
    d[name] = d.ssh;
    delete d.ssh;
    expect(parse(d).apps.map((a) => a.name)).toContain(name);
  });

  it("healthcheck_app_name equal to an app", () => {
    expect(bare(withDoc((d) => (d.global.healthcheck_app_name = "ssh")))).toEqual([
      'global.healthcheck_app_name: "ssh" is also an app; pick a name no app uses',
    ]);
  });

  it("duplicate (port, protocol) across apps", () => {
    expect(
      bare(
        withDoc((d) => {
          d.ssh.port = 1194;
          d.ssh.protocol = "udp";
        }),
      ),
    ).toEqual(['ssh.port: udp/1194 is already used by app "openvpn"; each app needs its own port']);
  });

  it("a third app on a taken port names the first owner", () => {
    const d = baseDoc();
    d.web = { ...d.ssh, access_key_http: ["web-http-key-1"], access_key_https: ["web-https-key-1"] };
    d.web2 = { ...d.ssh, access_key_http: ["web2-http-key-1"], access_key_https: ["web2-https-key1"] };
    expect(bare(d)).toEqual([
      'web.port: tcp/2222 is already used by app "ssh"; each app needs its own port',
      'web2.port: tcp/2222 is already used by app "ssh"; each app needs its own port',
    ]);
  });
});

describe("parseConfig: masquerade", () => {
  it("defaults to true and takes false per app", () => {
    const c = parse(withDoc((d) => Object.assign(d.ssh, { destination: "192.0.2.10:22", masquerade: false })));
    expect(c.apps.map((a) => [a.name, a.masquerade])).toEqual([["openvpn", true], ["ssh", false]]);
  });
  it("names the key and the fix for a non-boolean", () => {
    expect(bare(withDoc((d) => Object.assign(d.ssh, { masquerade: "yes" })))).toEqual([
      'ssh.masquerade: must be true or false (only used with destination: IP[:PORT]) (got "yes")',
    ]);
  });
});

describe("parseConfig: close_established", () => {
  it("defaults to false and takes true per app", () => {
    const c = parse(withDoc((d) => Object.assign(d.openvpn, { close_established: true })));
    expect(c.apps.map((a) => [a.name, a.closeEstablished])).toEqual([["openvpn", true], ["ssh", false]]);
  });
  it("names the key and the fix for a non-boolean", () => {
    expect(bare(withDoc((d) => Object.assign(d.ssh, { close_established: "yes" })))).toEqual([
      'ssh.close_established: must be true or false (delete the client\'s conntrack entries for this app when its lease ends) (got "yes")',
    ]);
  });
});

describe("parseConfig: destination", () => {
  const port = 2222 as Port;
  it.each([
    ["local", { kind: "local" }],
    ["192.0.2.10", { kind: "forward", ip: "192.0.2.10", port: 2222 }],
    ["192.0.2.10:22", { kind: "forward", ip: "192.0.2.10", port: 22 }],
    ["192.0.2.10:65535", { kind: "forward", ip: "192.0.2.10", port: 65535 }],
    ["[2001:db8::5]:2200", { kind: "forward", ip: "2001:db8::5", port: 2200 }],
    ["[2001:DB8:0:0::5]", { kind: "forward", ip: "2001:db8::5", port: 2222 }],
    ["2001:db8::5", { kind: "forward", ip: "2001:db8::5", port: 2222 }],
    ["2001:0DB8::0005", { kind: "forward", ip: "2001:db8::5", port: 2222 }],
    ["2001:db8::5:2222", { kind: "forward", ip: "2001:db8::5:2222", port: 2222 }], // bare IPv6 never has a port
    ["[::ffff:192.0.2.10]:22", { kind: "forward", ip: "192.0.2.10", port: 22 }],
  ])("parses %j", (text, expected) => {
    expect(parseDestination(text, port)).toEqual(expected);
    expect(parse(withDoc((d) => (d.ssh.destination = text))).apps[1]?.destination).toEqual(expected);
  });

  it.each([
    "garbage",
    "Local",
    "",
    "192.0.2.10:",
    "192.0.2.10:0",
    "192.0.2.10:65536",
    "192.0.2.10:99999",
    "192.0.2.10:22:33",
    "192.0.2.256",
    "192.0.2",
    "0.0.0.0",
    "224.0.0.1:22",
    "255.255.255.255",
    "[192.0.2.10]",
    "[192.0.2.10]:22",
    "[2001:db8::5]:",
    "[2001:db8::5]:0",
    "[2001:db8::5",
    "2001:db8::5]:22",
    "[::]:22",
    "::",
    "ff02::1",
    "[ff02::1]:22",
    "fe80::1%eth0",
    "[fe80::1%eth0]:22",
    "2001:db8::/64",
    "host.example:22",
    " 192.0.2.10",
    "192.0.2.10 ",
    "http://192.0.2.10",
  ])("refuses %j", (text) => {
    expect(parseDestination(text, port)).toBeUndefined();
    expect(bare(withDoc((d) => (d.ssh.destination = text)))).toEqual([
      text === ""
        ? expect.stringMatching(/^ssh\.destination: must be either "local" or the LAN host/)
        : `ssh.destination: must be either "local" or the LAN host as IPv4, IPv4:PORT, IPv6, [IPv6] or [IPv6]:PORT (a unicast address) (got ${JSON.stringify(text)})`,
    ]);
  });
});

describe("parseConfig: many problems at once", () => {
  it("reports every problem of the file in one run", () => {
    const doc = withDoc((d) => {
      d.global.http_post_path = "/1-SECRET";
      d.global.https_post_path = "/1-SECRET";
      d.global.interface_ext = "bad if";
      d.global.http_port = 2222;
      d.global.colour = "blue";
      d.openvpn.port = "11940";
      d.openvpn.destination = "nowhere";
      d.openvpn.access_key_https.pop();
      d.ssh.duration = 0;
      d.ssh.access_key_http = ["short"];
      d["bad app"] = {};
    });
    const out = bare(doc);
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^global\.colour: unknown key/),
        expect.stringMatching(/^global\.interface_ext: must be a network interface name/),
        "global.https_post_path: must differ from global.http_post_path, or step 2 would be reachable with step 1's path",
        'global.http_post_path: "/1-SECRET" is a published sample path; choose your own secret path',
        'global.https_post_path: "/1-SECRET" is a published sample path; choose your own secret path',
        'openvpn.port: must be an integer 1-65535 (got "11940")',
        expect.stringMatching(/^openvpn\.destination: must be either "local"/),
        expect.stringMatching(/^openvpn\.access_key_https: must have as many keys as access_key_http \(2 vs 1\)/),
        expect.stringMatching(/^ssh\.duration: must be an integer number of seconds/),
        expect.stringMatching(/^ssh\.access_key_http\.0: must be a key of 10-128/),
        // global is invalid as a whole, yet its valid http_port still takes part in the cross-checks
        "ssh.port: 2222 is also the HTTP knock port (global.http_port); use another port for the service or move the knock",
        expect.stringMatching(/^"bad app": app names must be/),
      ]),
    );
    expect(out).toHaveLength(12);
    expect(new Set(out).size).toBe(out.length);
  });

  it("an error carries the code and the file", () => {
    const err = configError(() => parse(withDoc((d) => (d.ssh.port = 0))));
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.file).toBe(FILE);
    expect(exitStatusOf(err, ROOT_ERRORS)).toBe(2);
  });
});
