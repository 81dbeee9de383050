import { execa } from "execa";
import { randomBytes } from "node:crypto";
import { NS_ROLES, SUFFIX_PATTERN, deleteNamespaceSync, ipBinary, listNamespaces, registerTopology, unregisterTopology } from "./namespaces.js";
import { buildNat, natAddresses } from "./nat.js";
import { ManagedChild, type ManagedProcess, type SpawnOptions } from "./process.js";
import type { ExecOptions, ExecResult, HostAddresses, HostName, Topology, TopologyAddresses, TopologyOptions } from "./topology-types.js";

export type { ExecOptions, ExecResult, HostAddresses, HostName, Topology, TopologyAddresses, TopologyOptions } from "./topology-types.js";

function addresses(v4: string, v6: string, iface: string, prefix4 = 24, prefix6 = 64): HostAddresses {
  return { v4, v6, prefix4, prefix6, iface };
}

class TopologyImpl implements Topology {
  readonly suffix: string;
  readonly names: Topology["names"];
  readonly addr: TopologyAddresses;
  readonly extInterface = "ext0";
  readonly intInterface: string | undefined;
  readonly processes: ManagedChild[] = [];
  destroyed = false;
  private destroying: Promise<void> | undefined;
  private readonly created: string[] = [];
  private readonly ip = ipBinary();

  constructor(suffix: string, withLan: boolean, withNat: boolean) {
    this.suffix = suffix;
    const n = (role: string): string => `kp${suffix}-${role}`;
    this.names = {
      sw: n("sw"),
      srv: n("srv"),
      cli: n("cli"),
      cli2: n("cli2"),
      lan: withLan ? n("lan") : undefined,
      nat: withNat ? n("nat") : undefined,
      priv: withNat ? n("priv") : undefined,
    };
    this.intInterface = withLan ? "int0" : undefined;
    this.addr = {
      srv: addresses("198.51.100.1", "2001:db8:100::1", "ext0"),
      cli: addresses("198.51.100.10", "2001:db8:100::10", "eth0"),
      cli2: addresses("198.51.100.20", "2001:db8:100::20", "eth0"),
      srvLan: withLan ? addresses("203.0.113.1", "2001:db8:200::1", "int0") : undefined,
      lan: withLan ? addresses("203.0.113.10", "2001:db8:200::10", "eth0") : undefined,
      ...(withNat ? natAddresses(addresses) : { nat: undefined, priv: undefined }),
    };
  }

  nsOf(host: HostName): string {
    const ns = this.names[host];
    if (ns === undefined) throw new Error(`topology kp${this.suffix}: host "${host}" was not built (withLan/withNat: false)`);
    return ns;
  }

  /** Runs `ip ...args` in the root namespace, throwing with the command and stderr on failure. */
  private async ipCmd(args: readonly string[]): Promise<void> {
    const res = await execa(this.ip, args, { reject: false, timeout: 15_000, stdin: "ignore" });
    if (res.exitCode !== 0) {
      throw new Error(`testbed: "ip ${args.join(" ")}" failed (exit ${String(res.exitCode)}): ${res.stderr.trim()}`);
    }
  }

  private async inNs(host: HostName, args: readonly string[]): Promise<void> {
    await this.ipCmd(["-n", this.nsOf(host), ...args]);
  }

