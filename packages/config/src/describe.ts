import type { ErrorObject } from "ajv";
import { ConfigError } from "./errors.js";
import { show } from "./read-yaml.js";
import { appSchema, globalSchema, KEY_HINTS } from "./schema.js";
import type { Problem } from "./firewall-parse.js";

/** What a secret value is, without the value. */
function showSecret(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : `a list of ${value.length}`;
  if (value === null) return "an empty value";
  if (typeof value === "string") return "a string; the value is not shown";
  if (typeof value === "number" || typeof value === "boolean") return `a YAML ${typeof value}; quote the key`;
  if (typeof value === "object") return "a mapping";
  return typeof value;
}

function valueAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const part of pointer.split("/").slice(1)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part.replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return node;
}

const KEY_ITEM_HINT = KEY_HINTS.access_key_item ?? "a key";

/**
 * Turn one ajv error into "key.path: what is wrong (got X); how to fix". Values under access-key
 * lists are never echoed: they are secrets and messages end up in logs.
 */
function describe(section: string, root: Record<string, unknown>, err: ErrorObject): string {
  const parts = err.instancePath
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const pathParts = [section, ...parts];
  if (err.keyword === "additionalProperties") {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    const known = Object.keys((section === "global" ? globalSchema : appSchema).properties).join(", ");
    return `${[...pathParts, extra].join(".")}: unknown key; remove it or check its spelling (known keys: ${known})`;
  }
  if (err.keyword === "required") {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    return `${[...pathParts, missing].join(".")}: required key is missing; add ${KEY_HINTS[missing] ?? "it"}`;
  }
  const key = parts[0] ?? section;
  const value = valueAt(root, err.instancePath);
  if (key.startsWith("access_key")) {
    const hint = parts.length > 1 ? KEY_ITEM_HINT : (KEY_HINTS[key] ?? `valid (${err.message ?? ""})`);
    return `${pathParts.join(".")}: must be ${hint} (got ${showSecret(value)})`;
  }
  return `${pathParts.join(".")}: must be ${KEY_HINTS[key] ?? `valid (${err.message ?? ""})`} (got ${show(value)})`;
}

/** The ConfigError listing every problem once, in the order found, each line naming the file. */
export function configInvalid(file: string, problems: readonly Problem[]): ConfigError {
  const lines = problems.map((p) => `${file}: ${typeof p === "string" ? p : describe(p.section, p.root, p.err)}`);
  return new ConfigError("CONFIG_INVALID", file, [...new Set(lines)]);
}
