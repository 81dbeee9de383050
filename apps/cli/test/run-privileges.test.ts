import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runBoth } from "../src/run.js";
import { serverSetprivArgs, sharedSocketGroup } from "../src/socket-group.js";

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/knockport");

const PASSWD = [
  "root:x:0:0:root:/root:/bin/bash",
  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  "knockport:x:990:990:KnockPort:/nonexistent:/usr/sbin/nologin",
  "www:x:991:991::/nonexistent:/usr/sbin/nologin",
  "backup:x:992:990::/nonexistent:/usr/sbin/nologin",
].join("\n");
const GROUP = ["root:x:0:", "nogroup:x:65534:", "knockport:x:990:", "www:x:991:alice,www2", "daemons:x:993:"].join("\n");

describe("knockport run: the helper socket's group", () => {
  it("refuses nogroup (nobody's group, shared by unrelated daemons)", () => {
    expect(sharedSocketGroup({ name: "nobody", uid: 65534, gid: 65534 }, PASSWD, GROUP)).toMatch(/group nogroup \(gid 65534\) is shared/);
  });

  it("refuses a group that is another account's primary group or has other members", () => {
    expect(sharedSocketGroup({ name: "knockport", uid: 990, gid: 990 }, PASSWD, GROUP)).toMatch(/shared with backup/);
    expect(sharedSocketGroup({ name: "www", uid: 991, gid: 991 }, PASSWD, GROUP)).toMatch(/shared with alice, www2/);
  });

  it("accepts the server's own group, also with the helper's own user knockport-helper in it", () => {
    const passwd = PASSWD.replace(/^backup:.*$/m, "knockport-helper:x:992:990::/nonexistent:/usr/sbin/nologin");
    expect(sharedSocketGroup({ name: "knockport", uid: 990, gid: 990 }, passwd, GROUP)).toBeUndefined();
    expect(sharedSocketGroup({ name: "knockport", uid: 990, gid: 990 }, passwd, GROUP.replace("knockport:x:990:", "knockport:x:990:knockport-helper"))).toBeUndefined();
  });

  it.runIf(process.geteuid?.() === 0)("runBoth with --user nobody stops before starting anything, naming useradd", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kp-run-"));
    try {
      const stateDir = join(dir, "helper-state");
      const lines: string[] = [];
      await expect(
        runBoth({
          repoRoot: "/nonexistent",
          configFile: join(dir, "config.yaml"),
          firewallType: "nftables",
          httpPort: undefined,
          httpsPort: undefined,
          certFile: "c.pem",
          keyFile: "k.pem",
          user: "nobody",
          socketPath: join(dir, "helper.sock"),
          stateDir,
          serverStateDir: join(dir, "knockport-server"),
          log: (l) => lines.push(l),
        }),
      ).rejects.toThrow(/--user nobody: .*group nogroup .* useradd --system .* knockport/);
      expect(lines, "no child was started").toEqual([]);
      expect(existsSync(join(dir, "knockport-server")), "no server state dir was made").toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const hasServerUser = readFileSync("/etc/passwd", "utf8").split("\n").some((l) => l.startsWith("knockport:"));
describe("knockport run: without a knockport user", () => {
  it.runIf(process.geteuid?.() === 0 && !hasServerUser)("refuses (never falls back to nobody and its shared group), naming the useradd of the docs", () => {
    const r = spawnSync(process.execPath, [CLI, "run", "-c", "/nonexistent.yaml", "--cert", "c.pem", "--key", "k.pem"], { encoding: "utf8", timeout: 20_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain("--user knockport: no such user; create the server's own user and group first: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin knockport");
    expect(r.stderr).not.toContain("nobody");
  });
});

describe("knockport run: the server's setpriv", () => {
  it.runIf(process.geteuid?.() === 0)("on the real kernel: uid/gid of the account, no_new_privs set, only CAP_NET_BIND_SERVICE", () => {
    const out = execFileSync("setpriv", [...serverSetprivArgs({ name: "nobody", uid: 65534, gid: 65534 }), "--", "cat", "/proc/self/status"], {
      encoding: "utf8",
      timeout: 10_000,
    });
    const field = (name: string): string | undefined => new RegExp(`^${name}:[ \\t]*(.*)$`, "m").exec(out)?.[1];
    expect(field("NoNewPrivs")).toBe("1");
    expect(field("Uid")?.split(/\s+/)).toEqual(["65534", "65534", "65534", "65534"]);
    expect(field("Groups")).toBe("");
    expect(BigInt(`0x${field("CapEff") ?? "x"}`)).toBe(1n << 10n); // CAP_NET_BIND_SERVICE = 10
    expect(BigInt(`0x${field("CapAmb") ?? "x"}`)).toBe(1n << 10n);
  });
});
