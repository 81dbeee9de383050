import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { FirewallBackend, SetChange } from "@knockport/firewall";
import type { Privilege } from "@knockport/firewall/run";
import { NftablesBackend } from "@knockport/backend-nftables/runtime";
import { nftSudoCommands } from "@knockport/backend-nftables/sudoers";
import { IptablesBackend } from "@knockport/backend-iptables/runtime";
import { iptablesSudoCommands } from "@knockport/backend-iptables/sudoers";
import { VyosBackend } from "@knockport/backend-vyos/runtime";
import { vyosSudoCommands } from "@knockport/backend-vyos/sudoers";
import type { IpAddress } from "@knockport/protocol";
import { makeConfig } from "../../firewall/test/fixtures.js";
import { expectGolden } from "../../firewall/test/golden.js";
import { renderSudoers } from "../src/sudoers.js";

const NFT = "/usr/sbin/nft";
const BIN = {
  iptables: "/usr/sbin/iptables-legacy",
  ip6tables: "/usr/sbin/ip6tables-legacy",
  iptablesRestore: "/usr/sbin/iptables-legacy-restore",
  ip6tablesRestore: "/usr/sbin/ip6tables-legacy-restore",
  iptablesSave: "/usr/sbin/iptables-legacy-save",
  ip6tablesSave: "/usr/sbin/ip6tables-legacy-save",
  ipset: "/usr/sbin/ipset",
};

/**
 * A stand-in for every firewall binary: `-C` (a jump check) fails so the jump is inserted, a JSON
 * listing is an empty table, everything else succeeds silently.
 */
const fake = join(mkdtempSync(join(tmpdir(), "kp-sudo-")), "fake-firewall.mjs");
writeFileSync(
  fake,
  `const args = process.argv.slice(3);
if (args.includes("-C")) process.exit(1);
if (args.includes("-j")) process.stdout.write('{"nftables":[{"metainfo":{}},{"table":{"family":"inet","name":"knockport","handle":1}}]}');
`,
);

/** What `sudo -n` would be asked to run: every command line the backend wraps, recorded and handed to the stand-in. */
function recording(): { privilege: Privilege; ran: string[][] } {
  const ran: string[][] = [];
  return { ran, privilege: { viaSudo: true, wrap: (file, args) => (ran.push([file, ...args]), { file: process.execPath, args: [fake, file, ...args] }) } };
}

const config = makeConfig();
const ip = "198.51.100.7" as IpAddress;
const grant = { op: "grant", set: "svc_ssh-admin_v4", ip, timeoutSeconds: 60 } as const;
const changes: SetChange[] = [grant, { op: "revoke", set: "https_v4", ip }];

/** Everything the running helper asks of a backend (uninstall runs as root in the CLI, never through sudo). */
async function exercise(backend: FirewallBackend, extra: () => Promise<unknown> = async () => undefined): Promise<void> {
  await backend.install([grant]).catch(() => undefined);
  await backend.apply(changes).catch(() => undefined);
  await backend.isInstalled?.().catch(() => undefined);
  await backend.listElements?.(new Set(["https_v4", "svc_ssh-admin_v4"])).catch(() => undefined);
  await extra();
  const stop = backend.watch?.(() => undefined, { warn: () => undefined });
  stop?.();
}

const line = (c: readonly string[]): string => c.join(" ");

describe("the sudoers file names exactly what the helper runs through sudo", () => {
  it("nftables: every command line it ran is allowed", async () => {
    const { privilege, ran } = recording();
    await exercise(new NftablesBackend(config, NFT, privilege));
    const allowed = nftSudoCommands(NFT).map(line);
    expect(ran.map(line).filter((c) => !allowed.includes(c))).toEqual([]);
    expect(new Set(ran.map(line))).toEqual(new Set(allowed));
  });

  it("iptables: every command line it ran is allowed, and nothing only uninstall runs is", async () => {
    const { privilege, ran } = recording();
    await exercise(new IptablesBackend(config, BIN, privilege));
    const allowed = iptablesSudoCommands(BIN).map(line);
    expect(ran.map(line).filter((c) => !allowed.includes(c))).toEqual([]);
    expect(ran.map(line)).toContain(`${BIN.iptables} -w 5 -t filter -I INPUT 1 -m comment --comment KnockPort: jump to its own chain -j KNOCKPORT-INPUT`);
    expect(allowed.filter((c) => / -[DFX] | destroy /.test(c))).toEqual([]);
  });

  it("vyos: every command line it ran is allowed", async () => {
    const { privilege, ran } = recording();
    const vyos = new VyosBackend(config, "/bin/vbash", NFT, privilege);
    await exercise(vyos, () => (vyos as unknown as { chainsExist(): Promise<boolean> }).chainsExist());
    const allowed = vyosSudoCommands(NFT, config).map(line);
    expect(ran.map(line).filter((c) => !allowed.includes(c))).toEqual([]);
    expect(ran.map(line).some((c) => c.startsWith(`${NFT} list chain ip vyos_filter`))).toBe(true);
  });

  it("the generated iptables and VyOS files (golden)", () => {
    expectGolden("iptables-sudoers", renderSudoers("knockport-helper", iptablesSudoCommands(BIN), "iptables"));
    expectGolden("vyos-sudoers", renderSudoers("knockport-helper", vyosSudoCommands(NFT, config), "vyos"));
  });
});
