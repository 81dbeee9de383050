import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Secret, TOTP } from "otpauth";
import { ACCESS_KEY_MAX_LENGTH, ACCESS_KEY_PATTERN } from "@knockport/config";

/** What a 2FA file holds: the original's `{ "secret": BASE32 }`, optionally with a period. */
interface TwoFactorFile {
  secret: string;
  interval?: number;
}

/**
 * The original named the file after the key. Every valid key is a safe file name: the config
 * allows only A-Z a-z 0-9 . _ ~ - (no "/") and at least 10 characters (never "." or "..").
 */
const VALID_KEY = new RegExp(ACCESS_KEY_PATTERN);

export interface TwoFactorOptions {
  folder: string;
  now?: () => number;
  /** Accept tokens from this many periods before/after now. */
  skewPeriods?: number;
}

/**
 * Step-1 TOTP check. The file is read on every knock, so creating or removing it takes effect
 * without a restart. An accepted token is refused afterwards until it can no longer be valid.
 */
export class TwoFactor {
  private readonly used = new Map<string, number>();
  private readonly now: () => number;
  private readonly skew: number;

  constructor(private readonly options: TwoFactorOptions) {
    this.now = options.now ?? Date.now;
    this.skew = options.skewPeriods ?? 0;
  }

  private read(accessKey: string): TwoFactorFile | "broken" | undefined {
    if (!VALID_KEY.test(accessKey) || accessKey.length > ACCESS_KEY_MAX_LENGTH) return undefined;
    let text: string;
    try {
      text = readFileSync(join(this.options.folder, `${accessKey}.json`), "utf8");
    } catch (err) {
      // Missing means 2FA is off for this key; any other failure must not silently switch it off.
      return (err as NodeJS.ErrnoException).code === "ENOENT" ? undefined : "broken";
    }
    try {
      const parsed = JSON.parse(text) as Partial<TwoFactorFile>;
      if (typeof parsed.secret !== "string" || !/^[A-Z2-7]+=*$/i.test(parsed.secret)) return "broken";
      const interval = parsed.interval ?? 30;
      if (!Number.isInteger(interval) || interval < 1 || interval > 3600) return "broken";
      return { secret: parsed.secret, interval };
    } catch {
      return "broken";
    }
  }

  /**
   * "not-required" when the key has no 2FA file; "ok" when the token is valid and unused (it is
   * then spent at once, so two concurrent knocks cannot both use it; `release` gives it back if
   * the knock fails for a reason of ours); "denied" otherwise, including for an unreadable or
   * malformed file (fail closed).
   */
  check(accessKey: string, token: string | undefined): "not-required" | "ok" | "denied" {
    const file = this.read(accessKey);
    if (file === undefined) return "not-required";
    if (file === "broken" || token === undefined || !/^\d{6}$/.test(token)) return "denied";
    const interval = file.interval ?? 30;
    const totp = new TOTP({ secret: Secret.fromBase32(file.secret.toUpperCase()), period: interval, digits: 6 });
    const t = this.now();
    const delta = totp.validate({ token, timestamp: t, window: this.skew });
    if (delta === null) return "denied";
    this.forgetExpired(t);
    const usedKey = this.usedKey(file.secret, token);
    if (this.used.has(usedKey)) return "denied";
    // valid until the end of the last period in which the validator would still accept it
    this.used.set(usedKey, t + (this.skew * 2 + 2) * interval * 1000);
    return "ok";
  }

  /** Un-spend a token whose knock then failed on our side (helper down), so the user can retry with it. */
  release(accessKey: string, token: string | undefined): void {
    const file = this.read(accessKey);
    if (file === undefined || file === "broken" || token === undefined) return;
    this.used.delete(this.usedKey(file.secret, token));
  }

  private usedKey(secret: string, token: string): string {
    return `${secret}:${token}`;
  }

  private forgetExpired(t: number): void {
    for (const [k, until] of this.used) if (until <= t) this.used.delete(k);
  }
}
