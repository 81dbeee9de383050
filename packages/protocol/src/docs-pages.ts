/** The pages generated from the catalogues: `pnpm docs` writes them (scripts/docs.mjs); a unit test fails when one is stale. */
import { renderErrorsPage } from "./errors-doc.js";
import { renderEventsPage } from "./events-doc.js";

export const GENERATED_PAGES: readonly { readonly path: string; readonly render: () => string }[] = [
  { path: "docs/errors.md", render: renderErrorsPage },
  { path: "docs/events.md", render: renderEventsPage },
];
