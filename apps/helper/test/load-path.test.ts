import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The static import graph of the running helper (what Node loads before main() runs): type-only
// imports are erased and dynamic import() is loaded on demand, so neither counts.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const STATIC_IMPORT = /^(?:import|export)\s+(?!type\s)(?:[^"';]*?\sfrom\s+)?["']([^"']+)["']/gm;

function resolveImport(from: string, spec: string): string | undefined {
  if (spec.startsWith(".")) return resolve(dirname(from), spec.replace(/\.js$/, ".ts"));
  const m = /^@knockport\/([^/]+)(?:\/(.+))?$/.exec(spec);
  if (!m) return undefined; // node: built-ins and third-party packages
  const pkgDir = join(root, "packages", m[1]!);
  const exports = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).exports as Record<string, { source: string }>;
  const entry = exports[m[2] === undefined ? "." : `./${m[2]}`];
  if (!entry) throw new Error(`${spec}: no such export`);
  return join(pkgDir, entry.source);
}

function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0 && seen.size < 1000) {
    const file = todo.pop()!;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    for (const [, spec] of readFileSync(file, "utf8").matchAll(STATIC_IMPORT)) {
      const target = resolveImport(file, spec!);
      if (target) todo.push(target);
    }
  }
  return new Set([...seen].map((f) => relative(root, f)));
}

describe("the running helper's load path", () => {
  const loaded = staticGraph(join(root, "apps/helper/src/main.ts"));

  it("holds main and the service", () => {
    expect(loaded.has("apps/helper/src/main.ts")).toBe(true);
    expect(loaded.has("apps/helper/src/service.ts")).toBe(true);
  });

  it("loads no backend package until --firewall-type picks one (the factory imports it on demand)", () => {
    expect([...loaded].filter((f) => f.startsWith("packages/backend-")), "backend packages on the static path").toEqual([]);
  });

  it("loads neither the sudoers file nor its usage text (--help imports it)", () => {
    expect(loaded).not.toContain("packages/backends/src/sudoers.ts");
    expect(loaded).not.toContain("apps/helper/src/usage.ts");
    expect(loaded).not.toContain("packages/firewall/src/flags-usage.ts");
  });
});

describe("the nftables backend's load path", () => {
  const loaded = staticGraph(join(root, "packages/backend-nftables/src/runtime/backend.ts"));

  it("holds neither the iptables nor the VyOS backend, nor any sudoers lines", () => {
    expect([...loaded].filter((f) => /backend-(iptables|vyos)|sudoers/.test(f))).toEqual([]);
    expect(loaded.has("packages/backend-nftables/src/render/ruleset.ts")).toBe(true);
  });

  it("imports forwarding, custom-table and uninstall code only on demand", () => {
    for (const f of ["render/forward.ts", "render/custom.ts", "render/index.ts", "runtime/custom.ts", "runtime/uninstall.ts"]) {
      expect(loaded, f).not.toContain(`packages/backend-nftables/src/${f}`);
    }
  });
});

describe("what a config or flag does not use stays unloaded", () => {
  const loaded = staticGraph(join(root, "apps/helper/src/main.ts"));

  it("conntrack (close_established), forwarding checks, the sudo checks, the interface watch, the shutdown cleanup", () => {
    for (const f of ["conntrack", "forwarding", "privilege", "interface-watch", "shutdown"]) {
      expect(loaded, f).not.toContain(`apps/helper/src/${f}.ts`);
    }
    expect(loaded).toContain("apps/helper/src/interfaces.ts"); // the start's check runs every time
  });

  it("no result schema: those are the clients' (@knockport/protocol/client)", () => {
    expect(loaded).toContain("packages/protocol/src/methods.ts");
    expect(loaded).not.toContain("packages/protocol/src/results.ts");
    expect(loaded).not.toContain("packages/protocol/src/client.ts");
  });
});
