// Shared fixture of the KnockPort e2e files: one topology, the real helper + server + echo service in srv,
// and small knock/probe helpers with readable failure messages.
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, type TestContext } from "vitest";
import {
  cleanupStaleTopologies,
  createTopology,
  enableConntrack,
  exampleConfig,
  formBody,
  knock,
  knockUrl,
  FIREWALL_KINDS,
  ALL_FIREWALL_KINDS,
  toolPath,
  probe,
  readFirewallState,
  sleepUntil,
  startKnockport,
  type AppSpec,
  type ConfigSpec,
  type ExecResult,
  type FirewallKind,
  type FirewallSetEntry,
  type FirewallState,
  type HostAddresses,
  type HostName,
  type KnockResult,
  type KnockportStack,
  type ManagedProcess,
  type PortState,
  type Topology,
} from "./testbed.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** A closed port is probed for this long (in-namespace round trips take well under 1 ms). */
export const PROBE_MS = 400;
/** How late after a lease's deadline the port must be closed (the brief allows up to 1.5 s). */
export const CLOSE_MARGIN_MS = 1200;

export type Family = 4 | 6;
export type Client = "cli" | "cli2";

export interface HarnessOptions {
  duration: number;
  step2HttpsDuration: number;
  rateLimitPerMinute: number;
  /**
   * global.https_connection_limit_per_minute / _burst. Default 10000 / 10000: the suites knock and
   * probe the HTTPS port from one address many times a minute (as the server's rate limit, the limit is
   * set out of the way); https-limit.test.ts tests the limit itself.
   */
  httpsConnectionLimit?: { perMinute: number; burst: number };
  httpPathLength?: number;
  /** Also build the `lan` host behind srv's int0 (forwarded apps); interface_int is then int0. */
  withLan?: boolean;
  /** Also build `nat`, a masquerading router on the bridge, and `priv` behind it. */
  withNat?: boolean;
  /** Replace the example apps (at least two), e.g. with forwarded ones. */
  apps?: (topo: Topology, base: ConfigSpec) => AppSpec[];
  /** Start the echo service in srv on the apps' ports (default true). */
  echo?: boolean;
  /** Firewall backend of the helper (default nftables). */
  firewall?: FirewallKind;
  /** Address family of knocks and probes when a call names none (default 4). */
  family?: Family;
  /** Extra knockport-helper flags (e.g. --use-sudo). */
  helperArgs?: readonly string[];
  /** Also start knockport-hooks (as daemon) on the helper's events socket. */
  hooks?: boolean;
  /**
   * vyos only: the simulated router's input default-action. Default accept (VyOS without an input
   * filter, so the core suite's "nothing blocks without KnockPort" controls hold); vyos.test uses drop.
   */
  vyosInputDefault?: "accept" | "drop";
  /** Extra knockport-server flags. */
  serverArgs?: readonly string[];
  /**
   * Give the server its own --state-dir (spent 2FA codes), a temporary directory owned by the server's
   * user (nobody:nogroup) as in a deployment: Harness.serverStateDir, removed by stop().
   */
  serverStateDir?: boolean;
  /** global.allow_missing_interfaces: "ext" stands for srv's external interface. */
  allowMissingInterfaces?: readonly string[];
  /** Runs once the namespaces exist, before KnockPort starts (e.g. the host's own nftables ruleset). */
  beforeKnockport?: (topo: Topology) => Promise<void>;
  /**
   * WAF mode: the real nginx in srv on these public ports, configured from deploy/nginx/knockport.conf;
   * helper and server get --waf-http-port / --waf-https-port; knocks and https() go to nginx's ports.
   */
  waf?: { httpPort: number; httpsPort: number };
}

/** The numeric id of a user (/etc/passwd) or group (/etc/group). */
export function accountId(file: "/etc/passwd" | "/etc/group", name: string): number {
  const id = Number(readFileSync(file, "utf8").split("\n").find((l) => l.split(":")[0] === name)?.split(":")[2]);
  if (!Number.isInteger(id)) throw new Error(`${name} not in ${file}`);
  return id;
}

