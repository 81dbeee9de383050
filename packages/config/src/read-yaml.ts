import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { ConfigError } from "./errors.js";

const MAX_CONFIG_BYTES = 1024 * 1024;

/** The file's YAML document (1.2 core types); a ConfigError naming the file for anything else. */
export function readYaml(file: string): unknown {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_CONFIG_BYTES) {
      throw new ConfigError("CONFIG_INVALID", file, [`${file}: file is larger than 1 MiB; is this the right file?`]);
    }
    text = buf.toString("utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new ConfigError("CONFIG_NOT_FOUND", file, [
        `${file}: no such file; pass the config with -c/--config (see config/config.example.yaml)`,
      ]);
    }
    throw new ConfigError("CONFIG_UNREADABLE", file, [
      `${file}: cannot read (${code ?? "error"}); check the path and its permissions`,
    ]);
  }
  try {
    return yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: file, json: false });
  } catch (err) {
    const mark = (err as { mark?: { line: number; column: number } }).mark;
    const where = mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : "";
    const reason = (err as { reason?: string }).reason ?? "invalid YAML";
    throw new ConfigError("CONFIG_YAML", file, [`${file}: YAML syntax error${where}: ${reason}; fix the file's syntax`]);
  }
}

/** A value as the admin wrote it, short; numbers as themselves (JSON would print NaN as null). */
export function show(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "string" && value.length > 50) {
    return `${JSON.stringify(value.slice(0, 40))}... (${value.length} characters)`;
  }
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
