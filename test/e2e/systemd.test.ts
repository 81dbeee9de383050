// End-to-end: the Debian package under a real systemd. A Debian 12 container (systemd-nspawn --boot,
// container.ts) lives in the test bed's srv namespace; the package is built, installed, configured and
// enabled by the very lines of the README's gateway quick start (its first sh block under "Install on a
// gateway"), and the knocks come from the test bed's client namespaces. The build line runs on the
// host, only when dist/knockport_<version>_amd64.deb is older than its inputs.
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
/** The container sees dist/ at /mnt/host/dist, so the README's `./dist/...` runs from /mnt/host. */
const CONTAINER_CHECKOUT = "/mnt/host";
/** Long enough to outlive every restart below. */
const DURATION_S = 120;
const UNITS = ["knockport-helper", "knockport-server"] as const;
/** `systemd-analyze security` exposure goal of each running unit. */
const EXPOSURE_GOAL = 1.5;
/** The short-lived app whose lease the test watches expire. */
const SHORT_APP_DURATION_S = 6;

/** What the .deb is built from: a package older than any of it is built again. */
const PACKAGE_INPUTS = ["apps", "packages", "deploy/systemd", "deploy/debian", "deploy/sysusers.d", "deploy/tmpfiles.d", "config", "docs", "bin", "scripts/package-deb.sh", "scripts/node-env.sh", "pnpm-lock.yaml"];

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

/** The README's gateway quick start, by role; each line must be what the test runs for that role. */
const GATEWAY_ROLES = [
  ["build", /^pnpm package(\s|$)/],
  ["install", /^apt install \.\/dist\/knockport_\S*\.deb(\s|$)/],
  ["edit", /^\$EDITOR \/etc\/knockport\/config\.yaml(\s|$)/],
  ["check", /^knockport check-config -c \/etc\/knockport\/config\.yaml(\s|$)/],
  ["enable", /^systemctl enable --now nftables knockport-helper knockport-server(\s|$)/],
] as const;
type GatewayRole = (typeof GATEWAY_ROLES)[number][0];

/** The first sh block under "## Install on a gateway", every line checked against its role. */
function gatewayQuickStart(readme: string): Record<GatewayRole, string> {
  const section = readme.split(/^## Install on a gateway$/m)[1]?.split(/^## /m)[0];
  const block = section === undefined ? undefined : /^```sh\n([\s\S]*?)^```$/m.exec(section)?.[1];
  if (block === undefined) throw new Error('README.md: no sh block under "## Install on a gateway"');
  const lines = block.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== GATEWAY_ROLES.length) throw new Error(`README.md gateway quick start: ${lines.length} lines, the test runs ${GATEWAY_ROLES.length}:\n${block}`);
  const out = {} as Record<GatewayRole, string>;
  GATEWAY_ROLES.forEach(([role, pattern], i) => {
    if (!pattern.test(lines[i]!)) throw new Error(`README.md gateway quick start, line ${i + 1} ("${lines[i]}"): not the ${role} command ${String(pattern)}`);
    out[role] = lines[i]!;
  });
  return out;
}

const README = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
const skip = missingHostTools();
if (skip) console.warn(`skipping the systemd package test: ${skip}`);

