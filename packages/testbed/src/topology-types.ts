// The test network's contract: its hosts, their addresses, and what a test can run in them.
import type { ManagedProcess, SpawnOptions } from "./process.js";

/**
 * The hosts of the topology. `sw` only holds the bridge that joins srv, cli and cli2 (and `nat`, the
 * router in front of `priv`, with `withNat`).
 */
export type HostName = "sw" | "srv" | "cli" | "cli2" | "lan" | "nat" | "priv";

export interface HostAddresses {
  readonly v4: string;
  readonly v6: string;
  readonly prefix4: number;
  readonly prefix6: number;
  /** Interface holding these addresses in its namespace. */
  readonly iface: string;
}

export interface TopologyAddresses {
  /** srv's external interface (`ext0`, on the bridge). */
  readonly srv: HostAddresses;
  readonly cli: HostAddresses;
  readonly cli2: HostAddresses;
  /** srv's internal interface (`int0`), only with `withLan`. */
  readonly srvLan: HostAddresses | undefined;
  readonly lan: HostAddresses | undefined;
  /** The NAT router's public side (`eth0`, on the bridge), only with `withNat`. */
  readonly nat: HostAddresses | undefined;
  /** The client behind the NAT router (`eth0`, a private range), only with `withNat`. */
  readonly priv: HostAddresses | undefined;
}

export interface TopologyOptions {
  /** Also build `lan` behind srv (`int0`), with forwarding enabled in srv. */
  withLan?: boolean;
  /**
   * Also build `nat`, a router on the bridge that masquerades the IPv4 traffic of `priv` behind it
   * (setNatPublicAddress() changes its public address, as an ISP would).
   */
  withNat?: boolean;
  /** Namespace name suffix: 1-8 characters [a-z0-9]. Default: 6 random hex characters. */
  suffix?: string;
}

export interface ExecOptions {
  /** Kill the command after this many ms (default 30000). */
  timeoutMs?: number;
  /** Text fed to stdin. */
  input?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Throw when the command fails (default false: the result carries the exit code). */
  reject?: boolean;
  runAs?: { user: string; group: string };
}

export interface ExecResult {
  readonly command: readonly string[];
  /** Undefined when the command was killed or could not start. */
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly failed: boolean;
  readonly durationMs: number;
}

export interface Topology {
  readonly suffix: string;
  /** Namespace names, e.g. { srv: "kpab12cd-srv", ... }; lan undefined without `withLan`. */
  readonly names: {
    readonly sw: string;
    readonly srv: string;
    readonly cli: string;
    readonly cli2: string;
    readonly lan: string | undefined;
    readonly nat: string | undefined;
    readonly priv: string | undefined;
  };
  readonly addr: TopologyAddresses;
  /** srv's external interface name, to use as `interface_ext`. */
  readonly extInterface: string;
  readonly intInterface: string | undefined;
  /** Runs `ip netns exec <ns> file ...args` and returns the result. */
  exec(host: HostName, file: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running process in a namespace; `destroy()` stops it. */
  spawn(host: HostName, file: string, args: readonly string[], opts?: SpawnOptions): ManagedProcess;
  /** All processes started with spawn(), in start order. */
  readonly processes: readonly ManagedProcess[];
  /** Output tails of every managed process, for failure diagnostics. */
  logs(maxLinesEach?: number): string;
  /** Stops every child (SIGTERM, SIGKILL after 2 s) and deletes the namespaces. Idempotent, never throws. */
  destroy(): Promise<void>;
  readonly destroyed: boolean;
}
