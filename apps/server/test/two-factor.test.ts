import { createHmac } from "node:crypto";
import { chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HOTP, Secret } from "otpauth";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { twoFactorFileId } from "@knockport/config";
import { TwoFactor, type UsedTokenStore } from "../src/two-factor.js";
import { FileUsedTokenStore, MemoryUsedTokenStore, UnavailableUsedTokenStore, USED_TOKENS_FILE } from "../src/used-tokens.js";
import { tempDir } from "./fixtures.js";

const KEY = "ovpn-http-key-000";
const PERIOD = 30;
/** Start of a 30 s period plus 10 s, so "now" is well inside one period. */
const T0 = 1_700_000_010_000;

const secret = new Secret({ size: 20 });
const hotp = new HOTP({ secret, digits: 6, algorithm: "SHA1" });
const counterAt = (t: number, period = PERIOD): number => Math.floor(t / 1000 / period);
/** The token of the period `offset` periods away from time t. */
const tokenAt = (t: number, offset = 0, period = PERIOD): string => hotp.generate({ counter: counterAt(t, period) + offset });

let dir: { path: string; remove(): void };
let folder: string;
let stateDir: string;
let clock: { t: number };

function writeFile(name: string, content: unknown): void {
  writeFileSync(join(folder, name), typeof content === "string" ? content : JSON.stringify(content), { mode: 0o600 });
}

function twoFactor(opts: { skew?: number; store?: "memory" | "file" } = {}): TwoFactor {
  const now = (): number => clock.t;
  const usedTokens = opts.store === "memory" ? new MemoryUsedTokenStore(now) : new FileUsedTokenStore(stateDir, { now });
  return new TwoFactor({ folder, now, skewPeriods: opts.skew ?? 1, usedTokens });
}

beforeEach(() => {
  dir = tempDir("kp-2fa-unit-");
  folder = join(dir.path, "2fa");
  stateDir = join(dir.path, "state");
  mkdirSync(folder, { mode: 0o700 });
  clock = { t: T0 };
  writeFile(`${twoFactorFileId(KEY)}.json`, { secret: secret.base32, interval: PERIOD });
});
afterEach(() => dir.remove());

