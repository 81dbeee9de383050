import { describe, expect, it } from "vitest";
import type { KnockportConfig } from "@knockport/config";
import type { IpAddress } from "@knockport/protocol";
import {
  FirewallError,
  InvalidValueError,
  NFT_TABLE_FAMILY,
  NFT_TABLE_NAME,
  renderNftRemoveTable,
  renderNftRuleset,
  rulesetSetNames,
  step2Target,
  UnsupportedConfigError,
} from "../src/index.js";
import { expectGolden } from "./golden.js";
import { makeConfig, PATH_40 } from "./fixtures.js";

const app = (port: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  port,
  access_key_http: [`http-key-${port}-abcdef`],
  access_key_https: [`https-key-${port}-abcdef`],
  duration: 60,
  ...extra,
});

describe("renderNftRuleset", () => {
  it("matches the golden ruleset (tcp + udp app, 40-character path)", () => {
    const config = makeConfig();
    expect(config.global.httpPostPath).toBe(PATH_40);
    expect(PATH_40).toHaveLength(40);
    expectGolden("ruleset.nft", renderNftRuleset(config));
  });

  it("matches the golden ruleset with live leases re-added in the same file", () => {
    const config = makeConfig();
    const text = renderNftRuleset(config, {
      elements: [
        step2Target(config, "openvpn", "198.51.100.7" as IpAddress),
        { ...step2Target(config, "ssh-admin", "2001:db8:1::7" as IpAddress), timeoutSeconds: 1234 },
        { set: "https_v4", ip: "203.0.113.9" as IpAddress, timeoutSeconds: 3 },
      ],
    });
    expectGolden("ruleset-with-leases.nft", text);
  });

  it("is deterministic and starts with the atomic replace idiom", () => {
    const a = renderNftRuleset(makeConfig());
    expect(renderNftRuleset(makeConfig())).toBe(a);
    const commands = a.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(commands.slice(0, 3)).toEqual([
      `table ${NFT_TABLE_FAMILY} ${NFT_TABLE_NAME} {}`,
      "delete table inet knockport",
      "table inet knockport {",
    ]);
  });

  it("puts a comment on every rule and a counter on every accept/drop", () => {
    const text = renderNftRuleset(makeConfig());
    const rules = text.split("\n").filter((l) => /\b(accept|drop|notrack)\b/.test(l) && !l.includes("policy"));
    expect(rules.length).toBe(4 + 3 + 2 * 3 + 2 + 2);
    for (const r of rules) {
      expect(r).toMatch(/ comment "[^"]+"$/);
      if (!r.includes("notrack")) expect(r).toMatch(/ counter (accept|drop) comment /);
    }
  });

  it("guards the knock ports on every external interface and each service on its own", () => {
    const config = makeConfig({
      apps: { vpn: app(1194, { protocol: "udp", interface_ext: "wg-ext0" }), ssh: app(22) },
    });
    const text = renderNftRuleset(config);
    expect(text).toContain(`iifname { "eth0", "wg-ext0" } tcp dport 8080 notrack`);
    expect(text).toContain(`oifname { "eth0", "wg-ext0" } tcp sport 8080 notrack`);
    expect(text).toContain(`iifname "wg-ext0" udp dport 1194 ip saddr @svc_vpn_v4 counter accept`);
    expect(text).toContain(`iifname "eth0" tcp dport 22 counter drop`);
  });

  it("rejects forwarded apps with a typed error naming each of them", () => {
    const config = makeConfig({
      apps: { local1: app(22), fwd1: app(3389, { destination: "192.0.2.10:3389" }), fwd2: app(5900, { destination: "[2001:db8::5]" }) },
    });
    let caught: unknown;
    try {
      renderNftRuleset(config);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UnsupportedConfigError);
    expect(caught).toBeInstanceOf(FirewallError);
    const err = caught as UnsupportedConfigError;
    expect(err.code).toBe("FORWARDING_UNSUPPORTED");
    expect(err.apps).toEqual(["fwd1", "fwd2"]);
    expect(err.message).toContain("fwd1.destination: destination forwarding is not supported by this version yet; use destination: local");
    expect(err.message).toContain("fwd2");
    expect(() => rulesetSetNames(config)).toThrow(UnsupportedConfigError);
    expect(() => step2Target(config, "fwd1", "198.51.100.7" as IpAddress)).toThrow(UnsupportedConfigError);
  });

  it("re-validates everything it interpolates (defence in depth)", () => {
    const good = makeConfig();
    const tamper = (patch: (c: { -readonly [K in keyof KnockportConfig]: unknown }) => void): KnockportConfig => {
      const copy = structuredClone(good) as unknown as { -readonly [K in keyof KnockportConfig]: unknown };
      patch(copy);
      return copy as unknown as KnockportConfig;
    };
    const cases: KnockportConfig[] = [
      tamper((c) => {
        c.global = { ...good.global, interfaceExt: 'eth0" accept #' };
      }),
      tamper((c) => {
        c.global = { ...good.global, httpPostPath: "/a b" };
      }),
      tamper((c) => {
        c.global = { ...good.global, httpPostPath: `/${"a".repeat(64)}` };
      }),
      tamper((c) => {
        c.httpPort = 0;
      }),
      tamper((c) => {
        c.httpsPort = 8443.5;
      }),
      tamper((c) => {
        c.apps = [{ ...good.apps[0], name: "x; flush ruleset" }];
      }),
      tamper((c) => {
        c.apps = [{ ...good.apps[0], protocol: "icmp" }];
      }),
      tamper((c) => {
        c.apps = [{ ...good.apps[0], interfaceExt: "a".repeat(16) }];
      }),
      tamper((c) => {
        c.apps = [good.apps[0], good.apps[0]];
      }),
    ];
    for (const c of cases) {
      expect(() => renderNftRuleset(c)).toThrow(InvalidValueError);
    }
    const err = (() => {
      try {
        renderNftRuleset(cases[1] as KnockportConfig);
      } catch (e) {
        return e as InvalidValueError;
      }
      return undefined;
    })();
    expect(err?.code).toBe("INVALID_VALUE");
    expect(err?.message).not.toContain("/a b"); // the knock path is a secret
  });

  it("refuses leases for sets it does not define", () => {
    const config = makeConfig();
    expect(() =>
      renderNftRuleset(config, { elements: [{ set: "svc_gone_v4", ip: "198.51.100.7" as IpAddress, timeoutSeconds: 5 }] }),
    ).toThrow(expect.objectContaining({ code: "UNKNOWN_SET" }));
    expect(rulesetSetNames(config)).toEqual([
      "https_v4",
      "https_v6",
      "svc_openvpn_v4",
      "svc_openvpn_v6",
      "svc_ssh-admin_v4",
      "svc_ssh-admin_v6",
    ]);
  });

  it("removes the table idempotently", () => {
    expect(renderNftRemoveTable()).toBe("table inet knockport {}\ndelete table inet knockport\n");
  });
});
