import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "../src");

/** The modules of this package a module loads at once: its value imports and re-exports (not `import type`, not `import()`). */
function staticImports(file: string): string[] {
  const text = readFileSync(join(SRC, file), "utf8");
  const found = [...text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"\.\/([^"]+)\.js";/gms)].map((m) => `${m[1]}.ts`);
  return [...new Set(found)];
}

function reachable(entries: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    todo.push(...staticImports(file));
  }
  return seen;
}

describe("the entries the root helper imports (./firewall, ./flags, ./accounts)", () => {
  it("load none of the server's reading: the full schema, loader, error wording, WAF trust, 2FA, cluster", () => {
    const loaded = reachable(["firewall.ts", "flags.ts", "accounts.ts"]);
    expect([...loaded].sort()).toEqual(["accounts.ts", "errors.ts", "firewall-parse.ts", "firewall-schema.ts", "firewall.ts", "flags.ts", "interfaces.ts", "read-yaml.ts"]);
  });

  it("the full index does reach them all (the walk itself sees imports)", () => {
    const loaded = reachable(["index.ts"]);
    for (const file of ["load.ts", "schema.ts", "describe.ts", "waf.ts", "cluster.ts", "destination.ts", "hooks.ts"]) expect(loaded, file).toContain(file);
  });
});
