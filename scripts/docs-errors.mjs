// Writes docs/errors.md from the error catalogue (run after building packages/protocol: `pnpm docs:errors`).
import { writeFileSync } from "node:fs";
import { renderErrorsPage } from "../packages/protocol/dist/errors-doc.js";

writeFileSync(new URL("../docs/errors.md", import.meta.url), renderErrorsPage());
