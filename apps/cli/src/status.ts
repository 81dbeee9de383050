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

export function formatLeaseTable(result: ListResult): string {
  if (result.leases.length === 0) return "no open leases\n";
  const rows = [
    ["APP", "STEP", "ADDRESS", "PORT", "REMAINING", "EXPIRES"],
    ...result.leases.map((l) => [
      l.app,
      l.step === 1 ? "1 (https)" : "2 (service)",
      l.ip,
      `${l.protocol}/${l.port}`,
      `${l.remainingSeconds.toFixed(1)}s`,
      l.expiresAt,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}
