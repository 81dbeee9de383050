// `knockport status --json`, read strictly: a test fails on a malformed answer, not on a wrong guess.

export interface StatusLease {
  readonly app: string;
  readonly ip: string;
  readonly step: number;
  readonly port: number;
  readonly protocol: string;
  readonly expiresAt: string;
  readonly remainingSeconds: number;
  /** Per-lease counters, when the helper has read them. */
  readonly packets?: number;
  readonly bytes?: number;
}

/** The leases of a `knockport status --json` answer; throws on anything malformed. */
export function parseStatus(stdout: string): StatusLease[] {
  const parsed: unknown = JSON.parse(stdout);
  if (typeof parsed !== "object" || parsed === null || !Array.isArray((parsed as { leases?: unknown }).leases)) {
    throw new Error(`knockport status --json: no "leases" array in ${stdout.slice(0, 300)}`);
  }
  const leases = (parsed as { leases: unknown[] }).leases;
  return leases.map((l, i): StatusLease => {
    const o = (typeof l === "object" && l !== null ? l : {}) as Record<string, unknown>;
    const str = (k: string): string => {
      const v = o[k];
      if (typeof v !== "string") throw new Error(`knockport status --json: leases[${i}].${k} is not a string (${JSON.stringify(v)})`);
      return v;
    };
    const num = (k: string): number => {
      const v = o[k];
      if (typeof v !== "number") throw new Error(`knockport status --json: leases[${i}].${k} is not a number (${JSON.stringify(v)})`);
      return v;
    };
    return {
      app: str("app"),
      ip: str("ip"),
      step: num("step"),
      port: num("port"),
      protocol: str("protocol"),
      expiresAt: str("expiresAt"),
      remainingSeconds: num("remainingSeconds"),
      ...(o["packets"] === undefined ? {} : { packets: num("packets"), bytes: num("bytes") }),
    };
  });
}
