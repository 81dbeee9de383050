import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { appSchema, globalSchema, loadConfig, parseConfig } from "../src/index.js";
import yaml from "js-yaml";
import { problemsOf } from "./helpers.js";

const EXAMPLE = fileURLToPath(new URL("../../../config/config.example.yaml", import.meta.url));

describe("config/config.example.yaml", () => {
  it("is refused for exactly its two placeholder paths, and nothing else", () => {
    expect(problemsOf(() => loadConfig(EXAMPLE))).toEqual([
      `${EXAMPLE}: global.http_post_path: "/CHANGE-ME-1" is a published sample path; choose your own secret path`,
      `${EXAMPLE}: global.https_post_path: "/CHANGE-ME-2" is a published sample path; choose your own secret path`,
    ]);
  });

  it("is valid once the paths are changed, with the documented apps", () => {
    const text = readFileSync(EXAMPLE, "utf8").replaceAll("/CHANGE-ME-1", "/my-knock-1").replaceAll("/CHANGE-ME-2", "/my-knock-2");
    const config = parseConfig(yaml.load(text, { schema: yaml.CORE_SCHEMA }), EXAMPLE);
    expect(config.httpPort).toBe(8080);
    expect(config.httpsPort).toBe(8443);
    expect(config.apps.map((a) => [a.name, a.protocol, a.port, a.destination.kind])).toEqual([
      ["openvpn", "udp", 1194, "local"],
      ["ssh", "tcp", 2222, "local"],
    ]);
    expect(config.apps[0]?.durationSeconds).toBe(86400);
  });

  it("documents every key the schema knows", () => {
    const text = readFileSync(EXAMPLE, "utf8");
    const keys = [...Object.keys(globalSchema.properties), ...Object.keys(appSchema.properties)];
    for (const key of keys) expect(text, key).toMatch(new RegExp(`^\\s*#?\\s*${key}:`, "m"));
  });
});
