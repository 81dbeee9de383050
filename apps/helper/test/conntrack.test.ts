/**
 * close_established: the helper deletes a client's conntrack entries when a lease of such an app ends
 * (expiry, expired while down, revoke, --service-rule-cleanup-on-shutdown). Here conntrack is a small
 * script that records its arguments and answers like conntrack 1.4.7 (summary on stderr, exit 1 when
 * nothing matched); the real kernel is exercised by test/e2e/close-established.test.ts.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig, type KnockportConfig } from "@knockport/config";
import type { IpAddress } from "@knockport/protocol";
import { RecordingFirewall, capturingLogger, recordedCalls } from "./recording-firewall.js";
import { ConntrackCutter, ConntrackMissingError, conntrackDeleteArgs, locateConntrackFor } from "../src/conntrack.js";
import { HelperService } from "../src/service.js";
import { revokeAllLeases } from "../src/shutdown.js";
import { conntrackSudoCommands, renderSudoers } from "@knockport/backends/sudoers";
import { sudoPrivilege } from "../src/privilege.js";

const IP = "198.51.100.7" as IpAddress;
const IP6 = "2001:db8::7" as IpAddress;
const T0 = Date.UTC(2030, 0, 1);


type Line = Record<string, unknown>;

function config(extra: { vpn?: Record<string, unknown>; ssh?: Record<string, unknown> } = {}): KnockportConfig {
  return parseConfig(
    {
      global: { http_post_path: "/knock-one-path", https_post_path: "/knock-two-path", interface_ext: "eth0" },
      vpn: {
        port: 1194,
        protocol: "udp",
        access_key_http: ["vpn-http-key-0000"],
        access_key_https: ["vpn-https-key-0000"],
        duration: 86400,
        close_established: true,
        ...extra.vpn,
      },
      ssh: { port: 2222, access_key_http: ["ssh-http-key-0000"], access_key_https: ["ssh-https-key-0000"], duration: 3600, ...extra.ssh },
    },
    "test.yaml",
  );
}

describe("conntrack arguments and lookup", () => {
  it("filters on the original tuple: family, protocol, destination port, then the client address last", () => {
    expect(conntrackDeleteArgs({ protocol: "udp", port: 1194 as never }, IP)).toEqual([
      "-D", "-f", "ipv4", "-p", "udp", "--orig-port-dst", "1194", "--orig-src", IP,
    ]);
    expect(conntrackDeleteArgs({ protocol: "tcp", port: 2222 as never }, IP6)).toEqual([
      "-D", "-f", "ipv6", "-p", "tcp", "--orig-port-dst", "2222", "--orig-src", IP6,
    ]);
  });

  it("needs conntrack only when an app has close_established, and names the apps and the fix when it is missing", () => {
    expect(locateConntrackFor(config({ vpn: { close_established: false } }), () => false)).toBeUndefined();
    expect(locateConntrackFor(config(), (p) => p === "/sbin/conntrack")).toBe("/sbin/conntrack");
    expect(() => locateConntrackFor(config(), () => false)).toThrow(ConntrackMissingError);
    expect(() => locateConntrackFor(config(), () => false)).toThrow(
      /test\.yaml: vpn\.close_established is true but conntrack was not found .*apt-get install conntrack/,
    );
  });

  it("--print-sudoers: one regular-expression line per close_established app and family, the address the only open argument", () => {
    const cmds = conntrackSudoCommands(config(), "/usr/sbin/conntrack");
    expect(cmds.every((c) => c[0] === "/usr/sbin/conntrack")).toBe(true);
    const ct = cmds.map((c) => c.slice(1).join(" "));
    expect(ct).toEqual([
      "^-D -f ipv4 -p udp --orig-port-dst 1194 --orig-src [0-9.]+$",
      "^-D -f ipv6 -p udp --orig-port-dst 1194 --orig-src [0-9a-f:]+$",
    ]);
    // Each line as a regex accepts exactly the helper's own command line and nothing appended to it.
    const [v4, v6] = ct.map((r) => new RegExp(r));
    expect(v4?.test(conntrackDeleteArgs({ protocol: "udp", port: 1194 as never }, IP).join(" "))).toBe(true);
    expect(v6?.test(conntrackDeleteArgs({ protocol: "udp", port: 1194 as never }, IP6).join(" "))).toBe(true);
    expect(v4?.test(`${conntrackDeleteArgs({ protocol: "udp", port: 1194 as never }, IP).join(" ")} -F`)).toBe(false);
    expect(v4?.test("-F")).toBe(false);
    // sudoers escaping of ":" in the IPv6 class
    expect(renderSudoers("knockport-helper", cmds, "nftables")).toContain("/usr/sbin/conntrack ^-D -f ipv6 -p udp --orig-port-dst 1194 --orig-src [0-9a-f\\:]+$");
    expect(conntrackSudoCommands(config({ vpn: { close_established: false } }), "/usr/sbin/conntrack")).toEqual([]);
  });
});

describe("close_established: conntrack entries go when a lease ends", () => {
  let dir: string;
  let calls: string;
  let fakeConntrack: string;
  let clock: { t: number; now(): number };
  let firewall: RecordingFirewall;
  let lines: Line[];
  let service: HelperService;

  /** Writes the conntrack stand-in: records argv, prints the summary, exits with `exit`. */
  function writeConntrack(deleted: number, exit: number, extraStderr = ""): void {
    writeFileSync(
      fakeConntrack,
      `#!/bin/sh\nIFS="$(printf '\\t')"\nprintf '%s\\n' "$*" >> '${calls}'\n${extraStderr ? `echo '${extraStderr}' >&2\n` : ""}` +
        `echo 'conntrack v1.4.7 (conntrack-tools): ${deleted} flow entries have been deleted.' >&2\nexit ${exit}\n`,
    );
    chmodSync(fakeConntrack, 0o755);
  }

  const recorded = (): string[][] => recordedCalls(calls);

  async function startService(cfg: KnockportConfig, conntrackPath: string | undefined = fakeConntrack): Promise<HelperService> {
    const log = capturingLogger(lines);
    const s = new HelperService(cfg, firewall, log, clock, new ConntrackCutter(log, conntrackPath));
    await s.start();
    return s;
  }

  const events = (name: string): Line[] => lines.filter((l) => l.event === name);
  const vpnArgs = (ip: IpAddress): string[] => conntrackDeleteArgs({ protocol: "udp", port: 1194 as never }, ip);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "kp-conntrack-"));
    calls = join(dir, "calls.tsv");
    fakeConntrack = join(dir, "conntrack");
    writeConntrack(2, 0);
    clock = { t: T0, now: () => clock.t };
    firewall = new RecordingFirewall();
    lines = [];
    service = await startService(config());
  });
  afterEach(async () => {
    service.stop();
    await service.conntrack.idle();
    rmSync(dir, { recursive: true, force: true });
  });

  async function expireAndSweep(s: HelperService, seconds: number): Promise<void> {
    clock.t += seconds * 1000;
    s.startExpirySweep(5);
    for (let i = 0; i < 200 && events("lease.expired").length === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    await s.conntrack.idle();
  }

  it("expiry: the element is revoked (idempotent) and then the client's entries for that app are deleted, once", async () => {
    await service.handlers.grant({ app: "vpn", ip: IP, durationSeconds: 5 }, undefined);
    await service.handlers.grant({ app: "ssh", ip: IP, durationSeconds: 5 }, undefined);
    firewall.changes.length = 0;
    await expireAndSweep(service, 6);
    expect(events("lease.expired").map((l) => l.app).sort()).toEqual(["ssh", "vpn"]);
    // ssh has no close_established: no revoke (the kernel's timeout did it), no conntrack call
    expect(firewall.changes).toEqual([{ op: "revoke", set: "svc_vpn_v4", ip: IP }]);
    expect(recorded()).toEqual([vpnArgs(IP)]);
    expect(events("conntrack.deleted")).toEqual([
      expect.objectContaining({ audit: true, app: "vpn", ip: IP, reason: "expiry", deleted: 2, port: 1194, protocol: "udp" }),
    ]);
    await new Promise((r) => setTimeout(r, 50));
    expect(recorded()).toHaveLength(1);
  });

  it("revoke (IPv6): waits for the deletion; a step-1-only close and an app without the key cut nothing", async () => {
    await service.handlers.grant({ app: "vpn", ip: IP6 }, undefined);
    expect(await service.handlers.close({ app: "vpn", ip: IP6 }, undefined)).toEqual({ closed: 1 });
    expect(recorded()).toEqual([vpnArgs(IP6)]);
    expect(events("conntrack.deleted")[0]).toMatchObject({ reason: "revoke", ip: IP6 });
    await service.handlers.open({ step: 1, app: "vpn", ip: IP }, undefined);
    await service.handlers.close({ app: "vpn", ip: IP }, undefined);
    await service.handlers.grant({ app: "ssh", ip: IP }, undefined);
    await service.handlers.close({ app: "ssh", ip: IP }, undefined);
    expect(recorded()).toHaveLength(1);
  });

  it("exit 1 with nothing matched is not an error; a real failure is logged and the lease ends anyway", async () => {
    writeConntrack(0, 1);
    await service.handlers.grant({ app: "vpn", ip: IP }, undefined);
    await service.handlers.close({ app: "vpn", ip: IP }, undefined);
    expect(events("conntrack.deleted")[0]).toMatchObject({ deleted: 0 });
    expect(events("conntrack.failed")).toEqual([]);

    writeConntrack(0, 1, "conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted");
    // no summary line at all: a failure
    writeFileSync(fakeConntrack, "#!/bin/sh\necho 'conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted' >&2\nexit 1\n");
    await service.handlers.grant({ app: "vpn", ip: IP }, undefined);
    expect(await service.handlers.close({ app: "vpn", ip: IP }, undefined)).toEqual({ closed: 1 });
    expect(events("conntrack.failed")[0]).toMatchObject({ audit: true, app: "vpn", ip: IP, reason: "revoke", error: "exit 1" });
    expect(String(events("conntrack.failed")[0]?.msg)).toContain("the helper needs root or CAP_NET_ADMIN");

    // a missing program: logged, the expiry still recorded
    service.stop();
    const missing = await startService(config(), join(dir, "no-such-conntrack"));
    await missing.handlers.grant({ app: "vpn", ip: IP, durationSeconds: 5 }, undefined);
    await expireAndSweep(missing, 6);
    expect(events("conntrack.failed").at(-1)).toMatchObject({ reason: "expiry" });
    expect(missing.list().leases).toEqual([]);
    missing.stop();
  });

  it("a revoke of a lease that ended but was not swept yet leaves it to the sweep, which cuts it once", async () => {
    await service.handlers.grant({ app: "vpn", ip: IP, durationSeconds: 5 }, undefined);
    clock.t += 6000;
    expect(await service.handlers.close({ app: "vpn", ip: IP }, undefined)).toEqual({ closed: 0 });
    await expireAndSweep(service, 0);
    expect(events("lease.expired")).toEqual([expect.objectContaining({ app: "vpn", ip: IP, step: 2 })]);
    expect(recorded()).toEqual([vpnArgs(IP)]);
    expect(events("conntrack.deleted")[0]).toMatchObject({ reason: "expiry" });
  });

  it("--service-rule-cleanup-on-shutdown cuts every live close_established lease before it returns", async () => {
    await service.handlers.grant({ app: "vpn", ip: IP }, undefined);
    await service.handlers.grant({ app: "vpn", ip: IP6 }, undefined);
    await service.handlers.grant({ app: "ssh", ip: IP }, undefined);
    const log = pino({ level: "silent" });
    expect(await revokeAllLeases(service, log)).toEqual({ revoked: 3, failed: 0 });
    expect(recorded().sort()).toEqual([vpnArgs(IP), vpnArgs(IP6)].sort());
  });

  it("under --use-sudo the deletion runs as sudo -n -- conntrack …", async () => {
    const sudo = join(dir, "sudo");
    writeFileSync(sudo, `#!/bin/sh\nIFS="$(printf '\\t')"\nprintf 'sudo\\t%s\\n' "$*" >> '${calls}'\necho 'conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.' >&2\n`);
    chmodSync(sudo, 0o755);
    const log = pino({ level: "silent" });
    const cutter = new ConntrackCutter(log, "/usr/sbin/conntrack", sudoPrivilege(sudo));
    expect(await cutter.cut(config().apps.find((a) => a.name === "vpn")!, IP, "revoke")).toBe(1);
    expect(recorded()).toEqual([["sudo", "-n", "--", "/usr/sbin/conntrack", ...vpnArgs(IP)]]);
  });
});
