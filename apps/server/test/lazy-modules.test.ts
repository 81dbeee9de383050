import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
// Prints, when the process exits, every CommonJS module it loaded (ioredis and prom-client are CommonJS).
const LIST_CJS =
  "data:text/javascript,import{createRequire}from'node:module';const r=createRequire('/probe.js');process.on('exit',()=>process.stderr.write(JSON.stringify(Object.keys(r.cache))));";

describe("modules a config does not use are not loaded at start", () => {
  it("knockport-server's static imports leave out ioredis (cluster mode) and prom-client (--metrics-port)", () => {
    expect(existsSync(MAIN), `${MAIN} is missing: run pnpm build first`).toBe(true);
    const run = spawnSync(process.execPath, ["--import", LIST_CJS, MAIN, "--help"], { encoding: "utf8", timeout: 20_000 });
    expect(run.status).toBe(0);
    const loaded = JSON.parse(run.stderr) as string[];
    // the probe works: fastify (CommonJS, always needed) is in the list
    expect(loaded.some((f) => f.includes("/node_modules/fastify/"))).toBe(true);
    expect(loaded.filter((f) => /\/node_modules\/(ioredis|prom-client)\//.test(f))).toEqual([]);
  });
});
