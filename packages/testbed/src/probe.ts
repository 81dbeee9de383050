import { fileURLToPath } from "node:url";
import type { ManagedProcess } from "./process.js";
import type { HostName, Topology } from "./topology.js";

export type PortState = "open" | "closed";
export type ProbeMode = "tcp" | "udp" | "tcp-connect";

export interface ProbeResult {
  readonly state: PortState;
  /** Why: "echo", "connected", "timeout", "refused", "reset", "no-echo", ... */
  readonly reason: string;
  readonly durationMs: number;
}

/** Absolute path of a script shipped in packages/testbed/tools (works from src/ and dist/). */
export function toolPath(name: "probe.mjs" | "echo-server.mjs" | "fake-vbash.mjs"): string {
  return fileURLToPath(new URL(`../tools/${name}`, import.meta.url));
}

const DEFAULT_TIMEOUT_MS = 500;

/**
 * Runs the probe script inside `from`'s namespace. Never rejects for network reasons; rejects only
 * when the probe itself could not run (then the message says why).
 */
export async function probe(topo: Topology, from: HostName, mode: ProbeMode, ip: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ProbeResult> {
  const started = Date.now();
  const res = await topo.exec(from, process.execPath, [toolPath("probe.mjs"), mode, ip, String(port), String(timeoutMs)], {
    timeoutMs: timeoutMs + 10_000,
  });
  const word = res.stdout.trim();
  if (res.exitCode !== 0 || (word !== "open" && word !== "closed")) {
    throw new Error(`probe ${mode} ${from} -> ${ip}:${port} did not run (exit ${String(res.exitCode)}): ${res.stdout} ${res.stderr}`);
  }
  return { state: word, reason: res.stderr.trim(), durationMs: Date.now() - started };
}

/** "open" when a TCP connection from `from` to ip:port succeeds AND the echo service echoes our token. */
export async function probeTcp(topo: Topology, from: HostName, ip: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<PortState> {
  return (await probe(topo, from, "tcp", ip, port, timeoutMs)).state;
}

/** "open" when the UDP echo service at ip:port answers a datagram from `from`. */
export async function probeUdp(topo: Topology, from: HostName, ip: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<PortState> {
  return (await probe(topo, from, "udp", ip, port, timeoutMs)).state;
}

/** "open" when the TCP handshake from `from` to ip:port completes (any listener, e.g. the HTTPS knock port). */
export async function probeTcpConnect(topo: Topology, from: HostName, ip: string, port: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<PortState> {
  return (await probe(topo, from, "tcp-connect", ip, port, timeoutMs)).state;
}

export interface EchoServerOptions {
  tcp?: readonly number[];
  udp?: readonly number[];
  /** How long to wait for "echo ready" (default 10000 ms). */
  readyTimeoutMs?: number;
}

/** Starts the echo service (dual stack, "::") in `host` and waits until it listens. */
export async function startEchoServer(topo: Topology, host: HostName, opts: EchoServerOptions): Promise<ManagedProcess> {
  const args: string[] = [toolPath("echo-server.mjs")];
  for (const p of opts.tcp ?? []) args.push("--tcp", String(p));
  for (const p of opts.udp ?? []) args.push("--udp", String(p));
  const child = topo.spawn(host, process.execPath, args, { label: `${host}:echo-server` });
  await child.waitForLine(/^echo ready/, opts.readyTimeoutMs ?? 10_000);
  return child;
}
