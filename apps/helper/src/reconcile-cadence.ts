/**
 * How often the self-heal loop walks every lease element (HelperService.reconcile). The walk lists and
 * compares all of them, so its cost grows with the number of leases (about 0.1-0.2 s of nft and helper
 * time at 10,000): it runs on every tick while it is cheap, and otherwise waits WALK_COST_FACTOR times
 * its last duration, so it never takes more than 1/WALK_COST_FACTOR of the time, nor waits longer than
 * MAX_WALK_INTERVAL_MS. The check that our table is still there runs on every tick regardless.
 */
export const WALK_COST_FACTOR = 25;
export const MAX_WALK_INTERVAL_MS = 30_000;

/** Milliseconds from the start of a walk that took `lastWalkMs` to the start of the next one. */
export function nextWalkDelayMs(lastWalkMs: number, tickMs: number): number {
  return Math.min(Math.max(tickMs, Math.ceil(lastWalkMs * WALK_COST_FACTOR)), MAX_WALK_INTERVAL_MS);
}