/**
 * The example's two apps and the lan host's addresses, for an `apps` option that derives forwarded apps
 * from them (with withLan).
 */
export function lanAndExampleApps(topo: Topology, base: ConfigSpec): { lan: HostAddresses; ssh: AppSpec; vpn: AppSpec } {
  const lan = topo.addr.lan;
  if (lan === undefined) throw new Error("no lan host");
  const [ssh, vpn] = base.apps;
  if (ssh === undefined || vpn === undefined) throw new Error("example config lacks apps");
  return { lan, ssh, vpn };
}

/** `app`'s access keys, each prefixed with `tag`: apps derived from one example app get keys of their own. */
export function ownKeys(app: AppSpec, tag: string): Pick<AppSpec, "accessKeysHttp" | "accessKeysHttps"> {
  return { accessKeysHttp: app.accessKeysHttp.map((k) => `${tag}-${k}`), accessKeysHttps: app.accessKeysHttps.map((k) => `${tag}-${k}`) };
}

export const describeResult = (r: KnockResult): string =>
  `curl exit ${String(r.curlExit)}, status ${String(r.status)}, body ${JSON.stringify(r.body)}, ${r.durationMs} ms: ${r.argv.join(" ")}`;

export function expectStep1NoReply(r: KnockResult, what: string): void {
  expect(r.curlExit, `${what}: step 1 must get no reply (curl exit 28 = timeout); ${describeResult(r)}`).toBe(28);
}

/** A step-2 answer: 200, the plain `OK` line first, then the lease's end in unix seconds and the address it is for. */
export function expectOk(r: KnockResult, what: string): void {
  const body = r.body.replace(/^(OK\nexpires=)\d+\n(address=)[0-9a-f.:]+\n$/, "$1N\n$2A\n");
  expect({ status: r.status, body }, `${what}: ${describeResult(r)}`).toEqual({ status: 200, body: "OK\nexpires=N\naddress=A\n" });
  const expires = Number(/expires=(\d+)/.exec(r.body)?.[1]);
  expect(Math.abs(expires - Date.now() / 1000), `${what}: expires= is a unix time of this lease`).toBeLessThan(366 * 86400);
}

/** Runs labelled checks in parallel and returns { label: state }, for one readable toEqual. */
export async function states(checks: Record<string, () => Promise<PortState>>): Promise<Record<string, PortState>> {
  const entries = await Promise.all(Object.entries(checks).map(async ([k, f]) => [k, await f()] as const));
  return Object.fromEntries(entries);
}

/**
 * Backends the e2e files run against: all of them, or the comma-separated list in
 * KNOCKPORT_E2E_FIREWALLS (e.g. "nftables" for a quick run).
 */
export function e2eFirewalls(): FirewallKind[] {
  const wanted = process.env.KNOCKPORT_E2E_FIREWALLS;
  if (wanted === undefined || wanted.trim() === "") return [...FIREWALL_KINDS];
  const list = wanted.split(",").map((s) => s.trim());
  for (const w of list) {
    if (!(ALL_FIREWALL_KINDS as readonly string[]).includes(w)) throw new Error(`KNOCKPORT_E2E_FIREWALLS: unknown backend "${w}" (use ${ALL_FIREWALL_KINDS.join(", ")})`);
  }
  return list as FirewallKind[];
}

export interface E2eCase {
  readonly firewall: FirewallKind;
  readonly family: Family;
}

/**
 * Backend x knocking-family cases of the core suite. Default (to keep the whole e2e run short): nftables
 * over IPv4, iptables-nft over IPv6, iptables-legacy over IPv4 - every backend once, both families as the
 * knocking family, and every run also checks the other family (test 1: closed in both; test 10: a knock
 * in the other family opens only that family). KNOCKPORT_E2E_MATRIX=full runs every backend over both
 * families; KNOCKPORT_E2E_FIREWALLS narrows the backends (a single backend runs over both families).
 */
