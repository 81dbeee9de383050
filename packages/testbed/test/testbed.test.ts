// Unit tests of the pure parts of @knockport/testbed (no root, no namespaces). The kernel-facing parts
// are exercised by test/e2e/testbed.test.ts.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config/src/index.js";
import {
  NAMESPACE_PATTERN,
  describeKnock,
  exampleConfig,
  formBody,
  knockUrl,
  maskSecret,
  nftSetElements,
  nftSetNames,
  nftSetsContaining,
  pollUntil,
  randomPath,
  randomSecret,
  renderConfigYaml,
  toolPath,
  type NftJson,
} from "../src/index.js";

describe("urls and bodies", () => {
  it("brackets IPv6 hosts and keeps IPv4 as is", () => {
    expect(knockUrl("http", "198.51.100.1", 8080, "/k1-abc")).toBe("http://198.51.100.1:8080/k1-abc");
    expect(knockUrl("https", "2001:db8:100::1", 8443, "/k2")).toBe("https://[2001:db8:100::1]:8443/k2");
    expect(knockUrl("http", "198.51.100.1", 80, "noslash")).toBe("http://198.51.100.1:80/noslash");
  });

  it("form-encodes fields", () => {
    expect(formBody({ app: "ssh", access_key: "a&b=c d" })).toBe("app=ssh&access_key=a%26b%3Dc+d");
  });

  it("masks secrets in displayed curl commands", () => {
    const shown = describeKnock(
      { argv: ["curl", "-s", "-m", "1", "-d", "app=ssh&access_key=TopSecretKey123", "http://198.51.100.1:8080/p"] },
      ["TopSecretKey123"],
      maskSecret,
    );
    expect(shown).not.toContain("TopSecretKey123");
    expect(shown).toContain("Top…(15)");
    expect(shown.startsWith("curl -s -m 1 -d 'app=ssh&access_key=Top")).toBe(true);
  });
});

describe("namespace names", () => {
  it("matches only our own names", () => {
    for (const ok of ["kpab12cd-srv", "kpab12cd-sw", "kpab12cd-cli2", "kp1-lan"]) expect(NAMESPACE_PATTERN.test(ok), ok).toBe(true);
    for (const no of ["kpfw-srv-8656", "kpsmoke", "kpab12cd-srv2", "xkpab12cd-srv", "kpAB12CD-srv", "kp-srv", "kpab12cd-cli-x"]) {
      expect(NAMESPACE_PATTERN.test(no), no).toBe(false);
    }
  });
});

describe("config", () => {
  it("random paths and secrets have the requested shape", () => {
    const p = randomPath("/k1-", 40);
    expect(p).toHaveLength(40);
    expect(p).toMatch(/^\/k1-[A-Za-z0-9]{36}$/);
    expect(randomSecret(24)).toMatch(/^[A-Za-z0-9]{24}$/);
    expect(randomSecret(24)).not.toBe(randomSecret(24));
    expect(() => randomPath("k1-", 10)).toThrow();
  });

  it("renders YAML the real config loader accepts, with the values it was given", () => {
    const spec = exampleConfig({ interfaceExt: "ext0", duration: 3, step2HttpsDuration: 4, httpPathLength: 64, rateLimitPerMinute: 7, httpsConnectionLimit: { perMinute: 9, burst: 2 } });
    const dir = mkdtempSync(join(tmpdir(), "kp-testbed-unit-"));
    try {
      const file = join(dir, "config.yaml");
      writeFileSync(file, renderConfigYaml(spec));
      const cfg = loadConfig(file);
      expect(cfg.global.httpPostPath).toBe(spec.httpPostPath);
      expect(cfg.global.httpPostPath).toHaveLength(64);
      expect(cfg.global.httpsPostPath).toBe(spec.httpsPostPath);
      expect(cfg.global.rateLimitPerMinute).toBe(7);
      expect(cfg.global.httpsConnectionLimit).toEqual({ perMinute: 9, burst: 2 });
      // not given: not written, so KnockPort's defaults apply
      expect(renderConfigYaml(exampleConfig({ interfaceExt: "ext0" }))).not.toContain("https_connection_limit");
      expect(cfg.global.interfaceExt).toBe("ext0");
      expect([cfg.httpPort, cfg.httpsPort]).toEqual([8080, 8443]);
      expect(cfg.apps.map((a) => [a.name, a.protocol, a.port, a.durationSeconds, a.step2HttpsDurationSeconds])).toEqual([
        ["ssh", "tcp", 2222, 3, 4],
        ["openvpn", "udp", 1194, 3, 4],
      ]);
      const sshApp = cfg.apps[0];
      expect(sshApp?.accessKeysHttp).toEqual(spec.apps[0]?.accessKeysHttp);
      expect(sshApp?.accessKeysHttps).toEqual(spec.apps[0]?.accessKeysHttps);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("nft JSON helpers", () => {
  const table: NftJson = {
    nftables: [
      { metainfo: { version: "1.0.6" } },
      { table: { family: "inet", name: "knockport", handle: 1 } },
      { set: { family: "inet", name: "https_v4", table: "knockport", type: "ipv4_addr", flags: ["timeout"], elem: [{ elem: { val: "198.51.100.10", timeout: 4, expires: 3 } }] } },
      { set: { family: "inet", name: "svc_ssh_v6", table: "knockport", type: "ipv6_addr", elem: ["2001:db8:100::10"] } },
      { set: { family: "inet", name: "svc_ssh_v4", table: "knockport", type: "ipv4_addr" } },
    ],
  };

  it("lists sets and elements, with and without timeouts", () => {
    expect(nftSetNames(table)).toEqual(["https_v4", "svc_ssh_v6", "svc_ssh_v4"]);
    expect(nftSetElements(table, "https_v4")).toEqual([{ value: "198.51.100.10", timeout: 4, expires: 3 }]);
    expect(nftSetElements(table, "svc_ssh_v6")).toEqual([{ value: "2001:db8:100::10", timeout: undefined, expires: undefined }]);
    expect(nftSetElements(table, "svc_ssh_v4")).toEqual([]);
    expect(nftSetElements(table, "absent")).toEqual([]);
    expect(nftSetsContaining(table, "198.51.100.10").map((e) => e.set)).toEqual(["https_v4"]);
    expect(nftSetsContaining(table, "198.51.100.20")).toEqual([]);
  });
});

describe("misc", () => {
  it("ships its tool scripts", () => {
    expect(existsSync(toolPath("probe.mjs"))).toBe(true);
    expect(existsSync(toolPath("echo-server.mjs"))).toBe(true);
  });

  it("pollUntil is bounded", async () => {
    let calls = 0;
    const started = Date.now();
    const result = await pollUntil(() => {
      calls++;
      return undefined;
    }, 200, 20);
    expect(result).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(calls).toBeLessThanOrEqual(12);
    expect(await pollUntil(() => (calls > 0 ? "yes" : undefined), 100)).toBe("yes");
  });
});
