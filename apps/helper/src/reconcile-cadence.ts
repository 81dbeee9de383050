/**
 * How often the self-heal loop walks every lease element (HelperService.reconcile). The walk lists and
 * compares all of them, so its cost grows with their number (nft's listing plus the helper's parse and
 * compare: about 0.1-0.2 s at 10,000 elements, measured with `pnpm bench --profile`). Up to
 * WALK_ELEMENTS_PER_TICK elements it runs on every tick; beyond, one tick more per that many elements
 * (10,000: every 5th tick, 10 s), at most every MAX_WALK_INTERVAL_MS. Counted in elements, not in
 * measured time, so a loaded machine never slows the walk of a small table. The check that our table
 * is still there runs on every tick regardless.
 */
export const WALK_ELEMENTS_PER_TICK = 2000;
export const MAX_WALK_INTERVAL_MS = 30_000;

/** Milliseconds from the start of a walk over `elements` elements to the start of the next one. */
export function nextWalkDelayMs(elements: number, tickMs: number): number {
  return Math.min(tickMs * Math.max(1, Math.ceil(elements / WALK_ELEMENTS_PER_TICK)), Math.max(tickMs, MAX_WALK_INTERVAL_MS));
}