describe("TwoFactor with a fixed clock", () => {
  it("needs no token for a key without a file", () => {
    const tf = twoFactor();
    expect(tf.check("ssh-http-key-0000", undefined)).toBe("not-required");
    expect(tf.check("ssh-http-key-0000", "123456")).toBe("not-required");
  });

  it("accepts the current token (hashed file name)", () => {
    expect(twoFactor().check(KEY, tokenAt(clock.t))).toBe("ok");
  });

  it("refuses a missing token", () => {
    expect(twoFactor().check(KEY, undefined)).toBe("denied");
  });

  it.each([["12345"], ["1234567"], [""], ["12a456"], [" 12345"], ["１２３４５６"]])("refuses a malformed token %j", (token) => {
    expect(twoFactor().check(KEY, token)).toBe("denied");
  });

  it("refuses a wrong token", () => {
    const tf = twoFactor();
    const right = tokenAt(clock.t);
    const wrong = right === "000000" ? "000001" : "000000";
    expect(tf.check(KEY, wrong)).toBe("denied");
    // and the wrong one did not spend the right one
    expect(tf.check(KEY, right)).toBe("ok");
  });

  it("refuses a reused token, also from the next period on while it is still within the skew window", () => {
    const tf = twoFactor({ skew: 1 });
    const token = tokenAt(clock.t);
    expect(tf.check(KEY, token)).toBe("ok");
    expect(tf.check(KEY, token)).toBe("denied");
    clock.t += PERIOD * 1000; // the token is now "one period ago": still valid with skew 1, but spent
    expect(tf.check(KEY, token)).toBe("denied");
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("ok");
  });

  it("refuses an earlier period's token once a later one was accepted", () => {
    const tf = twoFactor({ skew: 1 });
    expect(tf.check(KEY, tokenAt(clock.t, +1))).toBe("ok");
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(tf.check(KEY, tokenAt(clock.t, -1))).toBe("denied");
  });

  it("refuses an expired token (older than the skew window)", () => {
    expect(twoFactor({ skew: 1 }).check(KEY, tokenAt(clock.t, -2))).toBe("denied");
    expect(twoFactor({ skew: 0 }).check(KEY, tokenAt(clock.t, -1))).toBe("denied");
  });

  it("accepts a token skewed by one period with skew 1, in both directions, and refuses it with skew 0", () => {
    expect(twoFactor({ skew: 0, store: "memory" }).check(KEY, tokenAt(clock.t, -1))).toBe("denied");
    expect(twoFactor({ skew: 0, store: "memory" }).check(KEY, tokenAt(clock.t, +1))).toBe("denied");
    expect(twoFactor({ skew: 1, store: "memory" }).check(KEY, tokenAt(clock.t, -1))).toBe("ok");
    expect(twoFactor({ skew: 1, store: "memory" }).check(KEY, tokenAt(clock.t, +1))).toBe("ok");
    expect(twoFactor({ skew: 1, store: "memory" }).check(KEY, tokenAt(clock.t, +2))).toBe("denied");
    expect(twoFactor({ skew: 2, store: "memory" }).check(KEY, tokenAt(clock.t, -2))).toBe("ok");
  });

  it("refuses the same token after a restart (new TwoFactor and store on the same --state-dir)", () => {
    const token = tokenAt(clock.t);
    expect(twoFactor().check(KEY, token)).toBe("ok");
    clock.t += 5_000;
    const restarted = twoFactor();
    expect(restarted.check(KEY, token)).toBe("denied");
    clock.t += PERIOD * 1000;
    expect(restarted.check(KEY, tokenAt(clock.t))).toBe("ok");
  });

  it("forgets a spent token only once it can no longer validate (the state file stays small)", () => {
    const tf = twoFactor({ skew: 1 });
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("ok");
    const stateFile = join(stateDir, USED_TOKENS_FILE);
    const entries = (): Record<string, { counter: number; until: number }> =>
      (JSON.parse(readFileSync(stateFile, "utf8")) as { used: Record<string, { counter: number; until: number }> }).used;
    const [entry] = Object.values(entries());
    expect(entry).toEqual({ counter: counterAt(T0), until: (counterAt(T0) + 2) * PERIOD * 1000 });
    // another key's accept after that moment prunes it
    const other = "ssh-http-key-0000";
    const otherSecret = new Secret({ size: 20 });
    writeFile(`${twoFactorFileId(other)}.json`, { secret: otherSecret.base32 });
    clock.t = (counterAt(T0) + 2) * PERIOD * 1000 + 1;
    const otherToken = new HOTP({ secret: otherSecret }).generate({ counter: counterAt(clock.t) });
    expect(tf.check(other, otherToken)).toBe("ok");
    expect(Object.values(entries())).toHaveLength(1);
  });

  it("keeps secrets and tokens out of the state file; file 0600, folder 0700", () => {
    const token = tokenAt(clock.t);
    expect(twoFactor().check(KEY, token)).toBe("ok");
    const stateFile = join(stateDir, USED_TOKENS_FILE);
    const text = readFileSync(stateFile, "utf8");
    expect(text).not.toContain(secret.base32);
    expect(text).not.toContain(token);
    expect(text).not.toContain(KEY);
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
  });

  it("after a corrupt state file, refuses every token that could have been spent before, then works again", () => {
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(join(stateDir, USED_TOKENS_FILE), "{ not json");
    const warnings: string[] = [];
    const tf = new TwoFactor({
      folder,
      now: () => clock.t,
      skewPeriods: 1,
      usedTokens: new FileUsedTokenStore(stateDir, { now: () => clock.t, warn: (m) => warnings.push(m) }),
    });
    expect(warnings).toHaveLength(1);
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(tf.check(KEY, tokenAt(clock.t, +1))).toBe("denied"); // valid (skew 1) at the moment of the loss
    clock.t += 2 * PERIOD * 1000;
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("ok");
    // the loss is remembered across a further restart
    clock.t = T0;
    const again = new TwoFactor({ folder, now: () => clock.t, skewPeriods: 1, usedTokens: new FileUsedTokenStore(stateDir, { now: () => clock.t }) });
    expect(again.check(KEY, tokenAt(clock.t, +1))).toBe("denied");
  });

  it("a state folder that cannot be created throws at once (also below /proc, where a recursive mkdir can spin)", () => {
    expect(() => new FileUsedTokenStore("/proc/knockport-no-such/x")).toThrow();
    expect(() => new FileUsedTokenStore(join(folder, `${twoFactorFileId(KEY)}.json`, "x"))).toThrow(/ENOTDIR/);
    const nested = new FileUsedTokenStore(join(dir.path, "a", "b", "state"));
    expect(nested.forgottenAt).toBeUndefined();
    expect(statSync(join(dir.path, "a", "b", "state")).mode & 0o777).toBe(0o700);
  });

  it.runIf(process.geteuid?.() === 0)("refuses a state folder owned by another user (it could plant links where the server writes)", () => {
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, 65534, 65534);
    expect(() => new FileUsedTokenStore(stateDir)).toThrow(new RegExp(`--state-dir ${stateDir}: owned by another user \\(owner uid 65534`));
  });

  it("fails closed when the store cannot record a token", () => {
    const tf = new TwoFactor({ folder, now: () => clock.t, skewPeriods: 1, usedTokens: new UnavailableUsedTokenStore("no state dir") });
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(tf.check("ssh-http-key-0000", undefined)).toBe("not-required");
  });

  it("release() un-spends a token whose knock failed on the server's side, once", () => {
    const tf = twoFactor();
    const token = tokenAt(clock.t);
    expect(tf.check(KEY, token)).toBe("ok");
    tf.release(KEY, token);
    expect(tf.check(KEY, token)).toBe("ok");
    expect(tf.check(KEY, token)).toBe("denied");
    // releasing a token that is not the last accepted one changes nothing
    tf.release(KEY, tokenAt(clock.t, -1));
    expect(tf.check(KEY, token)).toBe("denied");
  });
});