export function e2eMatrix(): E2eCase[] {
  const full = process.env.KNOCKPORT_E2E_MATRIX === "full";
  const out: E2eCase[] = [];
  for (const firewall of e2eFirewalls()) {
    const families: Family[] = full || e2eFirewalls().length === 1 ? [4, 6] : firewall === "iptables-nft" ? [6] : [4];
    for (const family of families) out.push({ firewall, family });
  }
  return out;
}

export class Harness {
  topo!: Topology;
  stack!: KnockportStack;
  cfg!: ConfigSpec;
  ssh!: AppSpec;
  openvpn!: AppSpec;
  /** Upper bounds of lease deadlines (epoch ms), by `${host}|${family}|${app or "https"}`. */
  private readonly deadlines = new Map<string, number>();

  constructor(private readonly opts: HarnessOptions) {}

  get firewall(): FirewallKind {
    return this.opts.firewall ?? "nftables";
  }

  /** The default family of this run. */
  get family(): Family {
    return this.opts.family ?? 4;
  }

  /** The family this run does not default to. */
  get otherFamily(): Family {
    return this.family === 4 ? 6 : 4;
  }

  /** A host's address in `family` (default: this run's). */
  ip(host: HostName, family: Family = this.family): string {
    const a = host === "lan" ? this.topo.addr.lan : host === "sw" ? undefined : this.topo.addr[host];
    if (a === undefined) throw new Error(`no addresses for ${host}`);
    return family === 4 ? a.v4 : a.v6;
  }

  async start(): Promise<void> {
    cleanupStaleTopologies();
    this.topo = await createTopology({ withLan: this.opts.withLan === true, withNat: this.opts.withNat === true });
    // Like a typical distribution host: connection tracking is active in srv, so "no conntrack entry for
    // the stealth port" is a real claim and not a side effect of conntrack being off.
    await enableConntrack(this.topo);
    this.cfg = exampleConfig({
      interfaceExt: this.topo.extInterface,
      duration: this.opts.duration,
      step2HttpsDuration: this.opts.step2HttpsDuration,
      httpPathLength: this.opts.httpPathLength ?? 40,
      rateLimitPerMinute: this.opts.rateLimitPerMinute,
      httpsConnectionLimit: this.opts.httpsConnectionLimit ?? { perMinute: 10_000, burst: 10_000 },
      keyPairs: 2,
    });
    if (this.topo.intInterface !== undefined) this.cfg = { ...this.cfg, interfaceInt: this.topo.intInterface };
    if (this.opts.apps !== undefined) this.cfg = { ...this.cfg, apps: this.opts.apps(this.topo, this.cfg) };
    if (this.opts.allowMissingInterfaces !== undefined) {
      this.cfg = { ...this.cfg, allowMissingInterfaces: this.opts.allowMissingInterfaces.map((i) => (i === "ext" ? this.topo.extInterface : i)) };
    }
    const [a, b] = this.cfg.apps;
    if (a === undefined || b === undefined) throw new Error("example config lacks apps");
    this.ssh = a;
    this.openvpn = b;
    await this.opts.beforeKnockport?.(this.topo);
    const wafArgs = this.opts.waf ? ["--waf-http-port", String(this.opts.waf.httpPort), "--waf-https-port", String(this.opts.waf.httpsPort)] : [];
    const helperArgs = [...(this.opts.helperArgs ?? []), ...wafArgs];
    if (this.firewall === "vyos") helperArgs.push("--vbash", await this.startVyosSimulator());
    const serverArgs = [...(this.opts.serverArgs ?? []), ...wafArgs];
    if (this.opts.serverStateDir === true) {
      const dir = mkdtempSync(join(tmpdir(), "kp-srv-state-"));
      this.stateDir = dir;
      chownSync(dir, accountId("/etc/passwd", "nobody"), accountId("/etc/group", "nogroup"));
      chmodSync(dir, 0o700);
      serverArgs.push("--state-dir", dir);
    }
    this.stack = await startKnockport(this.topo, { repoRoot: REPO_ROOT, config: this.cfg, echo: this.opts.echo !== false, firewall: this.firewall, helperArgs, serverArgs, hooks: this.opts.hooks === true });
    if (this.opts.waf) this.nginx = await this.startNginx(this.opts.waf);
  }

