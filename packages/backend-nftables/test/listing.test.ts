import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { parseConfig } from "@knockport/config";
import { step2Target } from "../../firewall/test/fixtures.js";
import { CUSTOM_JUMP_COMMENT, nftPlacement } from "@knockport/firewall";
import { checkAdminChains, existingObjects, layoutInPlace, nftLayout, readTableListing, renderNftRemoveCustom, renderNftRuleset, ListingParseError, renderNftGrant } from "@knockport/backend-nftables/render";

const NFT = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].find((p) => existsSync(p));
const UNSHARE = ["/usr/bin/unshare", "/bin/unshare"].find((p) => existsSync(p));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const skipReason = !NFT ? "nft binary not found" : !UNSHARE ? "unshare not found" : !isRoot ? "not root" : "";

const config = parseConfig(
  {
    global: { http_post_path: "/knock-one", https_post_path: "/knock-two", interface_ext: "eth0", http_port: 8080, https_port: 8443 },
    ssh: { port: 22, protocol: "tcp", access_key_http: ["http-key-ssh-123"], access_key_https: ["https-key-ssh-123"], duration: 60 },
  },
  "/etc/knockport/config.yaml",
);
const FILTER = nftPlacement({ table: "filter", input: "input", forward: "forward" });

const ADMIN_RULESET = `table inet filter {
	set admin_allow {
		type ipv4_addr
		elements = { 192.0.2.1 }
	}
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept comment "admin: established"
		tcp dport 2222 accept comment "admin: must survive"
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
	chain admin_helper {
		ip saddr @admin_allow accept
	}
}
`;

/** A JSON listing shaped like nft 1.0.6 prints it (checked against the real binary below). */
function listing(objects: unknown[]): string {
  return JSON.stringify({ nftables: [{ metainfo: { version: "1.0.6", json_schema_version: 1 } }, ...objects] });
}

describe("reading an admin's table", () => {
  const doc = listing([
    { table: { family: "inet", name: "filter", handle: 1 } },
    { set: { family: "inet", name: "knockport_https_v4", table: "filter", type: "ipv4_addr", handle: 4 } },
    { set: { family: "inet", name: "admin_allow", table: "filter", type: "ipv4_addr", handle: 5 } },
    { chain: { family: "inet", table: "filter", name: "input", handle: 1, type: "filter", hook: "input", prio: 0, policy: "drop" } },
    { chain: { family: "inet", table: "filter", name: "knockport_input", handle: 3 } },
    { chain: { family: "inet", table: "filter", name: "knockport_raw_output", handle: 9, type: "filter", hook: "output", prio: -300, policy: "accept" } },
    { rule: { family: "inet", table: "filter", chain: "input", handle: 8, comment: CUSTOM_JUMP_COMMENT, expr: [{ jump: { target: "knockport_input" } }] } },
    { rule: { family: "inet", table: "filter", chain: "input", handle: 2, comment: "admin ssh", expr: [{ accept: null }] } },
    { rule: { family: "inet", table: "filter", chain: "input", handle: 6, expr: [{ counter: { packets: 0, bytes: 0 } }, { jump: { target: "admin_helper" } }] } },
  ]);

  it("finds our jumps by comment and our chains and sets by name, nothing of the admin's", () => {
    const parsed = readTableListing(doc, true);
    expect(existingObjects(parsed)).toEqual({
      jumps: [{ chain: "input", handle: 8 }],
      chains: ["knockport_input", "knockport_raw_output"],
      sets: ["knockport_https_v4"],
    });
    expect(parsed.rules.find((r) => r.handle === 6)?.jumpTo).toBe("admin_helper");
  });

  it("names the flag when a chain is missing or hooks elsewhere", () => {
    const parsed = readTableListing(doc, true);
    const custom = { table: "filter", input: "input", forward: "forward" };
    expect(checkAdminChains(parsed, custom, false)).toBeUndefined();
    expect(checkAdminChains(parsed, custom, true)).toMatch(/^--nftables-chain-forward: table inet filter has no chain forward; create it/);
    expect(checkAdminChains(parsed, { ...custom, input: "knockport_input" }, false)).toMatch(/^--nftables-chain-input: .* is a regular chain \(no hook\)/);
    expect(checkAdminChains(parsed, { ...custom, output: "input" }, false)).toMatch(/^--nftables-chain-output: chain input .* on hook input, not a filter chain on hook output/);
  });

  it("rejects what is not nft's JSON", () => {
    expect(() => readTableListing("not json", true)).toThrow(ListingParseError);
    expect(() => readTableListing('{"x":1}', true)).toThrow(ListingParseError);
  });
});

