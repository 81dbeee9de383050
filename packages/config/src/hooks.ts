/**
 * Per-app command hooks (`on_open`, `on_close`): an argument vector, never a shell line. The helper
 * replaces placeholders inside each argument separately, so an address can never become a second
 * argument or a shell construct.
 */

export const HOOK_PLACEHOLDERS = ["ip", "port", "protocol", "duration", "app"] as const;
export type HookPlaceholder = (typeof HOOK_PLACEHOLDERS)[number];
export type HookValues = Record<HookPlaceholder, string>;

export { HOOK_MAX_ARG_LENGTH, HOOK_MAX_ARGS } from "./firewall-schema.js";

const PLACEHOLDER = /\{([^{}]*)\}/g;

/** What is wrong with a hook's argv (a message naming the fix), or undefined when it is usable. */
export function checkHookArgv(argv: readonly string[]): string | undefined {
  const program = argv[0];
  if (program === undefined) return "must list at least the program";
  if (!program.startsWith("/")) {
    return `the program must be an absolute path such as /usr/local/bin/open-port (got "${program.slice(0, 200)}"); no PATH lookup, no shell`;
  }
  if (program.includes("{")) return "the program (first item) cannot contain placeholders";
  for (const [i, arg] of argv.entries()) {
    if (arg.includes("\0")) return `item ${i}: must not contain a NUL character`;
    for (const m of arg.matchAll(PLACEHOLDER)) {
      if (!(HOOK_PLACEHOLDERS as readonly string[]).includes(m[1] ?? "")) {
        return `item ${i}: unknown placeholder "{${(m[1] ?? "").slice(0, 40)}}"; use ${HOOK_PLACEHOLDERS.map((p) => `{${p}}`).join(", ")}`;
      }
    }
  }
  return undefined;
}

/** The argv with placeholders replaced, argument by argument. */
export function expandHookArgv(argv: readonly string[], values: HookValues): string[] {
  return argv.map((arg) => arg.replace(PLACEHOLDER, (whole, name: string) => (name in values ? values[name as HookPlaceholder] : whole)));
}
