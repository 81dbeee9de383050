import { UsageError, parseWafPortFlags, type WafFlags } from "./flags.js";
import { WAF_TRUSTED_IP_HINT, WAF_TRUSTED_IPS_MAX, parseTrustedProxy } from "./waf.js";

/**
 * Node options for the helper and the server (deploy/systemd's units, `knockport run`, the testbed):
 * V8's young generation grows to 2 x 16 MB by default; at 2 MB per semi-space the two daemons hold
 * about 40 MB less with 10,000 leases (`pnpm bench`), for a few more, shorter scavenges.
 */
export const DAEMON_NODE_OPTIONS: readonly string[] = ["--max-semi-space-size=2"];

/**
 * The server's: also `--lite-mode` (no optimizing compiler, feedback allocated lazily), 15 MB less idle
 * RSS (72 -> 57 MB). Knocks are rare, so its code runs unoptimised anyway; the step-2 answer against the
 * floor did not change measurably, and its start overlaps the helper's (docs/benchmarks.md, "Against the floor").
 * Lite mode turns WebAssembly off (nothing here uses it); `--no-expose-wasm` says so, else node warns at every start.
 */
export const SERVER_NODE_OPTIONS: readonly string[] = [...DAEMON_NODE_OPTIONS, "--lite-mode", "--no-expose-wasm"];

/** Parse the WAF flags strictly (each bad value names its flag; the config loader cross-checks the ports). */
export function parseWafFlags(values: { "waf-http-port"?: string | undefined; "waf-https-port"?: string | undefined; "waf-trusted-ips"?: string[] | undefined }): WafFlags {
  let wafTrustedIps: string[] | undefined;
  for (const list of values["waf-trusted-ips"] ?? []) {
    for (const raw of list.split(",")) {
      const entry = raw.trim();
      if (parseTrustedProxy(entry) === undefined) {
        throw new UsageError(`--waf-trusted-ips: "${entry.slice(0, 60)}" is not ${WAF_TRUSTED_IP_HINT}`);
      }
      (wafTrustedIps ??= []).push(entry);
    }
  }
  if ((wafTrustedIps?.length ?? 0) > WAF_TRUSTED_IPS_MAX) {
    throw new UsageError(`--waf-trusted-ips: at most ${WAF_TRUSTED_IPS_MAX} entries (got ${wafTrustedIps?.length}); use networks such as 10.0.0.0/24`);
  }
  return { ...parseWafPortFlags(values), wafTrustedIps };
}