  /** WAF mode: the nginx child in srv (undefined otherwise). */
  nginx: ManagedProcess | undefined;

  private stateDir: string | undefined;

  /** The server's --state-dir (the serverStateDir option). */
  get serverStateDir(): string {
    if (this.stateDir === undefined) throw new Error("the server has no --state-dir: set serverStateDir in the harness options");
    return this.stateDir;
  }

  /** The HTTP port clients knock on: nginx's in WAF mode. */
  get knockHttpPort(): number {
    return this.opts.waf?.httpPort ?? this.cfg.httpPort;
  }

  /** The HTTPS port step 1 opens: nginx's in WAF mode. */
  get knockHttpsPort(): number {
    return this.opts.waf?.httpsPort ?? this.cfg.httpsPort;
  }

  /**
   * The Debian nginx as a child of the test in srv (`daemon off`), its main config, pid file, logs and
   * temp paths in a temporary directory; the servers are deploy/nginx/knockport.conf itself with the
   * ports, certificate and log paths of this run substituted.
   */
  private async startNginx(waf: { httpPort: number; httpsPort: number }): Promise<ManagedProcess> {
    const dir = mkdtempSync(join(tmpdir(), "kp-nginx-"));
    chmodSync(dir, 0o755);
    this.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const example = readFileSync(join(REPO_ROOT, "deploy/nginx/knockport.conf"), "utf8");
    const replace = (text: string, from: string, to: string): string => {
      if (!text.includes(from)) throw new Error(`deploy/nginx/knockport.conf no longer contains "${from}"; update the WAF e2e harness`);
      return text.split(from).join(to);
    };
    let servers = example;
    for (const [from, to] of [
      ["listen 80;", `listen ${waf.httpPort};`],
      ["listen [::]:80;", `listen [::]:${waf.httpPort};`],
      ["listen 443 ssl;", `listen ${waf.httpsPort} ssl;`],
      ["listen [::]:443 ssl;", `listen [::]:${waf.httpsPort} ssl;`],
      ["http://127.0.0.1:8080;", `http://127.0.0.1:${this.cfg.httpPort};`],
      ["https://127.0.0.1:8443;", `https://127.0.0.1:${this.cfg.httpsPort};`],
      ["/etc/knockport/tls/knockport.pem;", `${this.stack.certPath};`],
      ["/etc/knockport/tls/knockport.key;", `${this.stack.keyPath};`],
      ["/var/log/nginx/", `${dir}/`],
    ] as const) {
      servers = replace(servers, from, to);
    }
    return this.spawnNginx(dir, servers, [waf.httpPort, waf.httpsPort]);
  }

