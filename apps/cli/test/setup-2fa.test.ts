import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TOTP, URI } from "otpauth";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { twoFactorFileId } from "@knockport/config";
// the server's own check, to prove what setup-2fa writes is what the server accepts
import { TwoFactor } from "../../server/src/two-factor.js";
import { parseInterval, setupTwoFactor } from "../src/setup-2fa.js";

const HTTP_KEY = "ovpn-http-key-000";
const HTTPS_KEY = "ovpn-https-key-000";

let dir: string;
let configFile: string;
let lines: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kp-setup2fa-"));
  configFile = join(dir, "config.yaml");
  writeFileSync(
    configFile,
    `global:\n  http_post_path: /k1-abcdefgh\n  https_post_path: /k2-abcdefgh\n  interface_ext: eth0\n  2fa_config_folder: secrets/2fa\n` +
      `openvpn:\n  port: 1194\n  protocol: udp\n  access_key_http: ["${HTTP_KEY}", "ovpn-http-key-111"]\n  access_key_https: ["${HTTPS_KEY}", "ovpn-https-key-111"]\n  duration: 60\n`,
  );
  lines = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const run = (over: Partial<Parameters<typeof setupTwoFactor>[0]> = {}) =>
  setupTwoFactor({ configFile, accessKey: HTTP_KEY, interval: 30, label: undefined, force: false, qr: true, out: (l) => lines.push(l), ...over });