/** Run a shell script of nft commands in a fresh network namespace; `@@name` lines write the listing of inet filter as JSON. */
function inNetns(steps: Array<{ file?: string; list?: true; cmd?: string }>): { status: number | null; stderr: string; lists: string[] } {
  const lines = ["set -e"];
  const inputs: string[] = [];
  for (const s of steps) {
    if (s.file !== undefined) {
      inputs.push(s.file);
      lines.push(`${NFT} -f - <<'KP_EOF_${inputs.length}'\n${s.file}KP_EOF_${inputs.length}`);
    } else if (s.list) lines.push(`echo '@@'; ${NFT} -j list table inet filter`);
    else if (s.cmd !== undefined) lines.push(`${NFT} ${s.cmd}`);
  }
  const r = spawnSync(UNSHARE as string, ["--net", "--", "sh", "-c", lines.join("\n")], { encoding: "utf8", timeout: 20_000 });
  return { status: r.status, stderr: r.stderr, lists: r.stdout.split("@@\n").slice(1) };
}

/** The listing without handles (they change on re-creation) and without our objects. */
function adminOnly(json: string): unknown[] {
  const doc = JSON.parse(json) as { nftables: Array<Record<string, Record<string, unknown>>> };
  return doc.nftables
    .filter((o) => !o.metainfo)
    .map((o) => {
      const [kind, body] = Object.entries(o)[0] as [string, Record<string, unknown>];
      const { handle: _h, ...rest } = body;
      return { [kind]: rest };
    })
    .filter((o) => !JSON.stringify(o).includes("knockport"));
}