  /**
   * The Debian nginx in srv serving `servers` (server blocks for its http block), its main config, pid
   * file and temp paths in `dir` (default: a new temporary directory); ready when srv reaches every
   * port of `readyPorts` on its IPv4 address. Stopped by stop().
   */
  async spawnNginx(dir: string | undefined, servers: string, readyPorts: readonly number[]): Promise<ManagedProcess> {
    if (dir === undefined) {
      dir = mkdtempSync(join(tmpdir(), "kp-nginx-"));
      chmodSync(dir, 0o755);
      const made = dir;
      this.cleanups.push(() => rmSync(made, { recursive: true, force: true }));
    }
    const conf = join(dir, "nginx.conf");
    writeFileSync(
      conf,
      [
        "user nobody nogroup;",
        "worker_processes 1;",
        `pid ${dir}/nginx.pid;`,
        "error_log stderr notice;",
        "events { worker_connections 128; }",
        "http {",
        `    access_log ${dir}/access.log;`,
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `    ${t}_temp_path ${dir}/${t}-temp;`),
        servers,
        "}",
        "",
      ].join("\n"),
    );
    const nginx = this.topo.spawn("srv", "/usr/sbin/nginx", ["-p", dir, "-c", conf, "-e", "stderr", "-g", "daemon off;"], { label: "nginx" });
    this.nginx = nginx;
    // Ready when srv reaches the ports itself (over lo: the firewall guards only interface_ext).
    for (let i = 0; i < 100; i += 1) {
      if (nginx.exitInfo !== undefined) throw new Error(`nginx exited at start:\n${nginx.tail(40)}`);
      const ready = await Promise.all(readyPorts.map((port) => probe(this.topo, "srv", "tcp-connect", this.srvIp(4), port, PROBE_MS)));
      if (ready.every((r) => r.state === "open")) return nginx;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`nginx did not listen on ${readyPorts.join(" and ")} within ~10 s:\n${nginx.tail(40)}`);
  }

  /** The fake vbash of the simulated VyOS router (vyos backend only). */
  vbash: string | undefined;

  /**
   * Simulated VyOS in srv: a fake `vbash` (tools/fake-vbash.mjs) in a temporary directory and its base
   * router config committed (tables ip/ip6 vyos_filter, input default-action drop).
   */
  private async startVyosSimulator(): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "kp-vyos-"));
    chmodSync(dir, 0o755);
    const vbash = join(dir, "vbash");
    // The helper runs it directly: absolute node in the shebang, whatever PATH says.
    writeFileSync(vbash, readFileSync(toolPath("fake-vbash.mjs"), "utf8").replace(/^#!.*\n/, `#!${process.execPath}\n`));
    chmodSync(vbash, 0o755);
    this.vbash = vbash;
    this.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    await this.vyos(["--init", this.opts.vyosInputDefault ?? "accept"]);
    return vbash;
  }

  /** Runs the fake vbash in srv (e.g. ["--commit"] for a commit that re-renders VyOS's tables). */
  async vyos(args: string[], input?: string): Promise<ExecResult> {
    if (this.vbash === undefined) throw new Error("not a vyos run");
    const r = await this.topo.exec("srv", process.execPath, [this.vbash, ...args], { timeoutMs: 15_000, ...(input !== undefined ? { input } : {}) });
    if (args[0] === "--init" && r.exitCode !== 0) throw new Error(`fake vbash --init: ${r.stderr}`);
    return r;
  }

  private readonly cleanups: Array<() => void> = [];

  async stop(): Promise<void> {
    await this.nginx?.stop(2000).catch(() => undefined);
    for (const c of this.cleanups.splice(0)) c();
    await this.stack?.stop();
    await this.topo?.destroy();
    if (this.stateDir !== undefined) rmSync(this.stateDir, { recursive: true, force: true });
  }

  /** Prints every process's output tail and the nft sets when the current test fails. */
  diagnoseOnFailure(ctx: TestContext): void {
    ctx.onTestFailed(async () => {
      console.error(`\n---- diagnostics for "${ctx.task.name}" ----\n${this.topo?.logs(60) ?? "(no topology)"}`);
      try {
        const t = this.topo === undefined ? undefined : await this.firewallState();
        if (t === undefined) console.error(`${this.firewall}: KnockPort's firewall is absent`);
        else for (const name of t.sets) console.error(`${this.firewall} set ${name}: ${JSON.stringify(t.elements.filter((e) => e.set === name).map((e) => e.ip))}`);
      } catch (e) {
        console.error(`${this.firewall} listing failed: ${String(e)}`);
      }
    });
  }

  leaseKey(host: Client, family: Family, what: string): string {
    return `${host}|${family}|${what}`;
  }

  noteLease(host: Client, family: Family, what: string, grantedBy: number, seconds: number): void {
    const key = this.leaseKey(host, family, what);
    this.deadlines.set(key, Math.max(this.deadlines.get(key) ?? 0, grantedBy + seconds * 1000));
  }

  /** Waits until every named lease has certainly expired (deadline + margin). */
  async waitExpired(...keys: string[]): Promise<void> {
    const until = Math.max(0, ...keys.map((k) => this.deadlines.get(k) ?? 0));
    if (until > 0) await sleepUntil(until + CLOSE_MARGIN_MS);
  }

  srvIp(family: Family): string {
    return family === 4 ? this.topo.addr.srv.v4 : this.topo.addr.srv.v6;
  }

  step1(host: Client, app: AppSpec, o: { family?: Family; key?: string; appName?: string; path?: string; body?: string; localPort?: number } = {}): Promise<KnockResult> {
    const body = o.body ?? formBody({ app: o.appName ?? app.name, access_key: o.key ?? app.accessKeysHttp[0] ?? "" });
    return knock(this.topo, host, {
      step: 1,
      url: knockUrl("http", this.srvIp(o.family ?? this.family), this.knockHttpPort, o.path ?? this.cfg.httpPostPath),
      body,
      ...(o.localPort !== undefined ? { localPort: o.localPort } : {}),
    });
  }

  step2(host: Client, app: AppSpec, o: { family?: Family; key?: string; appName?: string } = {}): Promise<KnockResult> {
    const body = formBody({ app: o.appName ?? app.name, access_key: o.key ?? app.accessKeysHttps[0] ?? "" });
    return knock(this.topo, host, { step: 2, url: knockUrl("https", this.srvIp(o.family ?? this.family), this.knockHttpsPort, this.cfg.httpsPostPath), body });
  }

  /** Full two-step knock; the lease deadline lies in [sent + duration, done + duration]. */
  async fullKnock(host: Client, app: AppSpec, family: Family = this.family): Promise<{ sent: number; done: number }> {
    const s1 = await this.step1(host, app, { family });
    expectStep1NoReply(s1, `step 1 ${app.name} from ${host} IPv${family}`);
    this.noteLease(host, family, "https", Date.now(), app.step2HttpsDuration);
    const sent = Date.now();
    const s2 = await this.step2(host, app, { family });
    const done = Date.now();
    expectOk(s2, `step 2 ${app.name} from ${host} IPv${family}`);
    this.noteLease(host, family, app.name, done, app.duration);
    return { sent, done };
  }

  /** State of an app's service port as seen from `host` (tcp: connect + echo; udp: echo). */
  async svc(host: HostName, app: AppSpec, family: Family = this.family, timeoutMs = PROBE_MS): Promise<PortState> {
    return (await probe(this.topo, host, app.protocol, this.srvIp(family), app.port, timeoutMs)).state;
  }

  /** Whether the HTTPS knock port accepts a TCP connection from `host`. */
  async https(host: HostName, family: Family = this.family): Promise<PortState> {
    return (await probe(this.topo, host, "tcp-connect", this.srvIp(family), this.knockHttpsPort, PROBE_MS)).state;
  }

  /** Names of the knockport sets holding `ip`. */
  async setsHolding(ip: string): Promise<string[]> {
    return (await this.elementsHolding(ip)).map((e) => e.set);
  }

  /** KnockPort's sets and elements, whatever the backend; undefined when its table / chains are absent. */
  firewallState(): Promise<FirewallState | undefined> {
    return readFirewallState(this.topo, this.firewall, this.cfg.apps.map((a) => a.name));
  }

  /** Elements holding `ip`, with logical set names (`https_v4`, `svc_<app>_v4`, ...). */
  async elementsHolding(ip: string): Promise<FirewallSetEntry[]> {
    const state = await this.firewallState();
    if (state === undefined) throw new Error(`KnockPort's firewall (${this.firewall}) is missing`);
    return state.elements.filter((e) => e.ip === ip);
  }
}
