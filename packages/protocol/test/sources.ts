import { readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Every non-test .ts file under apps/*\/src and packages/*\/src (packages/testbed is test code). */
export function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) out.push(p);
    }
  };
  for (const top of ["apps", "packages"]) {
    for (const pkg of readdirSync(join(root, top))) {
      const src = join(root, top, pkg, "src");
      if (pkg !== "testbed" && statSync(join(root, top, pkg)).isDirectory() && readdirSync(join(root, top, pkg)).includes("src")) walk(src);
    }
  }
  return out;
}
