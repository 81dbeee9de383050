import { runCommand, DIRECT, privilegeHint, type Privilege } from "@knockport/firewall/run";
import { conntrackDeleteArgs } from "@knockport/firewall/conntrack";
import type { Logger } from "./log.js";
import type { FirewallApp as AppConfig } from "@knockport/config/firewall";
import type { IpAddress } from "@knockport/protocol";
import { logEvent } from "@knockport/protocol";

export { ConntrackMissingError, conntrackDeleteArgs, locateConntrackFor } from "@knockport/firewall/conntrack";

const CONNTRACK_TIMEOUT_MS = 5000;
/** Deletions waiting at once; more are dropped and logged (the firewall has closed the port anyway). */
const MAX_PENDING = 10_000;

/**
 * Deletes a client's conntrack entries for an app when its lease ends (`close_established`). One
 * deletion at a time (they take milliseconds; a burst of expiries must not start hundreds of processes).
 * Never throws: a failure is logged and the lease ends anyway (the firewall has already closed the port).
 */
export class ConntrackCutter {
  private chain: Promise<unknown> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly log: Logger,
    private readonly conntrackPath: string | undefined,
    private readonly privilege: Privilege = DIRECT,
  ) {}

  /** Whether the app's flows are cut when its leases end. */
  applies(app: AppConfig): boolean {
    return app.closeEstablished && this.conntrackPath !== undefined;
  }

  /** Deletes the entries; resolves with how many were deleted, or undefined when it failed or does not apply. */
  cut(app: AppConfig, ip: IpAddress, reason: string): Promise<number | undefined> {
    const path = this.conntrackPath;
    if (!app.closeEstablished || path === undefined) return Promise.resolve(undefined);
    if (this.pending >= MAX_PENDING) {
      logEvent(this.log, "warn", "conntrack.dropped", { app: app.name, ip, reason }, `more than ${MAX_PENDING} conntrack deletions waiting; skipped`);
      return Promise.resolve(undefined);
    }
    this.pending += 1;
    const run = this.chain.then(() => this.exec(path, app, ip, reason));
    this.chain = run.finally(() => {
      this.pending -= 1;
    });
    return run;
  }

  /** Waits for every queued deletion (tests, clean stop). */
  async idle(): Promise<void> {
    for (let i = 0; i < 100 && this.pending > 0; i += 1) await this.chain;
  }

  private async exec(path: string, app: AppConfig, ip: IpAddress, reason: string): Promise<number | undefined> {
    const cmd = this.privilege.wrap(path, conntrackDeleteArgs(app, ip));
    const fields = { app: app.name, ip, reason, port: app.port, protocol: app.protocol };
    try {
      const r = await runCommand(cmd.file, cmd.args, { stdin: "ignore", timeout: CONNTRACK_TIMEOUT_MS, maxBuffer: 64 * 1024 });
      const stderr = String(r.stderr ?? "").slice(0, 1000);
      const deleted = Number(/(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(stderr)?.[1] ?? Number.NaN);
      // conntrack exits 1 when no entry matched: nothing to cut is not a failure.
      if ((r.exitCode === 0 || r.exitCode === 1) && !r.timedOut && Number.isFinite(deleted)) {
        logEvent(this.log, "info", "conntrack.deleted", { audit: true, ...fields, deleted }, `deleted ${deleted} conntrack entr${deleted === 1 ? "y" : "ies"} of ${ip} for ${app.name}`);
        return deleted;
      }
      const why = r.timedOut ? `timed out after ${CONNTRACK_TIMEOUT_MS} ms` : `exit ${String(r.exitCode)}`;
      logEvent(this.log, "error", "conntrack.failed",
        { audit: true, ...fields, error: why, stderr },
        `could not delete the conntrack entries of ${ip} for ${app.name} (${why})${privilegeHint(this.privilege, stderr)}: ${stderr}`,
      );
    } catch (err) {
      logEvent(this.log, "error", "conntrack.failed", { audit: true, ...fields, error: (err as Error).message }, `could not run conntrack: ${(err as Error).message}`);
    }
    return undefined;
  }
}
