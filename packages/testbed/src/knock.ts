import { isIPv6 } from "node:net";
import type { HostName, Topology } from "./topology.js";

/** `http://198.51.100.1:8080/path` or `https://[2001:db8:100::1]:8443/path`. */
export function knockUrl(scheme: "http" | "https", ip: string, port: number, path: string): string {
  const host = isIPv6(ip) ? `[${ip}]` : ip;
  const p = path.startsWith("/") ? path : `/${path}`;
  return `${scheme}://${host}:${port}${p}`;
}

/** Form-encodes fields the way the knock routes expect (`app=...&access_key=...`). */
export function formBody(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export interface KnockOptions {
  step: 1 | 2;
  url: string;
  /** Request body, sent with `curl -d` (form-encoded). Omit to send a GET. */
  body?: string;
  /** curl -m: default 1000 ms for step 1 (its reply is dropped), 3000 ms for step 2. */
  timeoutMs?: number;
  /** curl --local-port: a fixed source port, to find this connection again (e.g. in `ss` output). */
  localPort?: number;
  /** Extra request headers, each "Name: value" (curl -H). */
  headers?: readonly string[];
}

export interface KnockResult {
  readonly step: 1 | 2;
  /** curl's exit code: 0 ok, 28 timed out (the expected outcome of step 1), 7 could not connect, ... */
  readonly curlExit: number | undefined;
  /** True when curl gave up on its -m timeout (exit 28). */
  readonly timedOut: boolean;
  /** HTTP status (step 2 only); undefined when no response arrived. */
  readonly status: number | undefined;
  /** Response body (step 2 only; step 1 never sees one). */
  readonly body: string;
  /** The curl argv as run in the namespace (without the `ip netns exec` prefix). */
  readonly argv: readonly string[];
  readonly durationMs: number;
  readonly stderr: string;
}

function seconds(ms: number): string {
  return (Math.max(ms, 100) / 1000).toFixed(ms % 1000 === 0 ? 0 : 1);
}

/**
 * Sends a knock with real `curl` from `from`'s namespace.
 * Step 1: `curl -s -g -m 1 -d BODY http://...` — the reply is dropped by the firewall, so exit 28 is normal.
 * Step 2: `curl -s -g -k -m 3 -o - -w '%{http_code}' -d BODY https://...` — status and body.
 */
export async function knock(topo: Topology, from: HostName, opts: KnockOptions): Promise<KnockResult> {
  const timeoutMs = opts.timeoutMs ?? (opts.step === 1 ? 1000 : 3000);
  const argv: string[] = ["curl", "-s", "-g", "-m", seconds(timeoutMs)];
  if (opts.step === 2) argv.push("-k", "-o", "-", "-w", "%{http_code}");
  if (opts.localPort !== undefined) argv.push("--local-port", String(opts.localPort));
  for (const header of opts.headers ?? []) argv.push("-H", header);
  if (opts.body !== undefined) argv.push("-d", opts.body);
  argv.push(opts.url);
  const started = Date.now();
  const [file, ...args] = argv;
  const res = await topo.exec(from, file ?? "curl", args, { timeoutMs: timeoutMs + 10_000 });
  let status: number | undefined;
  let body = "";
  if (opts.step === 2) {
    const m = /(\d{3})$/.exec(res.stdout);
    const code = m?.[1] !== undefined ? Number(m[1]) : 0;
    status = code === 0 ? undefined : code;
    body = m !== null ? res.stdout.slice(0, -3) : res.stdout;
  } else {
    body = res.stdout;
  }
  return {
    step: opts.step,
    curlExit: res.exitCode,
    timedOut: res.exitCode === 28,
    status,
    body,
    argv,
    durationMs: Date.now() - started,
    stderr: res.stderr,
  };
}

/** The curl command of a knock as a shell-like string with every given secret masked (for display). */
export function describeKnock(result: Pick<KnockResult, "argv">, secrets: readonly string[], mask: (s: string) => string): string {
  return result.argv
    .map((arg) => {
      let shown = arg;
      for (const s of secrets) if (s.length > 0) shown = shown.split(encodeURIComponent(s)).join(mask(s)).split(s).join(mask(s));
      return /^[A-Za-z0-9_./:=@%-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, `'\\''`)}'`;
    })
    .join(" ");
}
