import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { FULL_VALIDATOR_OPTIONS, fullValidatorsSource } from "../src/full-validators-codegen.js";
import * as generated from "../src/full-validators.generated.js";
import { appSchema, globalSchema } from "../src/schema.js";

type Validate = ((data: unknown) => boolean) & { errors?: unknown };
const table = generated as unknown as Record<string, Validate> & { GLOBAL_KEYS: string[]; APP_KEYS: string[] };

describe("the precompiled full-config validators", () => {
  it("are what schema.ts compiles to today (else: pnpm gen:validators)", () => {
    const committed = readFileSync(new URL("../src/full-validators.generated.ts", import.meta.url), "utf8");
    expect(committed === fullValidatorsSource(), "packages/config/src/full-validators.generated.ts is stale: run pnpm gen:validators").toBe(true);
  });

  it("name every key of both sections, in the schema's order", () => {
    expect(table.GLOBAL_KEYS).toEqual(Object.keys(globalSchema.properties));
    expect(table.APP_KEYS).toEqual(Object.keys(appSchema.properties));
  });

  it("answer as validators compiled at run time do, errors included", () => {
    const ajv = new Ajv(FULL_VALIDATOR_OPTIONS);
    const compiledGlobal = ajv.compile(globalSchema);
    const compiledApp = ajv.compile(appSchema);
    const globals: unknown[] = [
      { http_post_path: "/a1", https_post_path: "/b2", interface_ext: "eth0" },
      { http_post_path: "a1", https_post_path: "/" + "x".repeat(2000), interface_ext: "../../x", allow_missing_interfaces: ["eth1", "eth1"], extra: 1 },
      { http_post_path: 5, cluster: { url: "redis://", key_prefix: "k p", tls: { ca_file: "" } }, "2fa_skew_periods": 3 },
      null,
      [],
    ];
    const apps: unknown[] = [
      { port: 22, access_key_http: ["0123456789"], access_key_https: ["abcdefghij"], duration: 60 },
      { port: 0, access_key_http: [], access_key_https: ["short"], duration: 1.5, protocol: "icmp", on_open: [""], masquerade: "yes" },
      { port: 70000, access_key_http: ["é".repeat(12)], access_key_https: "x", duration: 31622401, max_leases: 0 },
    ];
    for (const doc of globals) {
      expect(table.global!(doc)).toBe(compiledGlobal(doc));
      expect(table.global!.errors).toEqual(compiledGlobal.errors);
    }
    for (const doc of apps) {
      expect(table.app!(doc)).toBe(compiledApp(doc));
      expect(table.app!.errors).toEqual(compiledApp.errors);
    }
    // one per key too: the interface name's pattern, a key length counted in characters
    table.GLOBAL_KEYS.forEach((key, i) => {
      const compiled = ajv.compile((globalSchema.properties as Record<string, object>)[key] as object);
      for (const value of ["..", "eth0", 7, ["a", "a"], "é".repeat(64)]) expect(table[`g${i}`]!(value), `${key} ${JSON.stringify(value)}`).toBe(compiled(value));
    });
    table.APP_KEYS.forEach((key, i) => {
      const compiled = ajv.compile((appSchema.properties as Record<string, object>)[key] as object);
      for (const value of ["tcp", 22, ["0123456789"], true, "é".repeat(11)]) expect(table[`a${i}`]!(value), `${key} ${JSON.stringify(value)}`).toBe(compiled(value));
    });
  });
});
