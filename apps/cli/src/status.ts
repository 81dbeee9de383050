import { HelperClient } from "@knockport/helper-client";
import type { ListResult } from "@knockport/protocol";

export async function fetchLeases(socketPath: string): Promise<ListResult> {
  const client = new HelperClient({ socketPath, timeoutMs: 5000 });
  try {
    return await client.call("list", {});
  } finally {
    client.close();
  }
}

/** Columns whose cells are right-aligned (numbers). */
const NUMERIC = new Set(["PACKETS", "BYTES"]);

/**
 * The lease table of `knockport status`. PACKETS / BYTES: what the client sent that matched its lease's
 * set element, as the helper last read it (`-` when it has no reading for that element yet).
 */
export function formatLeaseTable(result: ListResult): string {
  if (result.leases.length === 0) return "no open leases\n";
  const header = ["APP", "STEP", "ADDRESS", "PORT", "REMAINING", "PACKETS", "BYTES", "EXPIRES"];
  const rows = [
    header,
    ...result.leases.map((l) => [
      l.app,
      l.step === 1 ? "1 (https)" : "2 (service)",
      l.ip,
      `${l.protocol}/${l.port}`,
      `${l.remainingSeconds.toFixed(1)}s`,
      l.packets === undefined ? "-" : String(l.packets),
      l.bytes === undefined ? "-" : String(l.bytes),
      l.expiresAt,
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => (NUMERIC.has(header[i]!) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
  if (result.countersAt !== undefined) lines.push(`counters read from the kernel at ${result.countersAt}; they restart at 0 when a lease is refreshed`);
  return `${lines.join("\n")}\n`;
}
