import type { Logger } from "./log.js";
import { HelperError, logEvent } from "@knockport/protocol";
import type { FirewallBackend, SetChange } from "./backend.js";

/**
 * One request's effect, prepared against the lease book: the book is already changed, the firewall
 * not yet. `undoBook` reverts the book (absent: nothing to revert); `finish` runs once the firewall
 * took the change.
 */
export interface PreparedChange<R> {
  readonly changes: readonly SetChange[];
  undoBook?(): void;
  finish(): R;
}

interface Waiting {
  prepare: () => PreparedChange<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Requests waiting past this are refused with OVERLOADED, so a flood cannot grow memory. */
const MAX_WAITING = 4096;
/** Requests applied in one firewall transaction at most. */
const MAX_BATCH = 512;

/**
 * Applies lease changes in groups: while one firewall transaction runs, new requests queue up
 * and the next transaction carries all of them. Starting `nft` costs
 * milliseconds, so under load this turns N process starts into one. Requests are prepared in
 * arrival order against the book, so a step 2 may follow its step 1 in the same group. If a
 * group's transaction fails, each request is retried alone so one bad change cannot fail the
 * others.
 */
export class GroupCommitter {
  private readonly waiting: Waiting[] = [];
  private draining = false;

  constructor(
    private readonly firewall: FirewallBackend,
    private readonly log: Logger,
  ) {}

  submit<R>(prepare: () => PreparedChange<R>): Promise<R> {
    if (this.waiting.length >= MAX_WAITING) return Promise.reject(new HelperError("OVERLOADED"));
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ prepare, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0, MAX_BATCH);
        const committed = await this.commitGroup(group);
        if (!committed) for (const item of group) await this.commitGroup([item]);
      }
    } finally {
      this.draining = false;
    }
  }

  /** False when the firewall refused a multi-request group: the caller retries one by one. */
  private async commitGroup(group: readonly Waiting[]): Promise<boolean> {
    const prepared: { item: Waiting; change: PreparedChange<unknown> }[] = [];
    for (const item of group) {
      try {
        prepared.push({ item, change: item.prepare() });
      } catch (err) {
        item.reject(err); // validation failures (unknown app, step 1 missing) touch nothing
      }
    }
    if (prepared.length === 0) return true;
    try {
      await this.firewall.apply(prepared.flatMap((p) => p.change.changes));
    } catch (err) {
      for (const p of [...prepared].reverse()) p.change.undoBook?.();
      if (prepared.length > 1) return false;
      logEvent(this.log, "error", "firewall.failed", { err: (err as Error).message }, "firewall change failed; nothing opened");
      for (const p of prepared) p.item.reject(new HelperError("FIREWALL_FAILED"));
      return true;
    }
    for (const p of prepared) {
      try {
        p.item.resolve(p.change.finish());
      } catch (err) {
        p.item.reject(err);
      }
    }
    return true;
  }
}
