import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parsePasswd } from "@knockport/config";

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/knockport");

function genCert(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, "gen-cert", ...args], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The certificate's subject and subject alternative names, as openssl prints them. */
function describeCert(file: string): string {
  return execFileSync("openssl", ["x509", "-in", file, "-noout", "-subject", "-ext", "subjectAltName"], { encoding: "utf8" });
}

describe("knockport gen-cert", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-gen-cert-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("by default writes knockport.pem / knockport.key (the README's --ca knockport.pem) for this host's name", () => {
    const r = genCert(["--out-dir", dir]);
    expect(r.status, r.stderr).toBe(0);
    const text = describeCert(join(dir, "knockport.pem"));
    expect(text).toContain(`CN = ${hostname()}`);
    expect(text).toContain(`DNS:${hostname()}`);
    expect(statSync(join(dir, "knockport.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "knockport.pem")).mode & 0o777).toBe(0o644);
  });

  it("--cn and --ip name the host and the addresses clients connect to; an address is refused as --cn", () => {
    const r = genCert(["--out-dir", dir, "--cn", "vpn.example.com", "--ip", "198.51.100.1", "--ip", "2001:db8::1"]);
    expect(r.status, r.stderr).toBe(0);
    const text = describeCert(join(dir, "knockport.pem"));
    expect(text).toContain("CN = vpn.example.com");
    expect(text).toMatch(/DNS:vpn\.example\.com.*IP Address:198\.51\.100\.1.*IP Address:2001:DB8:0:0:0:0:0:1/s);
    const bad = genCert(["--out-dir", dir, "--name", "other", "--cn", "198.51.100.1"]);
    expect({ status: bad.status, stderr: bad.stderr }).toEqual({ status: 2, stderr: expect.stringMatching(/--cn: must be a host name .*use --ip/) });
    expect(genCert(["--out-dir", dir, "--name", "other", "--ip", "not-an-ip"]).stderr).toMatch(/--ip: must be an IPv4 or IPv6 address/);
  });

  it("refuses to overwrite an existing key or certificate unless --force, and then replaces both", () => {
    expect(genCert(["--out-dir", dir]).status).toBe(0);
    const key = readFileSync(join(dir, "knockport.key"), "utf8");
    const cert = readFileSync(join(dir, "knockport.pem"), "utf8");
    const again = genCert(["--out-dir", dir]);
    expect(again.status, again.stdout).toBe(2);
    expect(again.stderr).toMatch(/knockport\.pem and .*knockport\.key: already there; pass --force/);
    expect(readFileSync(join(dir, "knockport.key"), "utf8")).toBe(key);
    expect(readFileSync(join(dir, "knockport.pem"), "utf8")).toBe(cert);

    const forced = genCert(["--out-dir", dir, "--force"]);
    expect(forced.status, forced.stderr).toBe(0);
    expect(readFileSync(join(dir, "knockport.key"), "utf8")).not.toBe(key);
    expect(readFileSync(join(dir, "knockport.pem"), "utf8")).not.toBe(cert);
  });

  // A system account of every Debian install whose group is its own (not nogroup).
  const daemon = parsePasswd(readFileSync("/etc/passwd", "utf8")).find((u) => u.name === "daemon");
  it.runIf(process.geteuid?.() === 0 && daemon !== undefined)("--owner USER: the key is root:USER's group 0640, so the server's user can read it", () => {
    chmodSync(dir, 0o755); // mkdtemp's 0700 would hide the files from daemon whatever their modes
    const r = genCert(["--out-dir", dir, "--owner", "daemon"]);
    expect(r.status, r.stderr).toBe(0);
    const st = statSync(join(dir, "knockport.key"));
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }).toEqual({ uid: 0, gid: daemon?.gid, mode: 0o640 });
    const read = spawnSync("setpriv", [`--reuid=${daemon?.uid}`, `--regid=${daemon?.gid}`, "--clear-groups", "cat", join(dir, "knockport.key")], { encoding: "utf8" });
    expect(read.status, `the key read as daemon: ${read.stderr}`).toBe(0);
    expect(read.stdout).toContain("PRIVATE KEY");
  });

  it.runIf(process.geteuid?.() === 0)("--owner refuses a missing user (naming useradd) and nobody (group nogroup is shared)", () => {
    expect(genCert(["--out-dir", dir, "--owner", "no-such-user-kp"]).stderr).toMatch(/no such user; create the server's user first: useradd --system/);
    expect(genCert(["--out-dir", dir, "--owner", "nobody"]).stderr).toMatch(/group nogroup .* shared/);
  });
});
