import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CLI_ERRORS, EXIT_ERRORS, HELPER_ERRORS, INTERNAL_ERRORS, ROOT_ERRORS, exitStatusOf } from "../src/errors-apps.js";
import { ERROR_FIXES } from "../src/error-fixes.js";
import { sources } from "./sources.js";

describe("error catalogue", () => {
  it("catalogues every error code the source declares", () => {
    const catalogued = new Set([...Object.keys(EXIT_ERRORS), ...Object.keys(INTERNAL_ERRORS), ...Object.keys(HELPER_ERRORS)]);
    const declared = new Set<string>();
    const patterns = [
      /readonly code = "([A-Z][A-Z0-9_]+)"/g,
      /new (?:ConfigError|UsedTokenStoreError|FirewallError|HelperError|HelperCallError)\(\s*"([A-Z][A-Z0-9_]+)"/g,
      /\| "([A-Z][A-Z0-9_]+)"/g, // members of ...ErrorCode unions
    ];
    for (const file of sources()) {
      const text = readFileSync(file, "utf8");
      for (const re of patterns) for (const m of text.matchAll(re)) declared.add(m[1]!);
    }
    expect(declared.size).toBeGreaterThan(20);
    expect([...declared].filter((c) => !catalogued.has(c))).toEqual([]);
  });

  it("every code has a fix, and names are unique across the parts", () => {
    const parts = [EXIT_ERRORS, INTERNAL_ERRORS, HELPER_ERRORS].map((p) => Object.keys(p));
    const all = parts.flat();
    expect(new Set(all).size).toBe(all.length);
    for (const code of all) expect(ERROR_FIXES[code as keyof typeof ERROR_FIXES], code).toMatch(/\S/);
    expect(Object.keys(ERROR_FIXES).sort()).toEqual([...all].sort());
  });

  it("keeps the documented exit statuses: 2 for configuration and flags, 3-8 for knock outcomes", () => {
    for (const code of ["USAGE", "CONFIG_NOT_FOUND", "CONFIG_UNREADABLE", "CONFIG_YAML", "CONFIG_INVALID"] as const) expect(ROOT_ERRORS[code].exit).toBe(2);
    expect(Object.values(CLI_ERRORS).map((e) => e.exit).filter((x) => x > 2)).toEqual([3, 4, 5, 6, 7, 8]);
    const rpc = Object.values(HELPER_ERRORS).map((e) => e.code);
    expect(new Set(rpc).size).toBe(rpc.length);
  });

  it("exitStatusOf picks the status by code and leaves anything uncatalogued to the caller", () => {
    const coded = (code: unknown): Error => Object.assign(new Error("x"), { code });
    expect(exitStatusOf(coded("CONFIG_INVALID"), ROOT_ERRORS)).toBe(2);
    expect(exitStatusOf(coded("INSTANCE_LOCKED"), ROOT_ERRORS)).toBe(1);
    expect(exitStatusOf(coded("KNOCK_TLS"), EXIT_ERRORS)).toBe(6);
    expect(exitStatusOf(coded("KNOCK_TLS"), ROOT_ERRORS)).toBeUndefined();
    for (const odd of ["ENOENT", "toString", "__proto__", 2, undefined]) expect(exitStatusOf(coded(odd), EXIT_ERRORS)).toBeUndefined();
    expect(exitStatusOf(null, EXIT_ERRORS)).toBeUndefined();
    expect(exitStatusOf("CONFIG_INVALID", EXIT_ERRORS)).toBeUndefined();
  });
});
