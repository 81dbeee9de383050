import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DAEMON_NODE_OPTIONS, SERVER_NODE_OPTIONS } from "@knockport/config";
import { unitNodeOptions } from "@knockport/testbed";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

describe("node options of the daemons", () => {
  it("the shipped units start the helper with DAEMON_NODE_OPTIONS and the server with SERVER_NODE_OPTIONS (what knockport run and the testbed use)", () => {
    expect(DAEMON_NODE_OPTIONS).toContain("--max-semi-space-size=2");
    expect(SERVER_NODE_OPTIONS).toEqual([...DAEMON_NODE_OPTIONS, "--lite-mode", "--no-expose-wasm"]);
    expect(unitNodeOptions(REPO, "knockport-helper.service")).toEqual(DAEMON_NODE_OPTIONS);
    expect(unitNodeOptions(REPO, "knockport-server.service")).toEqual(SERVER_NODE_OPTIONS);
  });
});
