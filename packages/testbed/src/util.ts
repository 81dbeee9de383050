/** Small timing helpers. Every wait in the testbed is bounded. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Sleeps until `Date.now() >= epochMs` (returns at once when that moment has passed). */
export function sleepUntil(epochMs: number): Promise<void> {
  return sleep(epochMs - Date.now());
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than `undefined`, at most `timeoutMs`.
 * Returns the value, or `undefined` when the time ran out.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  const maxRounds = Math.ceil(timeoutMs / Math.max(1, intervalMs)) + 1;
  for (let round = 0; round < maxRounds; round++) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= end) break;
    await sleep(Math.min(intervalMs, end - Date.now()));
  }
  return undefined;
}

/** Masks a secret for display: the first 3 characters, then "…" and the length. */
export function maskSecret(secret: string): string {
  if (secret.length <= 4) return "***";
  return `${secret.slice(0, 3)}…(${secret.length})`;
}
