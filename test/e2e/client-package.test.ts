// End-to-end: the client package. dist/knockport-client-<version>.tgz (scripts/package-client.sh,
// built here when missing or older than its sources) is installed with `npm i -g --prefix` into an
// empty prefix, offline, and its knockport-knock knocks the real helper and server in srv from cli.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { REPO_ROOT } from "./harness.js";

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const TGZ = join(REPO_ROOT, "dist", `knockport-client-${VERSION}.tgz`);
const SOURCES = ["apps/cli/src", "packages/config/src", "scripts/package-client.sh"];
/** A PATH with node and nothing of the workspace. */
const PATH = `${join(process.execPath, "..")}:/usr/sbin:/usr/bin:/sbin:/bin`;

function newestSource(): number {
  let newest = 0;
  for (const s of SOURCES) {
    const path = join(REPO_ROOT, s);
    const files = statSync(path).isDirectory() ? readdirSync(path, { recursive: true }).map((f) => join(path, String(f))) : [path];
    for (const f of files) newest = Math.max(newest, statSync(f).mtimeMs);
  }
  return newest;
}

describeKnockport("the client package: npm i -g knockport-client-*.tgz, then knockport-knock", "nftables", { duration: 30, step2HttpsDuration: 10, rateLimitPerMinute: 1000 }, (h) => {
  let prefix: string;
  let bin: string;

  beforeAll(async () => {
    if (!existsSync(TGZ) || statSync(TGZ).mtimeMs < newestSource()) {
      const r = spawnSync("bash", [join(REPO_ROOT, "scripts/package-client.sh")], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
      if (r.status !== 0) throw new Error(`scripts/package-client.sh failed: ${r.stderr}`);
    }
    prefix = mkdtempSync(join(tmpdir(), "knockport-client-"));
    const npm = spawnSync("npm", ["i", "-g", "--offline", "--no-audit", "--no-fund", "--prefix", prefix, TGZ], {
      encoding: "utf8",
      timeout: 60_000,
      env: { PATH, HOME: prefix, npm_config_cache: join(prefix, ".npm") },
    });
    if (npm.status !== 0) throw new Error(`npm i -g failed: ${npm.stderr}`);
    bin = join(prefix, "bin", "knockport-knock");
  }, 120_000);

  afterAll(() => {
    if (prefix) rmSync(prefix, { recursive: true, force: true });
  });

  it("installs one package with one executable and no dependencies", () => {
    expect(readdirSync(join(prefix, "lib", "node_modules"))).toEqual(["knockport-client"]);
    expect(readdirSync(join(prefix, "bin"))).toEqual(["knockport-knock"]);
    expect(existsSync(join(prefix, "lib", "node_modules", "knockport-client", "node_modules"))).toBe(false);
  });

  it("knockport-knock --help works from the empty prefix", () => {
    const r = spawnSync(bin, ["--help"], { encoding: "utf8", cwd: prefix, env: { PATH }, timeout: 10_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: knockport-knock --host HOST/);
    const bad = spawnSync(bin, ["--bogus"], { encoding: "utf8", cwd: prefix, env: { PATH }, timeout: 10_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^knockport-knock: /);
  });

  it("knocks the test server from cli: the service opens for cli only", async () => {
    const ssh = h.ssh;
    expect({ cli: await h.svc("cli", ssh), cli2: await h.svc("cli2", ssh) }).toEqual({ cli: "closed", cli2: "closed" });
    // env -i: the test runner's NODE_PATH reaches into the workspace's node_modules and would hide a
    // bundle that still needs a workspace package
    const env = [
      `PATH=${PATH}`,
      `KNOCKPORT_HTTP_KEY=${ssh.accessKeysHttp[0] ?? ""}`,
      `KNOCKPORT_HTTPS_KEY=${ssh.accessKeysHttps[0] ?? ""}`,
      `KNOCKPORT_HTTP_PATH=${h.cfg.httpPostPath}`,
      `KNOCKPORT_HTTPS_PATH=${h.cfg.httpsPostPath}`,
    ];
    const r = await h.topo.exec(
      "cli",
      "/usr/bin/env",
      ["-i", ...env, bin, "--host", h.srvIp(4), "--app", ssh.name, "--insecure", "--http-port", String(h.cfg.httpPort), "--https-port", String(h.cfg.httpsPort), "--check-port", String(ssh.port)],
      { cwd: prefix, timeoutMs: 20_000 },
    );
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`check: tcp/${ssh.port} on ${h.srvIp(4)} is open`);
    expect({ cli: await h.svc("cli", ssh), cli2: await h.svc("cli2", ssh) }).toEqual({ cli: "open", cli2: "closed" });
  });
});