describe.skipIf(skipReason !== "")(`custom chains on the real kernel (${skipReason || "unshare --net"})`, () => {
  it("installs into the admin's table, re-installs without a second jump, self-heal check sees a flush, uninstall restores the table exactly", () => {
    // Round 1: admin ruleset, list, install (nothing of ours yet), list.
    const r1 = inNetns([{ file: ADMIN_RULESET }, { list: true }, { file: renderNftRuleset(config, { placement: FILTER }) }, { list: true }]);
    expect(r1.stderr).toBe("");
    expect(r1.status).toBe(0);
    const [before, afterFirst] = r1.lists.map((l) => readTableListing(l, true));
    expect(before && afterFirst).toBeTruthy();
    if (!before || !afterFirst) return;
    expect(layoutInPlace(before, nftLayout(config, FILTER))).toBe(false);
    expect(layoutInPlace(afterFirst, nftLayout(config, FILTER))).toBe(true);
    const inputRules = afterFirst.rules.filter((r) => r.chain === "input");
    expect(inputRules[0]).toMatchObject({ comment: CUSTOM_JUMP_COMMENT, jumpTo: "knockport_input" });
    expect(inputRules.map((r) => r.comment)).toEqual([CUSTOM_JUMP_COMMENT, "admin: established", "admin: must survive"]);

    // Round 2 (a restart / self-heal): re-install with what round 1 left, with a live lease; then our
    // chain is flushed from outside; then uninstall.
    const ip = "198.51.100.7" as IpAddress;
    const grant = step2Target(config, "ssh", ip);
    const script2 = renderNftRuleset(config, { placement: FILTER, existing: existingObjects(afterFirst), elements: [grant] });
    const afterSecondSteps = inNetns([
      { file: ADMIN_RULESET },
      { file: renderNftRuleset(config, { placement: FILTER }) },
      { file: script2 },
      { list: true },
      { file: renderNftGrant({ ...grant, timeoutSeconds: 30 }, FILTER) },
      { cmd: "flush chain inet filter knockport_input" },
      { list: true },
    ]);
    expect(afterSecondSteps.stderr).toBe("");
    expect(afterSecondSteps.status).toBe(0);
    const [second, flushed] = afterSecondSteps.lists.map((l) => readTableListing(l, true));
    if (!second || !flushed) throw new Error("missing listing");
    expect(second.rules.filter((r) => r.comment === CUSTOM_JUMP_COMMENT)).toHaveLength(1);
    expect(layoutInPlace(second, nftLayout(config, FILTER))).toBe(true);
    expect(JSON.stringify(JSON.parse(afterSecondSteps.lists[0] ?? "{}"))).toContain('"knockport_svc_ssh_v4"');
    expect(layoutInPlace(flushed, nftLayout(config, FILTER))).toBe(false);
    expect(adminOnly(afterSecondSteps.lists[0] ?? "")).toEqual(adminOnly(r1.lists[0] ?? ""));

    // Uninstall from the state round 1 left: the admin's table is exactly as before (handles aside).
    const r3 = inNetns([
      { file: ADMIN_RULESET },
      { file: renderNftRuleset(config, { placement: FILTER }) },
      { file: renderNftRemoveCustom(FILTER, existingObjects(afterFirst)) },
      { list: true },
    ]);
    expect(r3.stderr).toBe("");
    const original = JSON.parse(r1.lists[0] ?? "{}") as { nftables: unknown[] };
    const after = JSON.parse(r3.lists[0] ?? "{}") as { nftables: unknown[] };
    expect(after.nftables).toEqual(original.nftables);
  });

  it("loads with a forwarded app and a named output chain (three jumps, NAT base chains of ours in the admin's table)", () => {
    const fwdConfig = parseConfig(
      {
        global: { http_post_path: "/knock-one", https_post_path: "/knock-two", interface_ext: "eth0", interface_int: "eth1", http_port: 8080, https_port: 8443 },
        rdp: { port: 3389, destination: "192.0.2.10:13389", access_key_http: ["http-key-rdp-123"], access_key_https: ["https-key-rdp-123"], duration: 60 },
      },
      "/etc/knockport/config.yaml",
    );
    const placement = nftPlacement({ table: "filter", input: "input", forward: "forward", output: "out" });
    const admin = ADMIN_RULESET.replace("\tchain admin_helper {", "\tchain out {\n\t\ttype filter hook output priority filter; policy accept;\n\t}\n\tchain admin_helper {");
    const r = inNetns([{ file: admin }, { file: renderNftRuleset(fwdConfig, { placement }) }, { list: true }]);
    expect(r.stderr).toBe("");
    const listed = readTableListing(r.lists[0] ?? "", true);
    expect(layoutInPlace(listed, nftLayout(fwdConfig, placement))).toBe(true);
    expect(existingObjects(listed).jumps.map((j) => j.chain).sort()).toEqual(["forward", "input", "out"]);
    expect(listed.chains.filter((c) => c.name.startsWith("knockport_")).map((c) => `${c.name}:${c.hook ?? "-"}`)).toEqual([
      "knockport_raw_prerouting:prerouting",
      "knockport_raw_output:output",
      "knockport_guard_prerouting:prerouting",
      "knockport_input:-",
      "knockport_output:-",
      "knockport_nat_prerouting:prerouting",
      "knockport_forward:-",
      "knockport_nat_postrouting:postrouting",
    ]);
  });
});
