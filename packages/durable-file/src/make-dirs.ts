import { mkdirSync } from "node:fs";
import { join, resolve, sep } from "node:path";

/**
 * mkdir -p with a bounded walk (one mkdir per path component). Node's own recursive mkdirSync can
 * spin forever on some paths (e.g. below /proc), which a daemon's start must never do.
 */
export function makeDirs(dir: string, mode: number): void {
  const parts = resolve(dir).split(sep).filter((p) => p !== "");
  let path: string = sep;
  for (const part of parts) {
    path = join(path, part);
    try {
      mkdirSync(path, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}
