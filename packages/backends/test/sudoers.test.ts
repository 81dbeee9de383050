import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseConfig, type KnockportConfig } from "@knockport/config";
import { nftPlacement, type NftPlacement } from "@knockport/firewall";
import { nftSudoCommands } from "@knockport/backend-nftables/sudoers";
import { iptablesSudoCommands } from "@knockport/backend-iptables/sudoers";
import type { IptablesBinaries } from "@knockport/backend-iptables/runtime";
import { vyosSudoCommands } from "@knockport/backend-vyos/sudoers";
import { renderSudoers } from "../src/sudoers.js";

/** One backend's exact command lines, with the binaries given (no lookup on this host). */
function sudoCommands(
  backend: { type: "nftables" | "vyos"; nft: string; placement?: NftPlacement } | { type: "iptables"; bin: IptablesBinaries },
  config: KnockportConfig | undefined,
): string[][] {
  if (backend.type === "iptables") return iptablesSudoCommands(backend.bin);
  return backend.type === "vyos" ? vyosSudoCommands(backend.nft, config) : nftSudoCommands(backend.nft, backend.placement);
}

const BIN = {
  iptables: "/usr/sbin/iptables-legacy",
  ip6tables: "/usr/sbin/ip6tables-legacy",
  iptablesRestore: "/usr/sbin/iptables-legacy-restore",
  ip6tablesRestore: "/usr/sbin/ip6tables-legacy-restore",
  iptablesSave: "/usr/sbin/iptables-legacy-save",
  ip6tablesSave: "/usr/sbin/ip6tables-legacy-save",
  ipset: "/usr/sbin/ipset",
};

describe("sudo", () => {
  it("the shipped deploy/sudoers/knockport is the generated nftables file, for the helper's own user", () => {
    const shipped = readFileSync(new URL("../../../deploy/sudoers/knockport", import.meta.url), "utf8");
    expect(shipped).toBe(renderSudoers("knockport-helper", sudoCommands({ type: "nftables", nft: "/usr/sbin/nft" }, undefined), "nftables"));
    expect(shipped).toContain(
      "    /usr/sbin/nft -f -, \\\n    /usr/sbin/nft list table inet knockport, \\\n    /usr/sbin/nft -t -j list table inet knockport, \\\n    /usr/sbin/nft monitor\n",
    );
    expect(shipped).not.toMatch(/\*/); // no wildcard anywhere
  });

  it("lists exact iptables command lines, escapes sudoers specials, and no line only uninstall runs", () => {
    const config = parseConfig(
      { global: { http_post_path: "/k-abcdefgh", https_post_path: "/k2-abcdefgh", interface_ext: "eth0" }, ssh: { port: 22, access_key_http: ["k1-abcdefghij"], access_key_https: ["k2-abcdefghij"], duration: 60 } },
      "c.yaml",
    );
    const text = renderSudoers("knockport-helper", sudoCommands({ type: "iptables", bin: BIN }, config), "iptables");
    expect(text).toContain("/usr/sbin/iptables-legacy -w 5 -t filter -I INPUT 1 -m comment --comment KnockPort\\: jump to its own chain -j KNOCKPORT-INPUT");
    expect(text).not.toMatch(/ipset destroy| -[DFX] /);
    expect(text).not.toMatch(/\*/);
    expect(() => renderSudoers("root ALL=(ALL) ALL #", [], "x")).toThrow(/--sudo-user/);
  });
});

describe("sudoers never grants the server's user anything", () => {
  /** Users a sudoers text gives something to: `Defaults:USER` and `USER HOST = ...` lines. */
  const grantees = (text: string): string[] =>
    text
      .split("\n")
      .filter((l) => !l.startsWith("#") && !l.startsWith(" ") && l.trim() !== "" && !l.startsWith("Cmnd_Alias"))
      .map((l) => (l.startsWith("Defaults:") ? l.slice("Defaults:".length).split(/\s/)[0] ?? "" : l.split(/\s/)[0] ?? ""));

  it("the shipped file and every rendered backend name only knockport-helper", () => {
    const shipped = readFileSync(new URL("../../../deploy/sudoers/knockport", import.meta.url), "utf8");
    expect(grantees(shipped)).toEqual(["knockport-helper", "knockport-helper"]);
    for (const backend of [{ type: "nftables", nft: "/usr/sbin/nft" }, { type: "vyos", nft: "/usr/sbin/nft" }, { type: "iptables", bin: BIN }] as const) {
      const text = renderSudoers("knockport-helper", sudoCommands(backend, undefined), backend.type);
      expect(grantees(text)).toEqual(["knockport-helper", "knockport-helper"]);
      expect(text).not.toMatch(/^knockport\s/m);
      expect(text).not.toMatch(/^Defaults:knockport\s/m);
    }
  });

  it.each(["knockport", "root"])("refuses to render a file for %s", (user) => {
    expect(() => renderSudoers(user, sudoCommands({ type: "nftables", nft: "/usr/sbin/nft" }, undefined), "nftables")).toThrow(
      /--sudo-user .*: .*knockport-helper/,
    );
  });
});

describe("sudoCommands with custom nftables chains", () => {
  it("adds exactly the two listings of the admin's table", () => {
    const plain = sudoCommands({ type: "nftables", nft: "/usr/sbin/nft" }, undefined);
    const custom = sudoCommands({ type: "nftables", nft: "/usr/sbin/nft", placement: nftPlacement({ table: "filter", input: "input", forward: "forward" }) }, undefined);
    expect(custom).toEqual([
      ...plain,
      ["/usr/sbin/nft", "-t", "-j", "list", "table", "inet", "filter"],
      ["/usr/sbin/nft", "list", "table", "inet", "filter"],
    ]);
  });
});
