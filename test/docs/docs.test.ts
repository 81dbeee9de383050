import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { appSchema, globalSchema } from "../../packages/config/src/schema.js";

// The README stays a front page; everything else lives in docs/. These tests keep it so and keep
// every user-facing flag and config key documented somewhere.
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const README_MAX_LINES = 250;

const pages = [
  "README.md",
  ...(existsSync(join(root, "CONTRIBUTING.md")) ? ["CONTRIBUTING.md"] : []),
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const read = (page: string): string => readFileSync(join(root, page), "utf8");

/** Markdown without fenced code blocks and inline code, where brackets are not links. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, "").replace(/`[^`\n]*`/g, "");
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of text.replace(/^```[\s\S]*?^```/gm, "").split("\n")) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(text: string): string[] {
  return [...prose(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

describe("documentation", () => {
  it(`README.md has at most ${README_MAX_LINES} lines`, () => {
    const lines = read("README.md").split("\n").length - 1;
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it("every relative link in README.md, CONTRIBUTING.md and docs/ resolves, anchors included", () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const target of links(read(page))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const [path = "", anchor] = target.split("#");
        const file = path === "" ? join(root, page) : resolve(root, dirname(page), path);
        if (!existsSync(file)) {
          broken.push(`${page}: ${target} (no such file)`);
          continue;
        }
        if (anchor !== undefined && statSync(file).isFile() && file.endsWith(".md")) {
          if (!anchors(readFileSync(file, "utf8")).has(anchor)) broken.push(`${page}: ${target} (no such heading in ${relative(root, file)})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("README.md links every page under docs/", () => {
    const linked = new Set(links(read("README.md")).map((t) => t.split("#")[0]));
    const unlinked = pages.filter((p) => p.startsWith("docs/") && !linked.has(p));
    expect(unlinked).toEqual([]);
  });

  it("every ruleset shown in the docs equals the golden file it names", () => {
    const stale: string[] = [];
    let shown = 0;
    for (const page of pages) {
      for (const m of read(page).matchAll(/^<!-- golden: (\S+) -->\n```[a-z]*\n([\s\S]*?)^```$/gm)) {
        shown += 1;
        const golden = readFileSync(join(root, m[1]!), "utf8");
        if (m[2] !== (golden.endsWith("\n") ? golden : `${golden}\n`)) stale.push(`${page}: ${m[1]}`);
      }
    }
    expect(shown).toBeGreaterThan(0);
    expect(stale).toEqual([]);
  });

  const allDocs = pages.map(read).join("\n");

  it("every config key of the schema is documented", () => {
    const keys = [...Object.keys(globalSchema.properties), ...Object.keys(appSchema.properties)];
    expect(keys.length).toBeGreaterThan(20);
    const missing = keys.filter((k) => !new RegExp("`" + k + "`").test(allDocs));
    expect(missing).toEqual([]);
  });

  it("every command-line flag of the helper, the server and the CLI is documented", () => {
    const flags = new Set<string>();
    const appSources = ["apps/cli/src", "apps/helper/src", "apps/server/src"].flatMap((dir) =>
      readdirSync(join(root, dir))
        .filter((n) => n.endsWith(".ts"))
        .map((n) => `${dir}/${n}`),
    );
    // The flags the helper, the server and `knockport run` share are declared in the config package,
    // the backend flags of the helper and the CLI's firewall commands in the firewall package.
    for (const file of [...appSources, "packages/config/src/flags.ts", "packages/firewall/src/flags.ts"]) {
      {
        const text = read(file);
        // Usage lines ("  -c, --config FILE   ...") and parseArgs option declarations.
        for (const m of text.matchAll(/^\s+(?:-[A-Za-z0-9], )?--([a-z][a-z0-9-]+)/gm)) flags.add(m[1]!);
        for (const m of text.matchAll(/^\s*"?([a-z][a-z0-9-]+)"?: \{ type: "(?:string|boolean)"/gm)) flags.add(m[1]!);
      }
    }
    expect(flags.size).toBeGreaterThan(40);
    const missing = [...flags].filter((f) => !new RegExp(`--${f}(?![a-z0-9-])`).test(allDocs));
    expect(missing).toEqual([]);
  });
});
