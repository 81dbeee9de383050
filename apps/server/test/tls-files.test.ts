import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oneAppConfig } from "../../../packages/config/test/fixtures.js";

const SERVER = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/knockport-server");
const CONFIG = oneAppConfig("tls-files-test", { interfaceExt: "lo", step2HttpsDuration: 10 });

function pair(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", key, "-out", cert], { stdio: "ignore" });
  return { cert, key };
}

describe("knockport-server: --cert and --key problems name the file, before the helper is asked", () => {
  let dir: string;
  let a: { cert: string; key: string };
  let b: { cert: string; key: string };
  let config: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-tls-files-"));
    a = pair(dir, "a");
    b = pair(dir, "b");
    config = join(dir, "config.yaml");
    writeFileSync(config, CONFIG);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const start = (cert: string, key: string): { status: number | null; stderr: string } => {
    // No helper listens on --socket: a start that got past the TLS files would wait 10 s and fail on it.
    const r = spawnSync(process.execPath, [SERVER, "-c", config, "--cert", cert, "--key", key, "--socket", join(dir, "none.sock"), "--state-dir", join(dir, "state")], {
      encoding: "utf8",
      timeout: 8_000,
    });
    return { status: r.status, stderr: r.stderr };
  };

  it("a swapped pair", () => {
    const r = start(a.key, a.cert);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(`--cert ${a.key} holds a private key and --key ${a.cert} a certificate: swap the two`);
    expect(r.stderr).not.toMatch(/no start line|\n\s+at /);
  });

  it("a certificate given as --key, a key that is not the certificate's, a file that is neither", () => {
    expect(start(a.cert, b.cert).stderr).toContain(`--key ${b.cert}: holds a certificate, not its private key`);
    expect(start(a.cert, b.key).stderr).toContain(`--key ${b.key} is not the key of the certificate in --cert ${a.cert}`);
    expect(start(config, a.key).stderr).toContain(`--cert ${config}: not a PEM certificate`);
    expect(start(a.cert, join(dir, "missing.key")).stderr).toContain(`--key ${join(dir, "missing.key")}: cannot read (ENOENT)`);
  });
});
