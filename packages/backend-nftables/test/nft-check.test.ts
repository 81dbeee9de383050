import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { renderNftRuleset, renderNftGrant, renderNftRevoke } from "@knockport/backend-nftables/render";
import { makeConfig, step1Target, step2Target } from "../../firewall/test/fixtures.js";

const NFT = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].find((p) => existsSync(p));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const skipReason = !NFT ? "nft binary not found" : !isRoot ? "not root (nft -c needs CAP_NET_ADMIN)" : "";
if (skipReason) console.warn(`[firewall] skipping nft -c syntax checks: ${skipReason}`);

/** `nft -c -f`: parse and validate against the kernel without committing anything. */
function nftCheck(text: string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "kpfw-"));
  try {
    const file = join(dir, "rules.nft");
    writeFileSync(file, text);
    const r = spawnSync(NFT as string, ["-c", "-f", file], { encoding: "utf8", timeout: 10_000 });
    return { status: r.status, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(skipReason !== "")(`nft -c accepts the generated text (${skipReason || NFT})`, () => {
  const config = makeConfig();
  const V4 = "198.51.100.7" as IpAddress;
  const V6 = "2001:db8:1::7" as IpAddress;

  it("ruleset", () => {
    expect(nftCheck(renderNftRuleset(config))).toEqual({ status: 0, stderr: "" });
  });

  it("ruleset in WAF mode (stealth on nginx's ports, KnockPort's own ports dropped)", () => {
    const waf = makeConfig({ global: { waf_http_port: 80, waf_https_port: 443, interface_ext: "eth0" } });
    expect(nftCheck(renderNftRuleset(waf))).toEqual({ status: 0, stderr: "" });
  });

  it("ruleset with a 64-character path, two interfaces and re-added leases", () => {
    const c = makeConfig({
      global: { http_post_path: `/${"abcdefghij".repeat(6)}-._` },
      apps: {
        vpn: { port: 1194, protocol: "udp", access_key_http: ["k1-abcdefgh"], access_key_https: ["k2-abcdefgh"], duration: 31622400, interface_ext: "wg.ext_0-x" },
        "A-b_9": { port: 2222, access_key_http: ["k3-abcdefgh"], access_key_https: ["k4-abcdefgh"], duration: 60 },
      },
    });
    expect(c.global.httpPostPath).toHaveLength(64);
    const text = renderNftRuleset(c, { elements: [step2Target(c, "vpn", V6), step2Target(c, "A-b_9", V4), step1Target(c, "vpn", V4)] });
    expect(nftCheck(text)).toEqual({ status: 0, stderr: "" });
  });

  it("ruleset with forwarded apps (IPv4 and IPv6 destinations, masquerade on and off)", () => {
    const c = makeConfig({
      apps: {
        fwd4: { port: 3389, access_key_http: ["k1-abcdefgh"], access_key_https: ["k2-abcdefgh"], duration: 60, destination: "192.0.2.10:13389" },
        fwd6: { port: 5900, protocol: "udp", access_key_http: ["k3-abcdefgh"], access_key_https: ["k4-abcdefgh"], duration: 60, destination: "[2001:db8::5]", masquerade: false },
      },
    });
    expect(nftCheck(renderNftRuleset(c, { elements: [step2Target(c, "fwd4", V4)] }))).toEqual({ status: 0, stderr: "" });
  });

  it("grant and revoke batches, each on its own and after the ruleset", () => {
    const batches = [
      renderNftGrant(step1Target(config, "openvpn", V4)),
      renderNftGrant(step2Target(config, "ssh-admin", V6)),
      renderNftRevoke(step2Target(config, "openvpn", V4)),
      renderNftRevoke(step1Target(config, "openvpn", V6)),
    ];
    // Alone they refer to a table that may not exist here, so check them after the ruleset.
    expect(nftCheck(renderNftRuleset(config) + batches.join(""))).toEqual({ status: 0, stderr: "" });
  });
});
