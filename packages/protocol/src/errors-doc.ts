/** docs/errors.md, generated from the catalogue (`pnpm docs`); a unit test fails when the page is stale. */
import { CLI_ERRORS, HELPER_ERRORS, HOOKS_ERRORS, INTERNAL_ERRORS, ROOT_ERRORS, SERVER_ERRORS, type ErrorCode } from "./errors-apps.js";
import { ERROR_FIXES } from "./error-fixes.js";
import { markdownTable } from "./markdown.js";

function table(title: string, intro: string, entries: Record<string, { exit?: number; code?: number; message: string }>, status: string): string[] {
  const rows = Object.entries(entries).map(([name, e]) => [`\`${name}\``, String(e.exit ?? e.code), `\`${e.message}\``, ERROR_FIXES[name as ErrorCode]]);
  return [`## ${title}`, "", intro, "", ...markdownTable(["Code", status, "Message", "Fix"], rows), ""];
}

export function renderErrorsPage(): string {
  return [
    "# Error codes",
    "",
    "<!-- Generated from packages/protocol/src/errors.ts, errors-apps.ts and error-fixes.ts by `pnpm docs`; do not edit. -->",
    "",
    "Every error a KnockPort process reports, by its stable code. A process that stops on one of them prints",
    "`<program>: <message>` (no stack trace) and exits with the status shown; an error with no code here is a bug",
    "and prints `<program>: unexpected error: <message>`, exit 1. Exit 0 is success.",
    "",
    ...table("Configuration, flags and the root helper", "Shared by knockport-helper, knockport-server, knockport and knockport-hooks: exit 2 is input to correct, exit 1 a system to fix.", ROOT_ERRORS, "Exit"),
    ...table("Server", "knockport-server at start-up (TOKEN_STORE_* later refuse one 2FA knock, logged, without ending the server).", SERVER_ERRORS, "Exit"),
    ...table("CLI", "`knockport` (admin commands, and `knockport knock`: exit 3-8 tell where the knock stopped).", CLI_ERRORS, "Exit"),
    ...table("Hooks runner", "knockport-hooks at start-up.", HOOKS_ERRORS, "Exit"),
    ...table("Helper RPC errors", "What the helper answers a JSON-RPC call with (`error.code`, and `error.data.name` = the code name); the caller decides what to do.", HELPER_ERRORS, "JSON-RPC code"),
    ...table("Internal", "Bugs or answers reported under another code; listed so that a log line can be looked up.", INTERNAL_ERRORS, "Exit"),
  ].join("\n");
}