describe("TwoFactor file lookup", () => {
  it("reads the original's <access_key>.json name too", () => {
    const key = "ssh-http-key-0000";
    const other = new Secret({ size: 20 });
    writeFile(`${key}.json`, { secret: other.base32 });
    const tf = twoFactor();
    expect(tf.check(key, undefined)).toBe("denied");
    expect(tf.check(key, new HOTP({ secret: other }).generate({ counter: counterAt(clock.t) }))).toBe("ok");
  });

  it("prefers the hashed name and never falls back to the original name when the hashed file is broken", () => {
    writeFile(`${KEY}.json`, { secret: new Secret({ size: 20 }).base32 });
    writeFile(`${twoFactorFileId(KEY)}.json`, "{ broken");
    expect(twoFactor().check(KEY, tokenAt(clock.t))).toBe("denied");
  });

  it("honours the file's interval", () => {
    writeFile(`${twoFactorFileId(KEY)}.json`, { secret: secret.base32, interval: 60 });
    expect(twoFactor({ skew: 0 }).check(KEY, tokenAt(clock.t, 0, 60))).toBe("ok");
  });

  it.each([
    ["a short secret", { secret: "JBSWY3DP" }],
    ["an interval of 0", { secret: secret.base32, interval: 0 }],
    ["an interval too long", { secret: secret.base32, interval: 7200 }],
    ["null", null],
  ])("fails closed on %s", (_what, content) => {
    writeFile(`${twoFactorFileId(KEY)}.json`, JSON.stringify(content));
    expect(twoFactor().check(KEY, tokenAt(clock.t))).toBe("denied");
  });

  it("ignores keys it does not know in the file (setup-2fa writes label, app, created)", () => {
    writeFile(`${twoFactorFileId(KEY)}.json`, { secret: secret.base32, interval: 30, label: "KnockPort:openvpn", app: "openvpn", created: "x" });
    expect(twoFactor().check(KEY, tokenAt(clock.t))).toBe("ok");
  });

  it("twoFactorFileId is 32 hex digits, stable, and does not contain the key", () => {
    const id = twoFactorFileId(KEY);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(twoFactorFileId(KEY)).toBe(id);
    expect(twoFactorFileId(`${KEY}x`)).not.toBe(id);
    // documented construction: HMAC-SHA256 with the fixed label as key
    expect(id).toBe(createHmac("sha256", "knockport-2fa-file-v1").update(KEY).digest("hex").slice(0, 32));
  });
});

describe("TwoFactor tells why it refuses on its side (never a secret, a token or a key)", () => {
  const problems: { event: string; message: string }[] = [];
  const reporting = (usedTokens: UsedTokenStore = new MemoryUsedTokenStore(() => clock.t)): TwoFactor =>
    new TwoFactor({ folder, now: () => clock.t, usedTokens, onProblem: (event, message) => problems.push({ event, message }) });
  beforeEach(() => {
    problems.length = 0;
  });
  const noSecrets = (): void => {
    for (const p of problems) {
      for (const s of [KEY, secret.base32, tokenAt(clock.t)]) expect(p.message).not.toContain(s);
    }
  };

  it("a 2FA file it cannot read: denied, and reported with its path and the errno, once a minute", () => {
    const file = join(folder, `${twoFactorFileId(KEY)}.json`);
    rmSync(file);
    mkdirSync(file); // reading it fails (EISDIR) as a 0600 root file fails for the server's user (EACCES)
    const tf = reporting();
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(problems).toEqual([{ event: "2fa.file.unreadable", message: expect.stringContaining(`${file}: cannot read this 2FA file as user `) }]);
    expect(problems[0]?.message).toMatch(/\(EISDIR\); every knock with its key is refused/);
    clock.t += 61_000;
    expect(tf.check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(problems).toHaveLength(2);
    noSecrets();
  });

  it("a malformed file under the original's name is reported without the key in its name; a store that cannot record, too", () => {
    rmSync(join(folder, `${twoFactorFileId(KEY)}.json`));
    writeFile(`${KEY}.json`, "{not json");
    expect(reporting().check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(problems).toEqual([{ event: "2fa.file.malformed", message: expect.stringContaining(`${join(folder, "<access_key_http>.json")}: not a 2FA file`) }]);
    writeFile(`${KEY}.json`, { secret: secret.base32 });
    expect(reporting(new UnavailableUsedTokenStore("--state-dir /var/lib/knockport-server: cannot use it (EACCES)")).check(KEY, tokenAt(clock.t))).toBe("denied");
    expect(problems[1]).toEqual({ event: "2fa.store.failed", message: expect.stringContaining("--state-dir /var/lib/knockport-server: cannot use it (EACCES)") });
    noSecrets();
  });
});
