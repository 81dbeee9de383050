// Writes packages/config/src/full-validators.generated.ts (run after building packages/config: `pnpm gen:validators`).
import { writeFileSync } from "node:fs";
import { fullValidatorsSource } from "../packages/config/dist/full-validators-codegen.js";

writeFileSync(new URL("../packages/config/src/full-validators.generated.ts", import.meta.url), fullValidatorsSource());
