import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { UsageError, parsePasswd, withUsageErrors } from "@knockport/config";
import { sharedSocketGroup } from "./socket-group.js";

const HOST_NAME = /^[A-Za-z0-9.-]{1,253}$/;

export const GEN_CERT_USAGE = `Usage: knockport gen-cert [--out-dir DIR] [--name NAME] [--cn HOST] [--ip ADDR]... [--owner USER] [--days N] [--force]

Writes a self-signed certificate DIR/NAME.pem (mode 0644) and its key DIR/NAME.key (mode 0600).

      --out-dir DIR   folder for both files (default: the current one; created if missing)
      --name NAME     file names without extension (default knockport: knockport.pem, knockport.key)
      --cn HOST       the name clients connect to (knockport knock --host HOST --ca NAME.pem);
                      default this host's name (${defaultCommonName()})
      --ip ADDR       an address clients connect to (--host ADDR), as an IP subject alternative
                      name; repeat for more (127.0.0.1 and ::1 are always in)
      --owner USER    the key becomes readable by USER's group (owner root, mode 0640), as the
                      server's user needs (knockport run --user, default knockport)
      --days N        validity, 1-3650 (default 825)
      --force         replace existing files (clients that trust the old certificate stop working)
`;

export interface GenCertOptions {
  outDir: string;
  name: string;
  commonName: string;
  /** Extra IP subject alternative names. */
  ips?: readonly string[];
  days: number;
  /** Make the key readable by this account's primary group (root:group 0640). */
  owner?: { uid: number; gid: number; name: string };
  force?: boolean;
}

export interface GeneratedCert {
  certFile: string;
  keyFile: string;
}


/** This host's name when it can name a certificate, else "knockport" (as deploy/install.sh picks it). */
export function defaultCommonName(): string {
  const name = hostname();
  return HOST_NAME.test(name) && isIP(name) === 0 ? name : "knockport";
}

/** The account whose primary group may read the key; refuses a group that unrelated daemons share. */
export function keyOwner(user: string, passwd = readFileSync("/etc/passwd", "utf8"), group = readFileSync("/etc/group", "utf8")): { uid: number; gid: number; name: string } {
  const entry = parsePasswd(passwd).find((u) => u.name === user);
  if (entry === undefined) {
    throw new UsageError(`--owner ${user}: no such user; create the server's user first: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${user}`);
  }
  if (entry.uid === 0) throw new UsageError(`--owner ${user}: is root, who reads the key anyway; name the server's unprivileged user`);
  const shared = sharedSocketGroup(entry, passwd, group);
  if (shared !== undefined) throw new UsageError(`--owner ${user}: the key would be readable by its group, and ${shared}`);
  return entry;
}

/**
 * Self-signed certificate for tests and first runs (the original's GENERATE_CERTIFICATE_ONLY).
 * openssl runs with an argument array, no shell, writing temporary files that are renamed into place
 * once their modes are set: an existing pair is replaced whole (with `force`) or not at all.
 */
export function generateSelfSignedCert(opts: GenCertOptions): GeneratedCert {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.name)) throw new UsageError(`--name: use 1-64 characters A-Z a-z 0-9 . _ -`);
  if (!HOST_NAME.test(opts.commonName) || isIP(opts.commonName) !== 0) {
    throw new UsageError(`--cn: must be a host name such as knockport.example.com (got ${JSON.stringify(opts.commonName)}; for an address use --ip)`);
  }
  const ips = opts.ips ?? [];
  for (const ip of ips) if (isIP(ip) === 0) throw new UsageError(`--ip: must be an IPv4 or IPv6 address (got ${JSON.stringify(ip)})`);
  const dir = resolve(opts.outDir);
  const certFile = join(dir, `${opts.name}.pem`);
  const keyFile = join(dir, `${opts.name}.key`);
  const existing = [certFile, keyFile].filter((f) => existsSync(f));
  if (existing.length > 0 && opts.force !== true) {
    throw new UsageError(`${existing.join(" and ")}: already there; pass --force to replace (clients that trust the old certificate stop working), or another --name / --out-dir`);
  }
  mkdirSync(dir, { recursive: true });
  const tmp = `.${opts.name}.${randomBytes(6).toString("hex")}`;
  const tmpCert = join(dir, `${tmp}.pem`);
  const tmpKey = join(dir, `${tmp}.key`);
  const san = [`DNS:${opts.commonName}`, "DNS:localhost", "IP:127.0.0.1", "IP:::1", ...ips.map((ip) => `IP:${ip}`)];
  try {
    const r = spawnSync(
      "openssl",
      [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256",
        "-days", String(opts.days), "-subj", `/CN=${opts.commonName}`,
        "-addext", `subjectAltName=${[...new Set(san)].join(",")}`,
        "-keyout", tmpKey, "-out", tmpCert,
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    if (r.error) {
      const code = (r.error as NodeJS.ErrnoException).code;
      throw new UsageError(code === "ENOENT" ? "openssl not found; install it: apt-get install openssl" : `openssl failed: ${r.error.message}`);
    }
    if (r.status !== 0) throw new UsageError(`openssl failed (exit ${r.status}): ${r.stderr.trim().slice(0, 500)}`);
    chmodSync(tmpCert, 0o644);
    if (opts.owner === undefined) {
      chmodSync(tmpKey, 0o600);
    } else {
      chownSync(tmpKey, 0, opts.owner.gid);
      chmodSync(tmpKey, 0o640);
    }
    renameSync(tmpKey, keyFile);
    renameSync(tmpCert, certFile);
  } finally {
    rmSync(tmpKey, { force: true });
    rmSync(tmpCert, { force: true });
  }
  return { certFile, keyFile };
}

/** `knockport gen-cert ARGS`: prints what it wrote; exit code. */
export function genCertCommand(args: string[], out: (line: string) => void): number {
  const { values: v } = withUsageErrors(() =>
    parseArgs({
      args,
      strict: true,
      options: {
        "out-dir": { type: "string", default: "." },
        name: { type: "string", default: "knockport" },
        cn: { type: "string" },
        ip: { type: "string", multiple: true },
        owner: { type: "string" },
        days: { type: "string", default: "825" },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
    }),
  );
  if (v.help) return out(GEN_CERT_USAGE.trimEnd()), 0;
  const days = Number(v.days);
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError(`--days: must be an integer 1-3650 (got "${v.days}")`);
  if (v.owner !== undefined && process.getuid?.() !== 0) throw new UsageError("--owner: only root can give the key to another user's group");
  const commonName = v.cn ?? defaultCommonName();
  const cert = generateSelfSignedCert({
    outDir: v["out-dir"],
    name: v.name,
    commonName,
    ips: v.ip ?? [],
    days,
    ...(v.owner === undefined ? {} : { owner: keyOwner(v.owner) }),
    force: v.force,
  });
  out(`certificate: ${cert.certFile} (for ${[commonName, ...(v.ip ?? [])].join(", ")}; clients: knockport knock --host ${commonName} --ca ${cert.certFile})`);
  out(`key:         ${cert.keyFile} (${v.owner === undefined ? "mode 0600, its owner only" : `mode 0640, group of ${v.owner}`})`);
  return 0;
}