  async build(): Promise<void> {
    const hosts: HostName[] = ["sw", "srv", "cli", "cli2"];
    if (this.names.lan !== undefined) hosts.push("lan");
    if (this.names.nat !== undefined) hosts.push("nat", "priv");
    for (const host of hosts) {
      const ns = this.nsOf(host);
      await this.ipCmd(["netns", "add", ns]);
      this.created.push(ns);
      await this.inNs(host, ["link", "set", "lo", "up"]);
    }
    // The bridge: srv's ext0, cli's eth0 and cli2's eth0 share one L2 segment, so the firewall sees
    // both clients arrive on the same interface (rules match `iifname ext0`).
    await this.inNs("sw", ["link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0"]);
    await this.inNs("sw", ["link", "set", "br0", "up"]);
    const ports: Array<[HostName, string, string]> = [
      ["srv", "p-srv", "ext0"],
      ["cli", "p-cli", "eth0"],
      ["cli2", "p-cli2", "eth0"],
      ...(this.names.nat !== undefined ? [["nat", "p-nat", "eth0"] as [HostName, string, string]] : []),
    ];
    for (const [host, swSide, hostSide] of ports) {
      // Created inside sw with the peer moved straight into the host: nothing touches the root namespace.
      await this.inNs("sw", ["link", "add", swSide, "type", "veth", "peer", "name", hostSide, "netns", this.nsOf(host)]);
      await this.inNs("sw", ["link", "set", swSide, "master", "br0"]);
      await this.inNs("sw", ["link", "set", swSide, "up"]);
    }
    await this.configure("srv", this.addr.srv);
    await this.configure("cli", this.addr.cli);
    await this.configure("cli2", this.addr.cli2);

    const { nat, priv } = this.addr;
    if (nat !== undefined && priv !== undefined) {
      const ops = {
        nsOf: (host: HostName) => this.nsOf(host),
        ip: (host: HostName, args: readonly string[]) => this.inNs(host, args),
        exec: (host: HostName, file: string, args: readonly string[], opts?: ExecOptions) => this.exec(host, file, args, opts),
        configure: (host: HostName, a: HostAddresses) => this.configure(host, a),
      };
      await buildNat(ops, nat, priv);
    }

    const lanAddr = this.addr.lan;
    const srvLan = this.addr.srvLan;
    if (lanAddr !== undefined && srvLan !== undefined) {
      await this.inNs("srv", ["link", "add", srvLan.iface, "type", "veth", "peer", "name", lanAddr.iface, "netns", this.nsOf("lan")]);
      await this.configure("srv", srvLan);
      await this.configure("lan", lanAddr);
      await this.inNs("lan", ["route", "add", "default", "via", srvLan.v4]);
      await this.inNs("lan", ["-6", "route", "add", "default", "via", srvLan.v6]);
      // Clients may reach the LAN range through srv (for forwarding tests); still nothing leaves our namespaces.
      for (const host of ["cli", "cli2"] as const) {
        await this.inNs(host, ["route", "add", `${srvLan.v4.replace(/\.\d+$/, ".0")}/${srvLan.prefix4}`, "via", this.addr.srv.v4]);
        await this.inNs(host, ["-6", "route", "add", "2001:db8:200::/64", "via", this.addr.srv.v6]);
      }
      const fwd = await this.exec("srv", "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
      if (fwd.exitCode !== 0) throw new Error(`testbed: enabling forwarding in srv failed: ${fwd.stderr}`);
    }
  }

  private async configure(host: HostName, a: HostAddresses): Promise<void> {
    await this.inNs(host, ["addr", "add", `${a.v4}/${a.prefix4}`, "dev", a.iface]);
    await this.inNs(host, ["-6", "addr", "add", `${a.v6}/${a.prefix6}`, "dev", a.iface, "nodad"]);
    await this.inNs(host, ["link", "set", a.iface, "up"]);
  }

  async exec(host: HostName, file: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const argv = this.argv(host, file, args, opts.runAs);
    const started = Date.now();
    const [bin, ...rest] = argv;
    const res = await execa(bin ?? this.ip, rest, {
      reject: false,
      timeout: opts.timeoutMs ?? 30_000,
      env: opts.env ?? {},
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      ...(opts.input !== undefined ? { input: opts.input } : { stdin: "ignore" as const }),
      stripFinalNewline: false,
    });
    const result: ExecResult = {
      command: argv,
      exitCode: res.exitCode,
      signal: res.signal,
      stdout: typeof res.stdout === "string" ? res.stdout : "",
      stderr: typeof res.stderr === "string" ? res.stderr : "",
      timedOut: res.timedOut,
      failed: res.failed,
      durationMs: Date.now() - started,
    };
    if (opts.reject === true && result.failed) {
      throw new Error(`testbed: ${argv.join(" ")} failed (exit ${String(result.exitCode)}${result.timedOut ? ", timed out" : ""}): ${result.stderr.trim()}`);
    }
    return result;
  }

  private argv(host: HostName, file: string, args: readonly string[], runAs: ExecOptions["runAs"]): string[] {
    if (this.destroyed) throw new Error(`topology kp${this.suffix} is destroyed`);
    const prefix = runAs !== undefined ? ["setpriv", `--reuid=${runAs.user}`, `--regid=${runAs.group}`, "--clear-groups"] : [];
    return [this.ip, "netns", "exec", this.nsOf(host), ...prefix, file, ...args];
  }

  spawn(host: HostName, file: string, args: readonly string[], opts: SpawnOptions = {}): ManagedProcess {
    const argv = this.argv(host, file, args, opts.runAs);
    const child = new ManagedChild(host, argv, { ...opts, label: opts.label ?? `${host}:${file.split("/").pop() ?? file}` });
    this.processes.push(child);
    return child;
  }

  logs(maxLinesEach = 60): string {
    return this.processes
      .map((p) => `===== ${p.label} (pid ${String(p.pid)}, ${p.exitInfo === undefined ? "running" : `exited ${String(p.exitInfo.exitCode ?? p.exitInfo.signal)}`}) =====\n${p.tail(maxLinesEach)}`)
      .join("\n");
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    try {
      await Promise.all(this.processes.map((p) => p.stop(2000).catch(() => undefined)));
    } catch {
      /* never throw */
    }
    this.destroyed = true;
    for (const ns of [...this.created].reverse()) {
      try {
        // Anything still running in the namespace (e.g. started with exec and left behind) goes too.
        const pids = await execa(this.ip, ["netns", "pids", ns], { reject: false, timeout: 10_000 });
        for (const text of String(pids.stdout ?? "").split("\n")) {
          const pid = Number(text.trim());
          if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
            try {
              process.kill(pid, "SIGKILL");
            } catch {
              /* gone */
            }
          }
        }
        await execa(this.ip, ["netns", "del", ns], { reject: false, timeout: 10_000 });
      } catch {
        /* never throw */
      }
    }
    this.created.length = 0;
    unregisterTopology(this);
  }

