import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePasswd } from "@knockport/config";
import { oneAppConfig } from "../../../packages/config/test/fixtures.js";

const SERVER = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/knockport-server");
const CONFIG = oneAppConfig("state-dir-test", { interfaceExt: "lo", step2HttpsDuration: 10 });
// A system account of every Debian install, with its own group.
const daemon = parsePasswd(readFileSync("/etc/passwd", "utf8")).find((u) => u.name === "daemon");

describe.runIf(process.geteuid?.() === 0 && daemon !== undefined)("knockport-server as an unprivileged user: a state file it cannot read", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kp-state-start-"));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "config.yaml"), CONFIG, { mode: 0o644 });
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=t", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem")], { stdio: "ignore" });
    chmodSync(join(dir, "k.pem"), 0o644);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a root-owned used-totp.json (left by a run as root) is named with its owner and the chown that fixes it, not blamed on the folder", () => {
    const state = join(dir, "state");
    mkdirSync(state, { mode: 0o700 });
    chownSync(state, daemon?.uid ?? -1, daemon?.gid ?? -1);
    const file = join(state, "used-totp.json");
    writeFileSync(file, '{"version":1,"forgottenAt":null,"used":{}}\n', { mode: 0o600 }); // root's
    const r = spawnSync(
      "setpriv",
      [`--reuid=${daemon?.uid}`, `--regid=${daemon?.gid}`, "--clear-groups", process.execPath, SERVER, "-c", join(dir, "config.yaml"), "--cert", join(dir, "c.pem"), "--key", join(dir, "k.pem"), "--socket", join(dir, "none.sock"), "--state-dir", state],
      { encoding: "utf8", timeout: 8_000 },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(`--state-dir ${state}: ${file}: cannot use it as user daemon (EACCES; it belongs to uid 0, mode 0600); give it to the server's user: chown daemon: ${file}`);
    expect(r.stderr).not.toContain("create it writable");
  });
});
