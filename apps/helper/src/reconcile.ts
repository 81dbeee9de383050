import { findApp } from "@knockport/config/firewall";
import { httpsSetName, serviceSetName } from "@knockport/firewall";
import { ipFamily, parseIpAddress, type IpAddress, logEvent } from "@knockport/protocol";
import type { KernelElement, SetChange } from "./backend.js";
import type { HelperContext } from "./helper-context.js";
import { elementDeadline, grantChange } from "./lease-changes.js";
import type { Lease } from "./leases.js";

/** How far an element's kernel deadline may differ from its lease's before reconciliation resets it. */
export const RECONCILE_TOLERANCE_MS = 2500;

/** A kernel element of one of our sets, its address in canonical form; `key` is `<set>|<ip>`. */
interface OurElement extends KernelElement {
  readonly ip: IpAddress;
  readonly key: string;
}

/** Per-element counters from the last kernel listing, by `<set>|<ip>`. */
export interface CounterReading {
  readonly atMs: number;
  readonly byElement: ReadonlyMap<string, Pick<KernelElement, "packets" | "bytes">>;
}

export interface ReconcileCounts {
  added: number;
  retimed: number;
  removed: number;
}

/**
 * Keeps the kernel's lease elements in line with the book and the clock: `reconcile` corrects them
 * element by element while our rules are in place, `reinstall` re-applies everything once they are gone.
 */
export class Reconciler {
  /** Elements the last reconcile listed (sets the walk's cadence). */
  lastWalkElements = 0;
  /** Counters as the last reconciliation listed them (list() shows them, no kernel call of its own). */
  counters: CounterReading | undefined;

  constructor(private readonly ctx: HelperContext) {}

  /**
   * Re-apply the whole firewall with every live lease, after our table / chains vanished (`nft flush
   * ruleset`, `iptables -F -X`, a VyOS commit). Not serialised with the group committer: a grant
   * committed in the same few milliseconds may have to be knocked again (it is in the book, so the next
   * reinstall or restart puts it back).
   */
  async reinstall(reason?: string): Promise<void> {
    const { ctx } = this;
    const now = ctx.clock.now();
    const live = ctx.book.live(now);
    await ctx.firewall.install(live.map((l) => grantChange(ctx, l, now)));
    this.counters = undefined; // fresh sets: every counter restarted at 0
    ctx.counts.reinstalls += 1;
    live.forEach((l) => ctx.closeOnTime(l));
    logEvent(ctx.log, "warn", "firewall.reinstalled",
      { audit: true, type: ctx.firewall.type, restored: live.length, ...(reason === undefined ? {} : { reason }) },
      `${reason ?? "the firewall rules were gone (flushed from outside)"}; re-applied with the live leases`,
    );
  }

  /**
   * Changes that make the kernel's lease elements match the book and the clock: live leases missing from
   * the kernel are added with their remaining time, elements that would end more than
   * RECONCILE_TOLERANCE_MS before or after their lease (a hand-made `timeout 1h`, an element without a
   * timeout) are set to the remaining time, and elements no lease accounts for (strays) are removed.
   * `add` after `delete` and set semantics mean nothing is ever duplicated.
   */
  private reconcileChanges(kernel: readonly OurElement[], nowMs: number): ReconcileCounts & { changes: SetChange[]; rounded: Lease[] } {
    const wanted = new Map<string, { change: SetChange; deadlineMs: number; leases: Lease[] }>();
    for (const l of this.ctx.book.live(nowMs)) {
      if (!findApp(this.ctx.config, l.app)) continue;
      const change = grantChange(this.ctx, l, nowMs);
      const key = `${change.set}|${change.ip}`;
      const w = wanted.get(key);
      if (w) w.leases.push(l);
      else wanted.set(key, { change, deadlineMs: elementDeadline(this.ctx, l, nowMs), leases: [l] });
    }
    const counts = { added: 0, retimed: 0, removed: 0 };
    const rounded: Lease[] = [];
    const changes: SetChange[] = [];
    const seen = new Set<string>();
    for (const e of kernel) {
      seen.add(e.key);
      const w = wanted.get(e.key);
      if (!w) {
        changes.push({ op: "revoke", set: e.set, ip: e.ip });
        counts.removed += 1;
      } else if (Math.abs(nowMs + e.expiresInMs - w.deadlineMs) > RECONCILE_TOLERANCE_MS || !Number.isFinite(e.expiresInMs)) {
        changes.push(w.change);
        rounded.push(...w.leases);
        counts.retimed += 1;
      }
    }
    for (const [key, w] of wanted) {
      if (seen.has(key)) continue;
      changes.push(w.change);
      rounded.push(...w.leases);
      counts.added += 1;
    }
    return { changes, rounded, ...counts };
  }

  /**
   * Reconcile kernel <-> book <-> clock (run by the self-heal loop while our table is in place). Returns
   * what was changed, or undefined when the backend cannot list its elements or the table is absent.
   * The kernel is read first; the changes are recomputed against the book inside the group commit, so a
   * grant or revoke between the listing and the commit is never undone (at worst re-applied as it is).
   */
  async reconcile(): Promise<ReconcileCounts | undefined> {
    const { firewall, clock, counts: stats, config } = this.ctx;
    if (firewall.listElements === undefined) return undefined;
    const sets = new Set<string>([httpsSetName(4), httpsSetName(6)]);
    for (const a of config.apps) for (const f of [4, 6] as const) sets.add(serviceSetName(a.name, f));
    const listed = await firewall.listElements(sets);
    if (listed === undefined) return undefined;
    const kernel = ourElements(listed);
    this.lastWalkElements = listed.length;
    // The listed elements themselves, not copies: a reading of 10,000 elements every 2 s stays cheap.
    this.counters = { atMs: clock.now(), byElement: new Map(kernel.filter((e) => e.packets !== undefined).map((e) => [e.key, e])) };
    stats.reconciliations += 1;
    if (this.reconcileChanges(kernel, clock.now()).changes.length === 0) return { added: 0, retimed: 0, removed: 0 };
    return this.ctx.committer.submit(() => {
      const { changes, rounded, ...counts } = this.reconcileChanges(kernel, clock.now());
      return {
        changes,
        finish: () => {
          rounded.forEach((l) => this.ctx.closeOnTime(l));
          stats.elementsAdded += counts.added;
          stats.elementsRetimed += counts.retimed;
          stats.elementsRemoved += counts.removed;
          if (changes.length > 0) {
            logEvent(this.ctx.log, "warn", "firewall.reconciled",
              { audit: true, type: firewall.type, ...counts },
              "the kernel's lease elements differed from the leases; corrected (missing re-added, wrong timeouts reset, strays removed)",
            );
          }
          return counts;
        },
      };
    });
  }
}

/**
 * Listed elements with canonical addresses (parsed once per listing). An address our sets cannot hold
 * in this form (e.g. ::ffff:a.b.c.d in a v6 set) is skipped: reconciliation leaves it to a reinstall.
 */
function ourElements(listed: readonly KernelElement[]): OurElement[] {
  const out: OurElement[] = [];
  for (const e of listed) {
    const ip = parseIpAddress(e.ip);
    if (ip && e.set.endsWith(`_v${ipFamily(ip)}`)) out.push({ ...e, ip, key: `${e.set}|${ip}` });
  }
  return out;
}
