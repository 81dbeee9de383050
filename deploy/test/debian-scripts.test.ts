/**
 * The package's maintainer scripts name everything the package brings: `apt purge` deletes every
 * user and group of the sysusers file, `apt remove` disables every unit, an upgrade restarts every
 * running service. (test/e2e/systemd.test.ts checks the result under a real systemd.)
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const read = (path: string): string => readFileSync(join(DEPLOY, path), "utf8");
const sysusers = read("sysusers.d/knockport.conf").split("\n");
const declared = (kind: "u" | "g"): string[] => sysusers.filter((l) => l.startsWith(`${kind} `)).map((l) => l.split(/\s+/)[1]!);
const units = readdirSync(join(DEPLOY, "systemd")).filter((f) => /\.(service|timer)$/.test(f));
/** The words of the shell line that starts with `prefix` (a for loop's list, a command's arguments). */
const wordsOf = (script: string, prefix: RegExp): string[] => {
  const line = script.split("\n").find((l) => prefix.test(l.trim()));
  if (line === undefined) throw new Error(`no line matching ${String(prefix)}`);
  return line.trim().split(/[\s;]+/);
};

describe("Debian maintainer scripts", () => {
  it("postrm purge deletes every user and group of sysusers.d/knockport.conf", () => {
    const postrm = read("debian/postrm");
    expect(declared("u").length).toBeGreaterThan(0);
    expect(wordsOf(postrm, /^for user in /)).toEqual(expect.arrayContaining(declared("u")));
    expect(wordsOf(postrm, /^for group in /)).toEqual(expect.arrayContaining(declared("g")));
  });

  it("prerm disables every unit; postinst restarts every running service on upgrade", () => {
    expect(wordsOf(read("debian/prerm"), /^systemctl disable --now /)).toEqual(expect.arrayContaining(units));
    expect(wordsOf(read("debian/postinst"), /^for unit in /)).toEqual(expect.arrayContaining(units.filter((u) => u.endsWith(".service"))));
  });
});
