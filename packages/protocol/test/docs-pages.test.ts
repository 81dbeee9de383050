import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GENERATED_PAGES } from "../src/docs-pages.js";
import { root } from "./sources.js";

describe("generated pages", () => {
  it.each(GENERATED_PAGES.map((p) => [p.path, p.render] as const))("%s is the page generated from its catalogue (run pnpm docs when this fails)", (path, render) => {
    expect(readFileSync(join(root, path), "utf8")).toBe(render());
  });
});
