// The lifecycle every e2e file shares: a describe block per backend, one KnockPort stack (topology, helper,
// server) per block, started before its tests and stopped after them, with diagnostics for a failing test.
import { afterAll, beforeAll, beforeEach, describe } from "vitest";
import { Harness, type E2eCase, type Family, type HarnessOptions } from "./harness.js";
import type { FirewallKind } from "./testbed.js";

/** A block's backend, and its knocking family when the block names one (else the harness's default, IPv4). */
export interface KnockportCase {
  readonly firewall: FirewallKind;
  readonly family?: Family;
}

/** A block's stack: the Harness options but the backend and family, which the case gives. */
export type KnockportOptions = Omit<HarnessOptions, "firewall" | "family">;

/**
 * Declares `describe(title)` for each case: one backend (always runs), or a list of backends or backend x
 * family cases (one block each, e.g. `e2eFirewalls()`, `e2eMatrix()`; an empty list declares nothing).
 * `$firewall` and `$family` in the title stand for the case's.
 *
 * `body` declares the tests with the block's Harness and may add hooks of its own: its beforeAll runs once
 * the stack is up, its afterAll before the stack stops (vitest runs after-hooks in reverse order), its
 * beforeEach after the diagnostics are armed.
 */
export function describeKnockport(
  title: string,
  cases: FirewallKind | readonly (FirewallKind | E2eCase)[],
  options: KnockportOptions | ((c: KnockportCase) => KnockportOptions),
  body: (h: Harness, c: KnockportCase) => void,
): void {
  const list: KnockportCase[] = (typeof cases === "string" ? [cases] : cases).map((c) => (typeof c === "string" ? { firewall: c } : c));
  for (const c of list) {
    const name = title.replaceAll("$firewall", c.firewall).replaceAll("$family", String(c.family ?? 4));
    describe(name, () => {
      const base = typeof options === "function" ? options(c) : options;
      const h = new Harness({ ...base, firewall: c.firewall, ...(c.family !== undefined ? { family: c.family } : {}) });
      beforeAll(() => h.start());
      afterAll(() => h.stop());
      beforeEach((ctx) => h.diagnoseOnFailure(ctx));
      body(h, c);
    });
  }
}