describe("knockport setup-2fa", () => {
  it("writes <id>.json (0600) and <id>_qr.png in the configured folder (0700); the server accepts its codes", async () => {
    const r = await run();
    const folder = join(dir, "secrets/2fa");
    const id = twoFactorFileId(HTTP_KEY);
    expect(r.app).toBe("openvpn");
    expect(r.jsonFile).toBe(join(folder, `${id}.json`));
    expect(r.pngFile).toBe(join(folder, `${id}_qr.png`));
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    expect(statSync(r.jsonFile).mode & 0o777).toBe(0o600);
    expect(statSync(r.pngFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(r.pngFile).subarray(1, 4).toString()).toBe("PNG");
    expect(readdirSync(folder).sort()).toEqual([`${id}.json`, `${id}_qr.png`]);
    for (const name of readdirSync(folder)) expect(name).not.toContain(HTTP_KEY);

    const file = JSON.parse(readFileSync(r.jsonFile, "utf8")) as { secret: string; interval: number; label: string };
    expect(file.secret).toMatch(/^[A-Z2-7]{32}$/); // 160 bits
    expect(file.interval).toBe(30);
    expect(file.label).toBe("KnockPort:openvpn");

    const totp = URI.parse(r.uri) as TOTP;
    expect(totp.issuer).toBe("KnockPort");
    expect(totp.label).toBe("openvpn");
    expect(totp.secret.base32).toBe(file.secret);

    const now = Date.now();
    const tf = new TwoFactor({ folder, now: () => now, skewPeriods: 0 });
    expect(tf.check(HTTP_KEY, undefined)).toBe("denied");
    expect(tf.check(HTTP_KEY, totp.generate({ timestamp: now }))).toBe("ok");
    expect(tf.check("ovpn-http-key-111", undefined)).toBe("not-required");
  });

  it("prints the URI, a terminal QR code and the app, never the key", async () => {
    const r = await run();
    const text = lines.join("\n");
    expect(text).toContain(r.uri);
    expect(text).toContain('app "openvpn"');
    expect(text).toMatch(/[▀▄█]{10}/);
    expect(text).not.toContain(HTTP_KEY);
    expect(r.uri).not.toContain(HTTP_KEY);
  });

  it("uses --label and -i", async () => {
    const r = await run({ label: "laptop", interval: 60 });
    const totp = URI.parse(r.uri) as TOTP;
    expect([totp.label, totp.period]).toEqual(["laptop", 60]);
  });

  it("refuses a label holding the key, a step-2 key, an unknown key and an existing file without --force", async () => {
    await expect(run({ label: `x${HTTP_KEY}` })).rejects.toThrow(/must not contain the access key/);
    await expect(run({ accessKey: HTTPS_KEY })).rejects.toThrow(/step-2 key \(access_key_https\) of app "openvpn"/);
    await expect(run({ accessKey: "unknown-key-000" })).rejects.toThrow(/no app in .* has that key in access_key_http/);
    const first = await run();
    const secret1 = readFileSync(first.jsonFile, "utf8");
    await expect(run()).rejects.toThrow(/already set up for that key; pass --force/);
    expect(readFileSync(first.jsonFile, "utf8")).toBe(secret1);
    await run({ force: true });
    expect(readFileSync(first.jsonFile, "utf8")).not.toBe(secret1);
    for (const err of [run({ accessKey: "unknown-key-000" })]) await err.catch((e: Error) => expect(e.message).not.toContain("unknown-key-000"));
  });

  it("parseInterval: default 30, range 1-3600", () => {
    expect(parseInterval(undefined)).toBe(30);
    expect(parseInterval("60")).toBe(60);
    expect(() => parseInterval("0")).toThrow(/-i\/--interval/);
    expect(() => parseInterval("3601")).toThrow(/-i\/--interval/);
    expect(() => parseInterval("3x")).toThrow(/-i\/--interval/);
  });
});

describe("knockport setup-2fa: the folder's owner and mode", () => {
  const folderOf = () => join(dir, "secrets/2fa");

  it("refuses a folder the server's group (or anyone) may write, naming the fix", async () => {
    mkdirSync(folderOf(), { recursive: true, mode: 0o700 });
    chmodSync(folderOf(), 0o770);
    await expect(run()).rejects.toThrow(
      new RegExp(`2fa_config_folder ${folderOf()}: writable by its group .*mode 0770.*chown root:knockport ${folderOf()} && chmod 0750`),
    );
    expect(readdirSync(folderOf())).toEqual([]);
  });

  it.runIf(process.geteuid?.() === 0)("refuses a folder owned by the server's user (it could rewrite the secrets)", async () => {
    mkdirSync(folderOf(), { recursive: true, mode: 0o700 });
    chownSync(folderOf(), 65534, 65534);
    await expect(run()).rejects.toThrow(/2fa_config_folder .*: owned by another user \(owner uid 65534/);
    expect(readdirSync(folderOf())).toEqual([]);
  });

  it.runIf(process.geteuid?.() === 0)("in a root:<group> 0750 folder the files are root:<group> 0640 (the server reads them, cannot write)", async () => {
    mkdirSync(folderOf(), { recursive: true, mode: 0o700 });
    chownSync(folderOf(), 0, 65534);
    chmodSync(folderOf(), 0o750);
    const r = await run();
    for (const f of [r.jsonFile, r.pngFile]) {
      const st = statSync(f);
      expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o640, 0, 65534]);
    }
    expect(statSync(folderOf()).mode & 0o777).toBe(0o750);
  });

  it.runIf(process.geteuid?.() === 0)("the hint names the server's real user and group when they cannot read the files, or says to create the user", async () => {
    mkdirSync(folderOf(), { recursive: true, mode: 0o700 });
    chownSync(folderOf(), 0, 0);
    chmodSync(folderOf(), 0o750); // group-readable, but by root's group, not the server's
    const knockport = { name: "knockport", gid: 990, group: "kp-server" };
    await run({ serverAccount: knockport });
    const folder = folderOf();
    expect(lines.find((l) => l.includes("note:"))).toBe(
      `  note: the server's user knockport (group kp-server) cannot read these files (folder group 0, mode 0750); let it: chown root:kp-server ${folder} && chmod 0750 ${folder} && chgrp kp-server ${folder}/* && chmod 0640 ${folder}/*`,
    );

    lines.length = 0;
    await run({ serverAccount: null, force: true });
    expect(lines.find((l) => l.includes("note:"))).toMatch(/note: there is no user knockport yet, whom the server runs as .*useradd --system --user-group --no-create-home --shell \/usr\/sbin\/nologin knockport, then let it read the secrets: chown root:knockport /);

    lines.length = 0;
    chownSync(folder, 0, 990);
    await run({ serverAccount: knockport, force: true });
    expect(lines.filter((l) => l.includes("note:")), "the server's group reads them: no note").toEqual([]);
  });

  it.runIf(process.geteuid?.() === 0)("a link planted at a 2FA file's name is replaced, its target neither written nor chowned", async () => {
    mkdirSync(folderOf(), { recursive: true, mode: 0o700 });
    chownSync(folderOf(), 0, 65534);
    chmodSync(folderOf(), 0o750);
    const victim = join(dir, "victim");
    writeFileSync(victim, "keep", { mode: 0o600 });
    symlinkSync(victim, join(folderOf(), `${twoFactorFileId(HTTP_KEY)}_qr.png`));
    await run();
    const st = statSync(victim);
    expect([readFileSync(victim, "utf8"), st.uid, st.gid, st.mode & 0o777]).toEqual(["keep", 0, 0, 0o600]);
  });
});