describe.skipIf(skip !== undefined)("the Debian package under systemd (nspawn)", { timeout: 120_000 }, () => {
  let topo: Topology;
  let box: Container;
  let config: ConfigSpec;
  let ssh: AppSpec;
  let short: AppSpec;
  const readme = gatewayQuickStart(README);
  /** One README line, run by sh in the container from where it sees dist/. */
  const runLine = (line: string, env = ""): string => box.must(["sh", "-c", `cd ${CONTAINER_CHECKOUT} && ${env}${line}`], { timeoutMs: 120_000 });
  const exposure: Record<string, number> = {};

  const svc = (host: HostName, app = ssh): Promise<string> => probeTcp(topo, host, topo.addr.srv.v4, app.port, 400);
  const both = async (app = ssh): Promise<{ cli: string; cli2: string }> => ({ cli: await svc("cli", app), cli2: await svc("cli2", app) });
  const fullKnock = async (host: HostName, app = ssh): Promise<number | undefined> => {
    const srv = topo.addr.srv.v4;
    await knock(topo, host, { step: 1, url: knockUrl("http", srv, config.httpPort, config.httpPostPath), body: formBody({ app: app.name, access_key: app.accessKeysHttp[0]! }) });
    const s2 = await knock(topo, host, { step: 2, url: knockUrl("https", srv, config.httpsPort, config.httpsPostPath), body: formBody({ app: app.name, access_key: app.accessKeysHttps[0]! }) });
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
      const r = spawnSync("bash", ["-c", readme.build], { cwd: REPO_ROOT, encoding: "utf8", timeout: 600_000 });
      if (r.status !== 0) throw new Error(`${readme.build}: failed: ${r.stderr}`);
    }
    cleanupStaleTopologies();
    topo = await createTopology();
    const example = exampleConfig({ interfaceExt: topo.extInterface, duration: DURATION_S, step2HttpsDuration: 10, keyPairs: 1, httpPort: 80, httpsPort: 443 });
    ssh = example.apps[0]!;
    short = { ...example.apps[1]!, name: "web", port: 2223, protocol: "tcp", duration: SHORT_APP_DURATION_S };
    config = { ...example, apps: [ssh, short] };
    await startEchoServer(topo, "srv", { tcp: [ssh.port, short.port] });
    box = await bootContainer({ network: { netns: topo.names.srv }, binds: [{ host: DIST, container: `${CONTAINER_CHECKOUT}/dist` }] });
  }, 900_000);

  afterAll(async () => {
    await box?.destroy();
    await topo?.destroy();
  });

  it("README's apt install: users and groups made, nothing enabled or started, no firewall change", () => {
    expect(box.exec(["getent", "passwd", "knockport"]).status, "a fresh container").not.toBe(0);
    runLine(readme.install);
    for (const user of ["knockport", "knockport-helper"]) expect(box.exec(["id", "-gn", user]).stdout.trim()).toBe("knockport");
    expect(box.exec(["id", "-gn", "knockport-hooks"]).stdout.trim()).toBe("knockport-hooks");
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

  it("README's edit, check and enable lines: a knock opens the service for the knocker only", async () => {
    box.must(["tee", "/root/edited-config.yaml"], { input: renderConfigYaml(config) });
    runLine(readme.edit, "EDITOR='cp /root/edited-config.yaml' && ");
    expect(box.must(["stat", "-c", "%U:%G %a", "/etc/knockport/config.yaml"]).trim(), "the edit keeps the conffile's mode").toBe("root:knockport 640");
    runLine(readme.check);
    runLine(readme.enable);
    await waitFor("the server listens on 443", () => box.exec(["ss", "-Htln", "sport = :443"]).stdout.includes(":443"));
    expect(await both(), "closed before the knock").toEqual({ cli: "closed", cli2: "closed" });
    expect(await fullKnock("cli")).toBe(200);
    expect(await both()).toEqual({ cli: "open", cli2: "closed" });
    expect(leases().some((l) => l.app === ssh.name && l.ip === topo.addr.cli.v4)).toBe(true);
  });

  it(`a knock on an app with duration ${SHORT_APP_DURATION_S} s opens it for the knocker only, and expiry closes it`, async () => {
    expect(await both(short), "closed before the knock").toEqual({ cli: "closed", cli2: "closed" });
    const knockedAt = Date.now();
    expect(await fullKnock("cli", short)).toBe(200);
    expect(await both(short)).toEqual({ cli: "open", cli2: "closed" });
    const lease = leases().find((l) => l.app === short.name && l.ip === topo.addr.cli.v4 && l.step === 2);
    expect(lease, "the helper holds the lease").toBeDefined();
    await waitFor("the short lease closes", async () => (await svc("cli", short)) === "closed", (SHORT_APP_DURATION_S + 15) * 1000);
    const closedAfterS = (Date.now() - knockedAt) / 1000;
    expect(closedAfterS, "not before its duration").toBeGreaterThanOrEqual(SHORT_APP_DURATION_S - 1);
    await waitFor("the helper drops the expired lease", () => !leases().some((l) => l.app === short.name && l.step === 2), 10_000);
    expect(await both(short)).toEqual({ cli: "closed", cli2: "closed" });
    expect(await both(), "the long lease is untouched").toEqual({ cli: "open", cli2: "closed" });
    console.log(`short lease (${SHORT_APP_DURATION_S} s) closed ${closedAfterS.toFixed(1)} s after the knock`);
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

  it(`systemd-analyze security of the running units: at most ${EXPOSURE_GOAL} each, and the README's figures`, () => {
    for (const unit of UNITS) {
      expect(active(unit)).toBe("active");
      const out = box.exec(["systemd-analyze", "security", "--no-pager", `${unit}.service`]).stdout;
      const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(out);
      expect(m, out.slice(-400)).not.toBeNull();
      exposure[unit] = Number(m![1]);
    }
    console.log(`systemd-analyze security (running units): ${JSON.stringify(exposure)}`);
    for (const unit of UNITS) {
      expect(exposure[unit], unit).toBeLessThanOrEqual(EXPOSURE_GOAL);
      expect(README, `README.md states ${unit}'s score`).toContain(`${unit} ${exposure[unit]!.toFixed(1)}`);
    }
  });

  it("the journal has the audit lines and no secret", () => {
    const journal = box.must(["journalctl", "--no-pager", "-o", "cat", "-u", "knockport-helper", "-u", "knockport-server"]);
    const audit = journal
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.audit === true);
    const seen = (event: string, app: AppSpec, ip = topo.addr.cli.v4): boolean => audit.some((e) => e.event === event && e.app === app.name && e.ip === ip);
    expect(seen("lease.opened", ssh), "lease.opened of the knock").toBe(true);
    expect(seen("lease.opened", short) && seen("lease.expired", short), "the short lease opened and expired").toBe(true);
    expect(audit.some((e) => e.ip === topo.addr.cli2.v4), "nothing for the bystander").toBe(false);
    expect(journal).toMatch(/"event":"firewall.reinstalled"/);
    const secrets = [...[ssh, short].flatMap((a) => [...a.accessKeysHttp, ...a.accessKeysHttps]), config.httpPostPath, config.httpsPostPath];
    for (const secret of secrets) expect(journal).not.toContain(secret);
  });

  // The kernel's sets are the lease book: a reboot empties them, so the lease is gone and a knock opens again.
  it("a reboot starts the units after nftables.service; the lease ended with the kernel's sets, a knock opens again", async () => {
    await box.reboot();
    await waitFor("the helper answers after the reboot", () => box.exec(["knockport", "status", "--json"]).status === 0, 30_000);
    for (const unit of UNITS) expect(active(unit)).toBe("active");
    const after = (unit: string): number => Number(box.must(["systemctl", "show", "-P", "ActiveEnterTimestampMonotonic", unit]).trim());
    expect(after("knockport-helper.service")).toBeGreaterThanOrEqual(after("nftables.service"));
    expect(after("knockport-server.service")).toBeGreaterThanOrEqual(after("knockport-helper.service"));
    expect(leases().some((l) => l.app === ssh.name && l.ip === topo.addr.cli.v4)).toBe(false);
    expect(await both()).toEqual({ cli: "closed", cli2: "closed" });
    expect(await fullKnock("cli")).toBe(200);
    expect(await both()).toEqual({ cli: "open", cli2: "closed" });
  }, 180_000);

  it("apt remove stops the units and keeps the protection; apt purge removes table, files and users", async () => {
    box.must(["apt-get", "remove", "-y", "knockport"], { timeoutMs: 60_000 });
    for (const unit of UNITS) expect(active(unit)).not.toBe("active");
    expect(tableExists(), "the table stays after remove (fail closed)").toBe(true);
    expect(await svc("cli2")).toBe("closed");
    box.must(["apt-get", "purge", "-y", "knockport"], { timeoutMs: 60_000 });
    expect(tableExists()).toBe(false);
    // every file system of the container (/ and the tmpfs ones), the bound dist/ left out
    const left = box.exec(["find", "/", "/run", "/tmp", "/var/tmp", "/dev/shm", "-xdev", "-path", CONTAINER_CHECKOUT, "-prune", "-o", "-name", "*knockport*", "-print"]);
    expect(left.stdout.trim(), "files named knockport after the purge").toBe("");
    expect(left.status).toBe(0);
    const accounts = `${box.must(["getent", "passwd"])}${box.must(["getent", "group"])}`;
    expect(accounts.split("\n").filter((l) => l.includes("knockport")), "users and groups after the purge").toEqual([]);
  });
});
