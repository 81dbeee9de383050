import type { ErrorObject } from "ajv";

export const JSONSCHEMA_ERRORS_MAX_DETAIL = 300;

/** Schema errors as "path message" text; values are never echoed back (they may be hostile or secret). */
export function describeSchemaErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return "invalid";
  return errors
    .map((e) => {
      const extra =
        e.keyword === "additionalProperties"
          ? ` (${String((e.params as { additionalProperty?: unknown }).additionalProperty).slice(0, 32)})`
          : "";
      return `${e.instancePath || "params"} ${e.message ?? "invalid"}${extra}`;
    })
    .join("; ");
}
