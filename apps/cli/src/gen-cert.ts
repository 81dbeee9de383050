import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { UsageError } from "@knockport/config";

export interface GenCertOptions {
  outDir: string;
  name: string;
  commonName: string;
  days: number;
}

export interface GeneratedCert {
  certFile: string;
  keyFile: string;
}

/**
 * Self-signed certificate for tests and first runs (the original's GENERATE_CERTIFICATE_ONLY).
 * openssl runs with an argument array, no shell. The key file is created 0600.
 */
export function generateSelfSignedCert(opts: GenCertOptions): GeneratedCert {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.name)) throw new UsageError(`--name: use 1-64 characters A-Z a-z 0-9 . _ -`);
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(opts.commonName)) throw new UsageError(`--cn: must be a host name such as knockport.example.com`);
  const dir = resolve(opts.outDir);
  mkdirSync(dir, { recursive: true });
  const certFile = join(dir, `${opts.name}.pem`);
  const keyFile = join(dir, `${opts.name}.key`);
  const r = spawnSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256",
      "-days", String(opts.days), "-subj", `/CN=${opts.commonName}`,
      "-addext", `subjectAltName=DNS:${opts.commonName},DNS:localhost,IP:127.0.0.1,IP:::1`,
      "-keyout", keyFile, "-out", certFile,
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new UsageError(code === "ENOENT" ? "openssl not found; install it: apt-get install openssl" : `openssl failed: ${r.error.message}`);
  }
  if (r.status !== 0) throw new UsageError(`openssl failed (exit ${r.status}): ${r.stderr.trim().slice(0, 500)}`);
  return { certFile, keyFile };
}
