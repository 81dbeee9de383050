// Writes the pages generated from the catalogues (docs/errors.md, docs/events.md); run by `pnpm docs`
// after building packages/protocol.
import { writeFileSync } from "node:fs";
import { GENERATED_PAGES } from "../packages/protocol/dist/docs-pages.js";

for (const page of GENERATED_PAGES) writeFileSync(new URL(`../${page.path}`, import.meta.url), page.render());
