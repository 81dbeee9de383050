// End-to-end: the Debian package under a real systemd. A Debian 12 container (systemd-nspawn --boot,
// container.ts) lives in the test bed's srv namespace; the .deb from `pnpm package` is installed with
// apt, configured and enabled the way docs/operations.md tells an admin, and the knocks come from the
// test bed's client namespaces. Builds dist/knockport_<version>_amd64.deb first when it is missing.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootContainer, missingHostTools, type Container } from "./container.js";
import { REPO_ROOT } from "./harness.js";
import {
  cleanupStaleTopologies,
  createTopology,
  exampleConfig,
  formBody,
  knock,
  knockUrl,
  pollUntil,
  probeTcp,
  renderConfigYaml,
  startEchoServer,
  type AppSpec,
  type ConfigSpec,
  type HostName,
  type Topology,
} from "./testbed.js";

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const DEB = `knockport_${VERSION}_amd64.deb`;
const DIST = join(REPO_ROOT, "dist");
/** Long enough to outlive every restart below, the reboot included. */
const DURATION_S = 120;
const UNITS = ["knockport-helper", "knockport-server"] as const;
/** The goals of deploy/test/systemd-units.test.ts, now for the running units. */
const EXPOSURE_GOALS = { "knockport-helper": 2.5, "knockport-server": 2.0 } as const;

/** What the .deb is built from: a package older than any of it is built again. */
const PACKAGE_INPUTS = ["apps", "packages", "deploy/systemd", "deploy/debian", "deploy/sysusers.d", "deploy/tmpfiles.d", "config", "docs", "bin", "scripts/package-deb.sh", "pnpm-lock.yaml"];

function newestInput(): number {
  let newest = 0;
  for (const input of PACKAGE_INPUTS) {
    const path = join(REPO_ROOT, input);
    const files = statSync(path).isDirectory()
      ? readdirSync(path, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile() && !e.parentPath.includes("node_modules") && !e.parentPath.includes("/test"))
          .map((e) => join(e.parentPath, e.name))
      : [path];
    for (const f of files) newest = Math.max(newest, statSync(f).mtimeMs);
  }
  return newest;
}

const skip = missingHostTools();
if (skip) console.warn(`skipping the systemd package test: ${skip}`);

