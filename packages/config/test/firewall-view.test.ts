import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig, type KnockportConfig, type PortOverrides } from "../src/index.js";
import {
  FIREWALL_APP_PROPERTIES,
  FIREWALL_GLOBAL_PROPERTIES,
  SERVER_APP_KEYS,
  SERVER_GLOBAL_KEYS,
  loadFirewallConfig,
  parseFirewallConfig,
  type FirewallConfig,
} from "../src/firewall.js";
import { appSchema, globalSchema } from "../src/schema.js";
import { BASE_YAML, FILE, SECRETS, baseDoc, withDoc, withoutFile, writeConfig, type Doc } from "./helpers.js";

/** The root helper's view's problems, without the file prefix every line carries. */
async function refused(doc: unknown, overrides: PortOverrides = {}): Promise<string[]> {
  const err = await parseFirewallConfig(doc, FILE, overrides).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(err)}`);
  expect(err.code).toBe("CONFIG_INVALID");
  return withoutFile(err.problems);
}

/** The firewall's part of the server's reading: what the helper's view must equal. */
function firewallPart(c: KnockportConfig): FirewallConfig {
  const { httpsPostPath, rateLimitPerMinute, rateLimitIpv6Prefix, twoFactorFolder, twoFactorSkewPeriods, healthcheckAppName, cluster, authCheckListen, ...global } = c.global;
  void [httpsPostPath, rateLimitPerMinute, rateLimitIpv6Prefix, twoFactorFolder, twoFactorSkewPeriods, healthcheckAppName, cluster, authCheckListen];
  const apps = c.apps.map(({ accessKeysHttp, accessKeysHttps, ...app }) => (void [accessKeysHttp, accessKeysHttps], app));
  const waf = c.waf ? { waf: { httpPort: c.waf.httpPort, httpsPort: c.waf.httpsPort } } : {};
  return { file: c.file, httpPort: c.httpPort, httpsPort: c.httpsPort, ...waf, global, apps };
}

describe("the root helper's view (loadFirewallConfig)", () => {
  it("reads a file as the server reads its firewall keys", async () => {
    const file = writeConfig(BASE_YAML);
    expect(await loadFirewallConfig(file)).toEqual(firewallPart(loadConfig(file)));
  });

  it("names the file for a missing file and a YAML error", async () => {
    await expect(loadFirewallConfig("/nonexistent/kp.yaml")).rejects.toThrow("/nonexistent/kp.yaml: no such file; pass the config with -c/--config");
    const bad = writeConfig("global:\n  http_post_path: /a\n    bad: indent\n");
    await expect(loadFirewallConfig(bad)).rejects.toMatchObject({ code: "CONFIG_YAML" });
  });

  it.each([
    ["a misspelt key (the server would refuse it too)", (d: Doc) => (d.ssh.durration = 5), /^ssh\.durration: unknown key; remove it or check its spelling \(known keys: port, access_key_http, /],
    ["a port out of range", (d: Doc) => (d.ssh.port = 70000), /^ssh\.port: must be an integer 1-65535 \(got 70000\)$/],
    ["a destination that is no address", (d: Doc) => (d.ssh.destination = "lan-host"), /^ssh\.destination: must be either "local" or the LAN host/],
    ["a hook with a relative program", (d: Doc) => (d.ssh.on_open = ["sg-open", "{ip}"]), /^ssh\.on_open: the program must be an absolute path/],
    ["a hook with an unknown placeholder", (d: Doc) => (d.ssh.on_close = ["/bin/x", "{addr}"]), /^ssh\.on_close: item 1: unknown placeholder "\{addr\}"/],
    ["an app name nft cannot carry", (d: Doc) => (d["bad app"] = d.ssh), /^"bad app": app names must be/],
    ["one WAF port without the other", (d: Doc) => (d.global.waf_http_port = 80), /^global\.waf_http_port: WAF mode needs both public ports/],
    ["no interface_ext", (d: Doc) => delete d.global.interface_ext, /^global\.interface_ext: required key is missing; add a network interface name/],
    ["an interface name with a wildcard", (d: Doc) => (d.global.interface_int = "eth+"), /^global\.interface_int: must be a network interface name/],
    ["a duration beyond a year", (d: Doc) => (d.ssh.duration = 366 * 24 * 3600 + 1), /^ssh\.duration: must be an integer number of seconds/],
  ])("refuses %s, naming the key", async (_what, edit, message) => {
    const out = await refused(withDoc(edit));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(message);
  });

  it("refuses a bad --waf-https-port flag as the server does", async () => {
    expect(await refused(baseDoc(), { wafHttpPort: 80, wafHttpsPort: 0 })).toEqual(["--waf-https-port: must be an integer 1-65535 (got 0)"]);
  });

  it("runs with a file whose server-only keys are broken: their values are the server's, which refuses to start", async () => {
    const doc = withDoc((d) => {
      d.openvpn.access_key_http = ["short"];
      delete d.ssh.access_key_https;
      d.global.https_post_path = d.global.http_post_path;
      d.global.healthcheck_app_name = "ssh";
      d.global["2fa_skew_periods"] = 7;
      d.global.waf_trusted_ips = ["0.0.0.0/0"];
    });
    const server = (() => {
      try {
        return parseConfig(doc, FILE);
      } catch (err) {
        return err as ConfigError;
      }
    })();
    expect(server).toBeInstanceOf(ConfigError);
    expect((server as ConfigError).problems.length).toBeGreaterThanOrEqual(6);
    const helper = await parseFirewallConfig(doc, FILE);
    const fixed = withDoc(() => undefined);
    expect(helper).toEqual(firewallPart(parseConfig(fixed, FILE)));
    // the helper never reads an access key, so none can reach its messages either
    const message = (await refused({ ...doc, ssh: { ...doc.ssh, port: 0 } })).join("\n");
    for (const secret of SECRETS) expect(message).not.toContain(secret);
  });

  it("leaves consistency across keys to the server (which refuses to start without it)", async () => {
    const doc = withDoc((d) => {
      d.ssh.port = 8443; // the HTTPS knock port
    });
    expect(() => parseConfig(doc, FILE)).toThrow(ConfigError);
    expect((await parseFirewallConfig(doc, FILE)).apps.map((a) => a.port)).toEqual([1194, 8443]);
  });
});

describe("one declaration for both readings", () => {
  it("the full schema composes the firewall's key schemas (the same objects) with the server's keys", () => {
    for (const [full, firewall, server] of [
      [globalSchema.properties, FIREWALL_GLOBAL_PROPERTIES, SERVER_GLOBAL_KEYS],
      [appSchema.properties, FIREWALL_APP_PROPERTIES, SERVER_APP_KEYS],
    ] as const) {
      const fullKeys = Object.keys(full) as (keyof typeof full)[];
      expect(new Set(fullKeys)).toEqual(new Set([...Object.keys(firewall), ...server]));
      for (const [key, schema] of Object.entries(firewall)) expect(full[key as keyof typeof full], key).toBe(schema);
    }
  });

  /**
   * Random edits of the sample config (a fixed seed, so a failure reproduces): whatever the server
   * accepts, the helper accepts and reads alike; the helper never refuses a file the server accepts.
   */
  it("a file the server accepts, the helper reads alike; a file the helper refuses, the server refuses", async () => {
    const globalValues: Record<string, unknown[]> = {
      http_port: [2222, 8443, 80, "x"], https_port: [8080, 443], waf_http_port: [80, 8080, 0], waf_https_port: [443, 1194],
      interface_int: ["eth1", "bad if"], allow_missing_interfaces: [["eth1"], ["nope"]], https_connection_limit_per_minute: [0, 5, -1],
      https_connection_limit_burst: [1, 0], waf_trusted_ips: [["10.0.0.0/8"], ["bad"]], http_post_path: ["/ok-path", "x", "/a/../b"],
      cluster: [{ url: "redis://127.0.0.1:6379", key_prefix: "kp" }, { url: "x" }], auth_check_listen: ["127.0.0.1:9180", "10.0.0.1:80"],
    };
    const appValues: Record<string, unknown[]> = {
      port: [2222, 1194, 8080, 443, "22"], protocol: ["tcp", "udp", "sctp", null], destination: ["10.0.0.5:22", "[2001:db8::5]", "nowhere", null],
      duration: [10, 0], step2_https_duration: [30, 3601], max_leases: [10, 0], interface_ext: ["eth2", "eth+"], masquerade: [false, "no"],
      close_established: [true], on_open: [["/bin/x", "{ip}"], ["rel"]], on_close: [["/bin/y", "{port}", "{app}"]], access_key_http: [["short"]],
    };
    let seed = 7;
    const next = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const any = <T>(list: readonly T[]): T => list[next(list.length)] as T;
    let accepted = 0;
    for (let i = 0; i < 1500; i++) {
      const doc = baseDoc();
      for (let k = 1 + next(3); k > 0; k--) {
        if (next(3) === 0) {
          const key = any(Object.keys(globalValues));
          doc.global[key] = any(globalValues[key] ?? []);
        } else {
          const key = any(Object.keys(appValues));
          doc[any(["ssh", "openvpn"])][key] = any(appValues[key] ?? []);
        }
      }
      const overrides = any<PortOverrides>([{}, { httpPort: 2222 }, { wafHttpPort: 80, wafHttpsPort: 443 }]);
      let server: KnockportConfig | undefined;
      try {
        server = parseConfig(structuredClone(doc), FILE, overrides);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
      const helper = await parseFirewallConfig(structuredClone(doc), FILE, overrides).catch((err: unknown) => {
        if (!(err instanceof ConfigError)) throw err;
        return undefined;
      });
      if (server) {
        accepted++;
        expect(helper, JSON.stringify(doc)).toEqual(firewallPart(server));
      }
    }
    // the edits must reach both outcomes, or the test proves nothing
    expect(accepted).toBeGreaterThan(100);
    expect(accepted).toBeLessThan(1400);
  });
});

describe("the helper's view and the shipped example config", () => {
  it("refuses the published sample knock paths, as the full loader does (an unedited conffile must not start the helper)", async () => {
    for (const [key, path] of [["http_post_path", "/1-SECRET"], ["https_post_path", "/CHANGE-ME-2"]] as const) {
      const doc = withDoc((d) => void ((d.global as Record<string, unknown>)[key] = path));
      expect(await refused(doc)).toContain(`global.${key}: "${path}" is a published sample path; choose your own secret path`);
    }
  });
});