  /** Used by the process-exit safety net: synchronous, best effort. */
  destroySync(): void {
    this.destroyed = true;
    for (const p of this.processes) p.killNow();
    for (const ns of [...this.created].reverse()) deleteNamespaceSync(ns);
    this.created.length = 0;
    unregisterTopology(this);
  }
}

/**
 * Builds the namespaces kp<suffix>-{sw,srv,cli,cli2[,lan]}: a bridge in sw joins srv's `ext0`
 * (198.51.100.1/24, 2001:db8:100::1/64), cli's `eth0` (.10 / ::10) and cli2's `eth0` (.20 / ::20).
 * With `withLan`, srv's `int0` (203.0.113.1/24, 2001:db8:200::1/64) links to lan's `eth0` (.10 / ::10),
 * lan routes via srv and srv forwards. With `withNat`, `nat` (eth0 198.51.100.30 / 2001:db8:100::30 on the
 * bridge) masquerades `priv` (10.77.0.10 behind it; nat.ts). Requires root. On failure, whatever was built is removed.
 */
export async function createTopology(opts: TopologyOptions = {}): Promise<Topology> {
  const suffix = opts.suffix ?? randomBytes(3).toString("hex");
  if (!SUFFIX_PATTERN.test(suffix)) throw new Error(`testbed: suffix must be 1-8 characters [a-z0-9] (got "${suffix}")`);
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("testbed: building network namespaces needs root (run the end-to-end tests as root)");
  }
  const existing = new Set(listNamespaces());
  for (const role of NS_ROLES) {
    if (existing.has(`kp${suffix}-${role}`)) throw new Error(`testbed: namespace kp${suffix}-${role} already exists (suffix in use)`);
  }
  const topo = new TopologyImpl(suffix, opts.withLan === true, opts.withNat === true);
  registerTopology(topo);
  try {
    await topo.build();
  } catch (error) {
    await topo.destroy();
    throw error;
  }
  return topo;
}