describe.skipIf(skip !== undefined)("the Debian package under systemd (nspawn)", { timeout: 120_000 }, () => {
  let topo: Topology;
  let box: Container;
  let config: ConfigSpec;
  let ssh: AppSpec;
  const exposure: Record<string, number> = {};

  const svc = (host: HostName): Promise<string> => probeTcp(topo, host, topo.addr.srv.v4, ssh.port, 400);
  const both = async (): Promise<{ cli: string; cli2: string }> => ({ cli: await svc("cli"), cli2: await svc("cli2") });
  const fullKnock = async (host: HostName): Promise<number | undefined> => {
    const srv = topo.addr.srv.v4;
    await knock(topo, host, { step: 1, url: knockUrl("http", srv, config.httpPort, config.httpPostPath), body: formBody({ app: ssh.name, access_key: ssh.accessKeysHttp[0]! }) });
    const s2 = await knock(topo, host, { step: 2, url: knockUrl("https", srv, config.httpsPort, config.httpsPostPath), body: formBody({ app: ssh.name, access_key: ssh.accessKeysHttps[0]! }) });
    return s2.status;
  };
  const leases = (): Array<{ app: string; ip: string; step: number }> =>
    (JSON.parse(box.must(["knockport", "status", "--json"])) as { leases: Array<{ app: string; ip: string; step: number }> }).leases;
  const tableExists = (): boolean => box.exec(["nft", "list", "table", "inet", "knockport"]).status === 0;
  const active = (unit: string): string => box.exec(["systemctl", "is-active", unit]).stdout.trim();
  const waitFor = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> => {
    const ok = await pollUntil(async () => ((await check()) ? true : undefined), timeoutMs, 250);
    if (ok !== true) throw new Error(`${what}: not within ${timeoutMs} ms\n${box.exec(["journalctl", "--no-pager", "-n", "40", "-u", "knockport-*"]).stdout}`);
  };

  beforeAll(async () => {
    if (!existsSync(join(DIST, DEB)) || statSync(join(DIST, DEB)).mtimeMs < newestInput()) {
      const r = spawnSync("bash", [join(REPO_ROOT, "scripts/package-deb.sh")], { cwd: REPO_ROOT, encoding: "utf8", timeout: 600_000 });
      if (r.status !== 0) throw new Error(`scripts/package-deb.sh failed: ${r.stderr}`);
    }
    cleanupStaleTopologies();
    topo = await createTopology();
    config = exampleConfig({ interfaceExt: topo.extInterface, duration: DURATION_S, step2HttpsDuration: 10, keyPairs: 1, httpPort: 80, httpsPort: 443 });
    ssh = config.apps[0]!;
    await startEchoServer(topo, "srv", { tcp: [ssh.port] });
    box = await bootContainer({ netns: topo.names.srv, bindDir: DIST });
  }, 900_000);

  afterAll(async () => {
    await box?.destroy();
    await topo?.destroy();
  });

  it("apt install ./knockport_*.deb: users and group made, nothing enabled or started, no firewall change", () => {
    box.must(["apt-get", "install", "-y", `/mnt/host/${DEB}`], { timeoutMs: 120_000 });
    for (const user of ["knockport", "knockport-helper"]) expect(box.exec(["id", "-gn", user]).stdout.trim()).toBe("knockport");
    for (const unit of UNITS) {
      expect(box.exec(["systemctl", "is-enabled", unit]).stdout.trim()).toBe("disabled");
      expect(active(unit)).toBe("inactive");
    }
    expect(tableExists(), "no table before the admin enables the units").toBe(false);
    expect(box.must(["stat", "-c", "%U:%G %a", "/etc/knockport/config.yaml"]).trim()).toBe("root:knockport 640");
    expect(box.must(["stat", "-c", "%U:%G %a", "/etc/knockport/tls/knockport.key"]).trim()).toBe("root:knockport 640");
    expect(box.must(["/usr/lib/knockport/bin/node", "--version"]).trim()).toMatch(/^v20\./);
    expect(box.exec(["test", "-e", "/usr/lib/knockport/packages/testbed"]).status, "no test bed in the package").not.toBe(0);
  });

  it("refuses to start with the shipped config until it is edited", async () => {
    const check = box.exec(["knockport", "check-config", "-c", "/etc/knockport/config.yaml"]);
    expect(check.status).toBe(2);
    expect(check.stderr).toMatch(/published sample path/);
    box.exec(["systemctl", "start", "knockport-helper"]);
    await waitFor("the helper gives up on the shipped config", () => active("knockport-helper") !== "active" && active("knockport-helper") !== "activating", 45_000);
    expect(tableExists()).toBe(false);
    box.exec(["systemctl", "stop", "knockport-helper"]);
    box.exec(["systemctl", "reset-failed", "knockport-helper"]);
  });

  it("enabled after editing the config: a knock opens the service for the knocker only", async () => {
    box.must(["tee", "/etc/knockport/config.yaml"], { input: renderConfigYaml(config) });
    box.must(["knockport", "check-config", "-c", "/etc/knockport/config.yaml"]);
    box.must(["systemctl", "enable", "--now", "nftables", ...UNITS], { timeoutMs: 60_000 });
    await waitFor("the server listens on 443", () => box.exec(["ss", "-Htln", "sport = :443"]).stdout.includes(":443"));
    expect(await both(), "closed before the knock").toEqual({ cli: "closed", cli2: "closed" });
    expect(await fullKnock("cli")).toBe(200);
    expect(await both()).toEqual({ cli: "open", cli2: "closed" });
    expect(leases().some((l) => l.app === ssh.name && l.ip === topo.addr.cli.v4)).toBe(true);
  });

  it("systemctl restart nftables with a live lease: table and lease come back", async () => {
    box.must(["systemctl", "restart", "nftables"]);
    await waitFor("table and lease back", async () => tableExists() && (await svc("cli")) === "open");
    expect(await both()).toEqual({ cli: "open", cli2: "closed" });
  });

  it("systemctl stop knockport-server: the ports stay closed, the lease stays open", async () => {
    box.must(["systemctl", "stop", "knockport-server"]);
    expect(active("knockport-server")).toBe("inactive");
    expect(await fullKnock("cli2")).toBeUndefined();
    expect(await both()).toEqual({ cli: "open", cli2: "closed" });
    box.must(["systemctl", "start", "knockport-server"]);
  });

  it("systemctl restart knockport-helper keeps the lease", async () => {
    box.must(["systemctl", "restart", "knockport-helper"], { timeoutMs: 60_000 });
    await waitFor("the helper answers again", () => box.exec(["knockport", "status", "--json"]).status === 0);
    expect(leases().some((l) => l.app === ssh.name && l.ip === topo.addr.cli.v4)).toBe(true);
    expect(await both()).toEqual({ cli: "open", cli2: "closed" });
    expect(active("knockport-server"), "the server reconnects").toBe("active");
  });

  it("systemd-analyze security of the running units", () => {
    for (const unit of UNITS) {
      const out = box.exec(["systemd-analyze", "security", "--no-pager", `${unit}.service`]).stdout;
      const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(out);
      expect(m, out.slice(-400)).not.toBeNull();
      exposure[unit] = Number(m![1]);
      expect(exposure[unit]).toBeLessThanOrEqual(EXPOSURE_GOALS[unit]);
    }
    console.log(`systemd-analyze security (running units): ${JSON.stringify(exposure)}`);
  });

  it("the journal has the audit lines and no secret", () => {
    const journal = box.must(["journalctl", "--no-pager", "-o", "cat", "-u", "knockport-helper", "-u", "knockport-server"]);
    expect(journal).toMatch(/"event":"lease.opened"/);
    expect(journal).toMatch(/"event":"firewall.reinstalled"/);
    for (const secret of [ssh.accessKeysHttp[0]!, ssh.accessKeysHttps[0]!, config.httpPostPath, config.httpsPostPath]) expect(journal).not.toContain(secret);
  });

  it("a reboot starts the units after nftables.service and restores the lease", async () => {
    await box.reboot();
    await waitFor("the helper answers after the reboot", () => box.exec(["knockport", "status", "--json"]).status === 0, 30_000);
    for (const unit of UNITS) expect(active(unit)).toBe("active");
    const after = (unit: string): number => Number(box.must(["systemctl", "show", "-P", "ActiveEnterTimestampMonotonic", unit]).trim());
    expect(after("knockport-helper.service")).toBeGreaterThanOrEqual(after("nftables.service"));
    expect(after("knockport-server.service")).toBeGreaterThanOrEqual(after("knockport-helper.service"));
    expect(leases().some((l) => l.app === ssh.name && l.ip === topo.addr.cli.v4)).toBe(true);
    expect(await both()).toEqual({ cli: "open", cli2: "closed" });
  }, 180_000);

  it("apt remove stops the units and keeps the protection; apt purge removes table, files and users", async () => {
    box.must(["apt-get", "remove", "-y", "knockport"], { timeoutMs: 60_000 });
    for (const unit of UNITS) expect(active(unit)).not.toBe("active");
    expect(tableExists(), "the table stays after remove (fail closed)").toBe(true);
    expect(await svc("cli2")).toBe("closed");
    box.must(["apt-get", "purge", "-y", "knockport"], { timeoutMs: 60_000 });
    expect(tableExists()).toBe(false);
    for (const path of ["/etc/knockport", "/var/lib/knockport", "/var/lib/knockport-server", "/usr/lib/knockport"]) expect(box.exec(["test", "-e", path]).status, path).not.toBe(0);
    for (const user of ["knockport", "knockport-helper"]) expect(box.exec(["getent", "passwd", user]).status, user).not.toBe(0);
    expect(box.exec(["getent", "group", "knockport"]).status).not.toBe(0);
  });
});
