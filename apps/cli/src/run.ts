import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, closeSync, constants, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DAEMON_NODE_OPTIONS, SERVER_NODE_OPTIONS, SERVER_USER, UsageError, parsePasswd, type WafFlags } from "@knockport/config";
import { refuseSharedSocketGroup, serverSetprivArgs } from "./socket-group.js";

export interface RunOptions {
  repoRoot: string;
  configFile: string;
  firewallType: string;
  httpPort: string | undefined;
  httpsPort: string | undefined;
  certFile: string;
  keyFile: string;
  user: string;
  socketPath: string;
  /** The helper's state (lease journal). */
  stateDir: string;
  /** The server's own state (spent 2FA codes), given to --user. */
  serverStateDir: string;
  /** Pass --service-rule-cleanup-on-shutdown to the helper. */
  cleanupOnShutdown?: boolean;
  /** Custom nftables table/chain flags, passed to the helper as given (it validates them). */
  nftablesFlags?: readonly string[];
  /** Passed to both, so the helper guards the ports nginx serves and the server trusts the same proxies. */
  waf?: WafFlags;
  /** --auth-check-listen, for the server only (it validates it). */
  authCheckListen?: string;
  log: (line: string) => void;
}

interface Account {
  uid: number;
  gid: number;
  name: string;
}

function lookupUser(name: string): Account {
  const entry = parsePasswd(readFileSync("/etc/passwd", "utf8")).find((u) => u.name === name);
  if (entry === undefined) {
    // No fallback to nobody: its group (nogroup) is shared by unrelated daemons, which could then call the helper.
    throw new UsageError(
      `--user ${name}: no such user; create the server's own user and group first: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${name}` +
        (name === SERVER_USER ? "" : " (or leave out --user: the default is knockport)"),
    );
  }
  if (entry.uid === 0) throw new UsageError(`--user ${name}: is root; the server must run unprivileged`);
  return entry;
}

/**
 * The server's state dir, created 0700 for `account` if missing. An existing one and the regular files
 * directly in it (an earlier run as root left used-totp.json root-owned, which the server then could
 * not read) are given to `account`. Never through a symbolic link, nor to a file with other hard links:
 * root must not be steered into handing out a file that lives elsewhere.
 */
export function prepareServerStateDir(dir: string, account: Account): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new UsageError(`--server-state-dir ${dir}: is not a folder (a symbolic link is not followed); give a folder`);
  chownSync(dir, account.uid, account.gid);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  for (const name of readdirSync(dir)) {
    let fd: number;
    try {
      fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      continue; // a symbolic link (ELOOP) or gone: not ours to hand out
    }
    try {
      const f = fstatSync(fd);
      if (f.isFile() && f.nlink === 1 && (f.uid !== account.uid || f.gid !== account.gid)) fchownSync(fd, account.uid, account.gid);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * `knockport run`: the original's one-command start. The helper runs as root; the server is
 * started through setpriv as an unprivileged user that keeps only CAP_NET_BIND_SERVICE (for
 * ports below 1024), with no_new_privs. The user's group owns the helper socket, so it must be
 * the server's alone. Either process ending stops the other.
 */
export async function runBoth(opts: RunOptions): Promise<number> {
  if (process.getuid?.() !== 0) throw new UsageError("knockport run must be started as root (the helper changes the firewall)");
  const account = lookupUser(opts.user);
  refuseSharedSocketGroup(account, readFileSync("/etc/passwd", "utf8"), readFileSync("/etc/group", "utf8"));
  prepareServerStateDir(opts.serverStateDir, account);
  const ports = [
    ...(opts.httpPort ? ["--http-port", opts.httpPort] : []),
    ...(opts.httpsPort ? ["--https-port", opts.httpsPort] : []),
    ...(opts.waf?.wafHttpPort !== undefined ? ["--waf-http-port", String(opts.waf.wafHttpPort)] : []),
    ...(opts.waf?.wafHttpsPort !== undefined ? ["--waf-https-port", String(opts.waf.wafHttpsPort)] : []),
    ...(opts.waf?.wafTrustedIps !== undefined ? ["--waf-trusted-ips", opts.waf.wafTrustedIps.join(",")] : []),
  ];
  const helper = spawn(
    process.execPath,
    [
      ...DAEMON_NODE_OPTIONS,
      join(opts.repoRoot, "bin/knockport-helper"),
      "-c", opts.configFile,
      "--firewall-type", opts.firewallType,
      "--socket", opts.socketPath,
      "--socket-group", String(account.gid),
      "--state-dir", opts.stateDir,
      ...ports,
      ...(opts.cleanupOnShutdown === true ? ["--service-rule-cleanup-on-shutdown"] : []),
      ...(opts.nftablesFlags ?? []),
    ],
    { stdio: "inherit" },
  );
  const server = spawn(
    "setpriv",
    [
      ...serverSetprivArgs(account),
      "--",
      process.execPath,
      ...SERVER_NODE_OPTIONS,
      join(opts.repoRoot, "bin/knockport-server"),
      "-c", opts.configFile,
      "--cert", opts.certFile,
      "--key", opts.keyFile,
      "--socket", opts.socketPath,
      "--state-dir", opts.serverStateDir,
      ...ports,
      ...(opts.authCheckListen !== undefined ? ["--auth-check-listen", opts.authCheckListen] : []),
    ],
    { stdio: "inherit" },
  );
  opts.log(`knockport run: helper pid ${helper.pid} (root), server pid ${server.pid} (user ${account.name})`);

  const children: ChildProcess[] = [helper, server];
  return new Promise<number>((resolve) => {
    let exitCode: number | undefined;
    const finished = new Set<ChildProcess>();
    const stopAll = (): void => {
      for (const c of children) if (!finished.has(c)) c.kill("SIGTERM");
    };
    for (const child of children) {
      child.on("error", (err) => {
        opts.log(`knockport run: cannot start ${child === helper ? "helper" : "server"}: ${err.message}`);
        exitCode ??= 1;
      });
      // "close" also fires when the process could not be spawned at all
      child.on("close", (code) => {
        finished.add(child);
        exitCode ??= code ?? 1;
        stopAll();
        if (finished.size === children.length) resolve(exitCode);
      });
    }
    process.once("SIGINT", stopAll);
    process.once("SIGTERM", stopAll);
  });
}
