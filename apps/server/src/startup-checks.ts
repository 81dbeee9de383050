import type { KnockportConfig } from "@knockport/config";
import { HelperCallError, type HelperClient } from "@knockport/helper-client";
import type { HelloResult } from "@knockport/protocol";
import type { Logger } from "pino";
import { logEvent } from "@knockport/protocol/events";

/** A start-up failure with a message for the operator (no stack trace). */
export class StartupError extends Error {
  readonly code = "STARTUP";
}

/** The helper protects ports from its own reading of the config; serving other ports would be unprotected. */
export function compareWithHelper(config: KnockportConfig, hello: HelloResult): string[] {
  const problems: string[] = [];
  if (hello.httpPort !== config.httpPort) problems.push(`helper protects HTTP port ${hello.httpPort}, server would serve ${config.httpPort}`);
  if (hello.httpsPort !== config.httpsPort) problems.push(`helper protects HTTPS port ${hello.httpsPort}, server would serve ${config.httpsPort}`);
  const mineWaf = config.waf ? `${config.waf.httpPort}/${config.waf.httpsPort}` : "off";
  const theirsWaf = hello.waf ? `${hello.waf.httpPort}/${hello.waf.httpsPort}` : "off";
  if (mineWaf !== theirsWaf) {
    problems.push(`helper's WAF ports (HTTP/HTTPS) are ${theirsWaf}, the server's ${mineWaf}; give both the same --waf-http-port and --waf-https-port`);
  }
  const mine = config.apps.map((a) => `${a.name}:${a.protocol}/${a.port}`).sort().join(", ");
  const theirs = hello.services.map((s) => `${s.app}:${s.protocol}/${s.port}`).sort().join(", ");
  if (mine !== theirs) problems.push(`helper's apps (${theirs}) differ from the server's (${mine})`);
  return problems;
}

/**
 * Asks the helper's hello until it answers, for about `budgetMs` in all. systemd starts the server
 * right after the helper's exec (Type=simple), before the helper's socket exists (a cold helper takes
 * about a second): every 25 ms for the first 2 s, so the server is up as soon as the helper is, then
 * every 500 ms. An attempt on an absent socket costs a failed connect, nothing more.
 */
export async function helloWithRetry(helper: Pick<HelperClient, "call">, log: Pick<Logger, "warn">, budgetMs = 10_000): Promise<HelloResult> {
  let last: unknown;
  let waited = 0;
  for (let i = 0; ; i += 1) {
    try {
      return await helper.call("hello", {});
    } catch (err) {
      last = err;
      if (i === 0) logEvent(log, "warn", "helper.waiting", { err: (err as Error).message }, "waiting for the helper");
    }
    if (waited >= budgetMs) break;
    const delayMs = waited < 2000 ? 25 : 500;
    await new Promise((r) => setTimeout(r, delayMs));
    waited += delayMs;
  }
  const why = last instanceof HelperCallError ? last.message : String(last);
  throw new StartupError(`cannot talk to knockport-helper: ${why}; start the helper first (or check --socket and its group)`);
}
