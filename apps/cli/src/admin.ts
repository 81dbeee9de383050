/**
 * `knockport grant` and `knockport revoke`: an admin opens or closes an app's port for an address
 * by hand, over the helper's admin socket (root, or a member of its --admin-socket-group).
 */
import { isIP } from "node:net";
import { UsageError } from "@knockport/config";
import { HelperCallError, HelperClient } from "@knockport/helper-client";
import { MAX_GRANT_SECONDS, type CloseResult, type GrantResult } from "@knockport/protocol";

/** Hook commands may take up to their own timeout (10 s); leave room for them. */
const ADMIN_CALL_TIMEOUT_MS = 30_000;

export interface AdminTarget {
  app: string;
  ip: string;
}

/** Flag values checked before anything is sent, with the flag named in the message. */
export function parseAdminTarget(app: string | undefined, ip: string | undefined, command: string): AdminTarget {
  if (!app) throw new UsageError(`--app is required (e.g. knockport ${command} --app ssh --ip 198.51.100.7)`);
  if (!ip) throw new UsageError(`--ip is required (e.g. knockport ${command} --app ${app} --ip 198.51.100.7)`);
  if (isIP(ip) === 0) throw new UsageError(`--ip: must be an IPv4 or IPv6 address such as 198.51.100.7 or 2001:db8::7 (got "${ip}")`);
  return { app, ip };
}

export function parseDurationFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d{1,9}$/.test(value) || n < 1 || n > MAX_GRANT_SECONDS) {
    throw new UsageError(`--duration: must be whole seconds 1-${MAX_GRANT_SECONDS}, at most the app's configured duration (got "${value}")`);
  }
  return n;
}

/** Turn the helper's named errors into messages that say what to do. */
function explain(err: unknown, target: AdminTarget, duration?: number): never {
  if (err instanceof HelperCallError && err.code === "HELPER_REJECTED") {
    switch (err.helperError) {
      case "UNKNOWN_APP":
        throw new AdminError(`--app ${target.app}: no such app in the helper's config; see knockport check-config -c FILE`);
      case "INVALID_ADDRESS":
        throw new AdminError(`--ip ${target.ip}: not a unicast address the firewall can hold`);
      case "DURATION_TOO_LONG":
        throw new AdminError(
          `--duration ${duration}: longer than ${target.app}'s configured duration; use a shorter --duration or raise ${target.app}.duration in the config (and restart the helper)`,
        );
      default:
        break;
    }
  }
  if (err instanceof HelperCallError && err.code === "HELPER_UNREACHABLE") {
    throw new AdminError(`${err.message}; is knockport-helper running, and are you root (or in its --admin-socket-group)?`);
  }
  throw err;
}

export class AdminError extends Error {
  readonly code = "ADMIN_FAILED";
}

async function withClient<R>(socketPath: string, fn: (client: HelperClient) => Promise<R>): Promise<R> {
  const client = new HelperClient({ socketPath, timeoutMs: ADMIN_CALL_TIMEOUT_MS });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export async function grantLease(socketPath: string, target: AdminTarget, durationSeconds?: number): Promise<GrantResult> {
  return withClient(socketPath, (c) =>
    c.call("grant", { ...target, ...(durationSeconds !== undefined ? { durationSeconds } : {}) }).catch((err: unknown) => explain(err, target, durationSeconds)),
  );
}

export async function revokeLease(socketPath: string, target: AdminTarget): Promise<CloseResult> {
  return withClient(socketPath, (c) => c.call("close", target).catch((err: unknown) => explain(err, target)));
}

export function formatGrant(r: GrantResult): string {
  const rows = [
    ["app", r.app],
    ["address", r.ip],
    ["open for", `${r.durationSeconds}s${r.refreshed ? " (refreshed an existing lease)" : ""}`],
    ["until", r.expiresAt],
  ];
  return `${rows.map(([k, v]) => `${k!.padEnd(9)} ${v}`).join("\n")}\n`;
}

export function formatRevoke(target: AdminTarget, r: CloseResult): string {
  const what = r.closed === 0 ? `no live lease of ${target.app} for ${target.ip}; nothing was open` : `closed ${r.closed} lease(s) of ${target.app} for ${target.ip}`;
  return `${what}\n`;
}
