/**
 * `knockport knock`: both steps from this machine, once or kept open (--keep). Settings in
 * knock-settings.ts, the network steps in knock-steps.ts, the keep-alive loop in knock-keep.ts.
 */
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { UsageError } from "@knockport/config";
import { KEEP_PROBE_TIMEOUT_MS, keepOpen, localAddressTowards } from "./knock-keep.js";
import { hostHeader, step1Body, step1Request, type KnockSettings } from "./knock-settings.js";
import { KnockFailure, checkServicePort, readToken, sendStep1, sendStep2 } from "./knock-steps.js";
import { EXIT } from "./knock-usage.js";

export * from "./knock-settings.js";
export * from "./knock-steps.js";
export * from "./knock-usage.js";

export interface KnockIo {
  out: (line: string) => void;
  err: (line: string) => void;
  stdin: NodeJS.ReadStream;
}

/** One knock's result: the address it went to and, from the step-2 answer, when the lease ends (unix ms) and for which address. */
export interface KnockOutcome {
  address: string;
  expiresAtMs: number | undefined;
  /** The address the server saw (behind a NAT: the router's public one); undefined from an older server. */
  seenAddress: string | undefined;
}

/** `expires=<unix seconds>` from a step-2 answer (`OK\nexpires=...\n`); undefined from an older server. */
export function parseExpires(body: string): number | undefined {
  const m = /^OK\n(?:[a-z]+=[^\n]*\n)*?expires=(\d{1,12})\n/.exec(body);
  return m?.[1] === undefined ? undefined : Number(m[1]) * 1000;
}

/** `address=<ip>` from a step-2 answer: the address the lease is for; undefined from an older server. */
export function parseSeenAddress(body: string): string | undefined {
  const m = /^OK\n(?:[a-z]+=[^\n]*\n)*?address=([0-9A-Fa-f.:]{2,45})\n/.exec(body);
  return m?.[1] !== undefined && isIP(m[1]) !== 0 ? m[1] : undefined;
}

function readCa(s: KnockSettings): Buffer | undefined {
  if (s.ca === undefined) return undefined;
  try {
    return readFileSync(s.ca);
  } catch (err) {
    throw new UsageError(`--ca ${s.ca}: cannot read (${(err as NodeJS.ErrnoException).code ?? "error"}); check the path`);
  }
}

/** Both steps once (`close`: step 2 asks the server to close the lease instead). Secrets are never printed. */
export async function knockOnce(s: KnockSettings, io: KnockIo, token: string | undefined, ca: Buffer | undefined, close: boolean): Promise<KnockOutcome> {
  let address: string;
  try {
    address = (await lookup(s.host, { family: s.family, verbatim: true })).address;
  } catch (err) {
    throw new KnockFailure(EXIT.STEP1_UNREACHABLE, `--host ${s.host}: cannot resolve it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }

  const request = step1Request(hostHeader(s.host, s.httpPort), s.httpPath, step1Body(s.app, s.httpKey, token));
  const step1 = await sendStep1(address, s.httpPort, request, s.step1WaitMs);
  const to = hostHeader(address, s.httpPort);
  if (step1.status === undefined) {
    io.out(`step 1: sent to ${to} (${Buffer.byteLength(request)} bytes, one packet); no answer, as designed`);
  } else if (step1.status === 200) {
    io.out(`step 1: sent to ${to}; answered 200 (no stealth firewall in front of this server?)`);
  } else if (step1.status === 403) {
    throw new KnockFailure(EXIT.STEP2_UNREACHABLE, `step 1: refused (403): wrong app, key or 2FA token, or the token was already used`);
  } else {
    throw new KnockFailure(EXIT.OTHER_ANSWER, `step 1: answered ${step1.status}${step1.status === 429 ? " (rate limited; wait a minute)" : ""}`);
  }

  const r = await sendStep2(address, s, ca, close);
  if (r.status === 403 || r.status === 404) {
    throw new KnockFailure(
      EXIT.STEP2_REFUSED,
      r.status === 403
        ? "step 2: refused (403): wrong --app or --https-key, or not the HTTPS key paired with the HTTP key (same position in the lists)"
        : "step 2: 404: wrong --https-path",
    );
  }
  if (r.status !== 200) {
    const why = r.status === 429 ? "rate limited; wait a minute" : r.status === 500 ? "the server could not change the port; see its log" : r.status === 400 ? "bad form (a server too old for close=1?)" : "unexpected";
    throw new KnockFailure(EXIT.OTHER_ANSWER, `step 2: answered ${r.status} (${why})`);
  }
  const expiresAtMs = close ? undefined : parseExpires(r.body);
  const seenAddress = close ? undefined : parseSeenAddress(r.body);
  const until = expiresAtMs === undefined ? "" : ` until ${new Date(expiresAtMs).toISOString()}`;
  const seen = seenAddress === undefined ? "" : ` (${seenAddress})`;
  io.out(close ? `step 2: ${s.app} closed for this address (200 OK)` : `step 2: ${s.app} opened for this address${seen}${until} (200 OK)`);
  return { address, expiresAtMs, seenAddress };
}

async function checkAfterKnock(s: KnockSettings, io: KnockIo, address: string): Promise<void> {
  if (s.check === undefined) return;
  const { port, protocol } = s.check;
  let state: "open" | "closed" | "silent" = "closed";
  for (let attempt = 0; attempt < 3 && state !== "open"; attempt += 1) state = await checkServicePort(address, port, protocol);
  if (state !== "open") {
    const hint = state === "silent" ? " (no answer; many UDP services, OpenVPN included, ignore unknown packets)" : "";
    throw new KnockFailure(EXIT.CHECK_FAILED, `check: ${protocol}/${port} on ${address} is ${state === "silent" ? "silent" : "closed"}${hint}`);
  }
  io.out(`check: ${protocol}/${port} on ${address} is open`);
}

/** The whole command; returns the exit code. With --keep it runs until SIGINT or SIGTERM. */
export async function runKnock(s: KnockSettings, io: KnockIo): Promise<number> {
  const token = s.totpPrompt ? await readToken(io.stdin, (p) => process.stderr.write(p)) : s.token;
  const ca = readCa(s);
  if (!s.keep) {
    const { address } = await knockOnce(s, io, token, ca, s.revoke);
    if (!s.revoke) await checkAfterKnock(s, io, address);
    return EXIT.OK;
  }
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    io.out(`keep: ${signal}, stopping`);
    stop.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await keepOpen({
      signal: stop.signal,
      log: io.out,
      warn: io.err,
      knock: async () => {
        const outcome = await knockOnce(s, io, undefined, ca, false);
        await checkAfterKnock(s, io, outcome.address);
        return outcome;
      },
      ...(s.revoke ? { revoke: async () => void (await knockOnce(s, io, undefined, ca, true)) } : {}),
      localAddress: (address) => localAddressTowards(address, s.httpPort),
      ...(s.check?.protocol === "tcp" && s.probeIntervalMs > 0
        ? { probe: { what: `tcp/${s.check.port}`, everyMs: s.probeIntervalMs, answers: async (address: string) => (await checkServicePort(address, s.check?.port ?? 0, "tcp", KEEP_PROBE_TIMEOUT_MS)) === "open" } }
        : {}),
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
