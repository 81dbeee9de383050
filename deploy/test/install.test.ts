/**
 * deploy/install.sh, run into a throwaway --prefix root (so it cannot touch this machine: no
 * systemctl, no user creation, nothing outside the directory). Needs a built workspace.
 */
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oneAppConfig } from "../../packages/config/test/fixtures.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SCRIPT = join(ROOT, "deploy/install.sh");
const BUILT = ["apps/helper/dist/main.js", "apps/server/dist/main.js", "apps/cli/dist/main.js"].every((f) => existsSync(join(ROOT, f)));
if (!BUILT) console.warn("skipping install.sh tests: the workspace is not built (pnpm build)");

function install(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const mode = (file: string): string => (statSync(file).mode & 0o777).toString(8);

const VALID_CONFIG = oneAppConfig("k-install-test", { duration: 3600 });

describe.skipIf(!BUILT)("deploy/install.sh --prefix", { timeout: 120_000 }, () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "knockport-install-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const at = (p: string): string => join(root, p);
  const node = (...args: string[]) => spawnSync(process.execPath, args, { encoding: "utf8", timeout: 30_000 });

  it("installs the workspace, units, sysusers/tmpfiles entries, the example config and a test certificate", () => {
    const r = install("--prefix", root, "--cert-cn", "gw.example.test");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/skipped systemctl, user creation and tmpfiles/);
    for (const u of ["knockport-helper.service", "knockport-server.service", "knockport.timer"]) {
      expect(readFileSync(at(`etc/systemd/system/${u}`), "utf8")).toBe(readFileSync(join(ROOT, "deploy/systemd", u), "utf8"));
      expect(mode(at(`etc/systemd/system/${u}`))).toBe("644");
    }
    expect(readFileSync(at("usr/lib/sysusers.d/knockport.conf"), "utf8")).toMatch(/^u knockport /m);
    expect(readFileSync(at("usr/lib/sysusers.d/knockport.conf"), "utf8"), "the helper's own sudo/capability user").toMatch(/^u knockport-helper /m);
    expect(readFileSync(at("usr/lib/tmpfiles.d/knockport.conf"), "utf8")).toMatch(/^d \/etc\/knockport /m);
    expect(readFileSync(at("etc/knockport/config.yaml"), "utf8")).toBe(readFileSync(join(ROOT, "config/config.example.yaml"), "utf8"));
    expect(mode(at("etc/knockport"))).toBe("750");
    expect(mode(at("etc/knockport/2fa")), "2FA secrets: the server's group reads, never writes").toBe("750");
    expect(readFileSync(at("usr/lib/tmpfiles.d/knockport.conf"), "utf8")).toMatch(/^d \/etc\/knockport\/2fa +0750 root knockport -$/m);
    expect(mode(at("etc/knockport/config.yaml"))).toBe("640");
    expect(mode(at("etc/knockport/tls/knockport.key"))).toBe("640");
    const cert = new X509Certificate(readFileSync(at("etc/knockport/tls/knockport.pem")));
    expect(cert.subject).toMatch(/CN=gw\.example\.test/);
    // only what runs: no sources, no tests
    expect(existsSync(at("opt/knockport/apps/helper/dist/main.js"))).toBe(true);
    expect(existsSync(at("opt/knockport/apps/helper/src"))).toBe(false);
    expect(existsSync(at("opt/knockport/deploy/test"))).toBe(false);
    // The units' Documentation= pages are part of the installed copy.
    for (const u of ["knockport-helper.service", "knockport-server.service", "knockport.timer"]) {
      const pages = [...readFileSync(join(ROOT, "deploy/systemd", u), "utf8").matchAll(/^Documentation=file:\/\/\/opt\/knockport\/(\S+)$/gm)].map((m) => m[1]!);
      expect(pages.length, u).toBeGreaterThan(0);
      for (const page of pages) expect(existsSync(at(`opt/knockport/${page}`)), `${u}: ${page}`).toBe(true);
    }
  });

  it("the installed copy runs on its own: check-config and knockport dry-run", () => {
    writeFileSync(at("valid.yaml"), VALID_CONFIG);
    const check = node(at("opt/knockport/bin/knockport"), "check-config", "-c", at("valid.yaml"));
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/app ssh: tcp\/2222/);
    const dry = node(at("opt/knockport/bin/knockport"), "dry-run", "-c", at("valid.yaml"));
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/table inet knockport/);
    // every entry point resolves its dependencies (fastify, pino, execa...) from the copied node_modules
    for (const bin of ["knockport-server", "knockport-helper", "knockport"]) {
      const help = node(at(`opt/knockport/bin/${bin}`), "--help");
      expect(help.status, `${bin}: ${help.stderr}`).toBe(0);
      expect(help.stdout).toMatch(/^Usage: /);
    }
    // the example config is refused until its sample paths are changed
    expect(node(at("opt/knockport/bin/knockport"), "check-config", "-c", at("etc/knockport/config.yaml")).status).toBe(2);
  });

  it("is idempotent: a second run keeps the admin's config and certificate and replaces /opt/knockport whole", () => {
    writeFileSync(at("etc/knockport/config.yaml"), VALID_CONFIG);
    const key = readFileSync(at("etc/knockport/tls/knockport.key"));
    writeFileSync(at("opt/knockport/stale-file"), "from an older version");
    const r = install("--prefix", root);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kept .*config\.yaml/);
    expect(readFileSync(at("etc/knockport/config.yaml"), "utf8")).toBe(VALID_CONFIG);
    expect(readFileSync(at("etc/knockport/tls/knockport.key"))).toEqual(key);
    expect(existsSync(at("opt/knockport/stale-file"))).toBe(false);
    expect(existsSync(at("opt/knockport.new")) || existsSync(at("opt/knockport.old"))).toBe(false);
  });

  it("--node points the units at another node binary", () => {
    const r = install("--prefix", root, "--node", "/usr/local/bin/node");
    expect(r.status, r.stderr).toBe(0);
    const unit = readFileSync(at("etc/systemd/system/knockport-helper.service"), "utf8");
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/node --max-semi-space-size=2 \/opt\/knockport\/bin\/knockport-helper /m);
    expect(unit).not.toContain("/usr/bin/node");
  });

  it("refuses odd input before changing anything", () => {
    for (const args of [
      ["--prefix", `${root}; rm -rf /`],
      ["--prefix", "relative/dir"],
      ["--prefix", `${root}/../x`],
      ["--prefix", root, "--node", "node"],
      ["--prefix", root, "--cert-cn", "a b"],
      ["--prefix", root, "--purge"],
      ["--prefix", root, "--bogus"],
      ["--prefix", join(root, "does-not-exist")],
    ]) {
      const r = install(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^install\.sh: /);
    }
  });

  it("--uninstall removes the program and units but keeps config and certificate; --purge removes those too", () => {
    const r = install("--prefix", root, "--uninstall");
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(at("opt/knockport"))).toBe(false);
    expect(existsSync(at("etc/systemd/system/knockport-server.service"))).toBe(false);
    expect(existsSync(at("usr/lib/sysusers.d/knockport.conf"))).toBe(false);
    expect(readFileSync(at("etc/knockport/config.yaml"), "utf8")).toBe(VALID_CONFIG);
    expect(install("--prefix", root, "--uninstall").status).toBe(0); // again: nothing left to do
    expect(install("--prefix", root, "--uninstall", "--purge").status).toBe(0);
    expect(existsSync(at("etc/knockport"))).toBe(false);
  });
});
