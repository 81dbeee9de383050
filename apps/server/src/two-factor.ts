import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import {
  ACCESS_KEY_MAX_LENGTH,
  ACCESS_KEY_PATTERN,
  TWO_FACTOR_DEFAULT_INTERVAL,
  TWO_FACTOR_MAX_INTERVAL,
  TWO_FACTOR_MIN_INTERVAL,
  twoFactorFileId,
} from "@knockport/config";
import { base32Decode, hotp } from "./hotp.js";
import { MemoryUsedTokenStore, type UsedTokenStore } from "./used-tokens.js";

export type { UsedTokenStore } from "./used-tokens.js";

/** A token `checkAndSpend` accepted: the hash of its secret (never the secret), its time step, epoch ms it validates until. */
export interface SpentToken {
  readonly secretId: string;
  readonly counter: number;
  readonly until: number;
}

/** What a 2FA file holds: the original's `{ "secret": BASE32 }`, optionally with `interval` (other keys are ignored). */
interface TwoFactorFile {
  secret: string;
  interval: number;
}

/**
 * The original named the file after the key. Every valid key is a safe file name: the config
 * allows only A-Z a-z 0-9 . _ ~ - (no "/") and at least 10 characters (never "." or "..").
 */
const VALID_KEY = new RegExp(ACCESS_KEY_PATTERN);
const TOKEN = /^\d{6}$/;
/** Largest skew the config allows; release() looks one period further to find a token again. */
const MAX_SKEW = 2;

export interface TwoFactorOptions {
  folder: string;
  now?: () => number;
  /** Accept tokens from this many periods before/after now (global `2fa_skew_periods`). */
  skewPeriods?: number;
  /** Where accepted tokens are remembered; default in memory (lost on restart: tests only). */
  usedTokens?: UsedTokenStore;
  /**
   * Told why a knock with a 2FA key is refused on our side (a file the server cannot read, a
   * malformed one, a store that cannot record): never a secret, a token or a key. At most once a
   * minute per cause.
   */
  onProblem?: (event: TwoFactorProblem, message: string) => void;
}

export type TwoFactorProblem = "2fa.file.unreadable" | "2fa.file.malformed" | "2fa.store.failed";

/** A cause is reported again after this long; the map of causes is bounded (one per file at most). */
const PROBLEM_REPEAT_MS = 60_000;
const MAX_PROBLEM_CAUSES = 1024;

/**
 * Step-1 TOTP check (RFC 6238: HMAC-SHA1, 6 digits, the file's period). The file is read on every
 * knock, so creating or removing it takes effect without a restart. It is looked up as
 * `<folder>/<twoFactorFileId(key)>.json` (written by `knockport setup-2fa`) and then under the
 * original's name `<folder>/<key>.json`.
 *
 * One-time: for each secret the store keeps the last accepted time step; a token of that step or
 * an earlier one is refused (RFC 6238 §5.2), until it could no longer validate anyway.
 */
export class TwoFactor {
  private readonly now: () => number;
  private readonly skew: number;
  private readonly store: UsedTokenStore;
  /** Per store id: the entry an accept replaced, so release() can put it back. */
  private readonly previous = new Map<string, { counter: number; entry: ReturnType<UsedTokenStore["get"]> }>();

  private readonly reported = new Map<string, number>();

  constructor(private readonly options: TwoFactorOptions) {
    this.now = options.now ?? Date.now;
    this.skew = Math.min(Math.max(options.skewPeriods ?? 0, 0), MAX_SKEW);
    this.store = options.usedTokens ?? new MemoryUsedTokenStore(this.now);
  }

  private report(event: TwoFactorProblem, cause: string, message: string): void {
    const t = this.now();
    const last = this.reported.get(cause);
    if (last !== undefined && t - last < PROBLEM_REPEAT_MS) return;
    if (this.reported.size >= MAX_PROBLEM_CAUSES) this.reported.clear();
    this.reported.set(cause, t);
    this.options.onProblem?.(event, message);
  }

  /** `label` names the file in reports: its path, or for the original's naming a path without the key in it. */
  private readAt(file: string, label: string): TwoFactorFile | "broken" | undefined {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      // Missing means 2FA is off for this name; any other failure must not silently switch it off.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      const fix = code === "EACCES" ? `; let the server's group read it: chgrp knockport ${label} && chmod 0640 ${label} (its folder root:knockport 0750)` : "";
      this.report("2fa.file.unreadable", label, `${label}: cannot read this 2FA file as user ${currentUser()} (${code ?? "error"}); every knock with its key is refused${fix}`);
      return "broken";
    }
    const parsed = parseTwoFactorFile(text);
    if (parsed === undefined) {
      this.report("2fa.file.malformed", label, `${label}: not a 2FA file (JSON with "secret": base32 of 16+ characters, optional "interval"); every knock with its key is refused`);
      return "broken";
    }
    return parsed;
  }

  /** The key's 2FA file: the hashed name first, then the original's; a broken file never falls through. */
  private read(accessKey: string): TwoFactorFile | "broken" | undefined {
    if (!VALID_KEY.test(accessKey) || accessKey.length > ACCESS_KEY_MAX_LENGTH) return undefined;
    const hashedFile = join(this.options.folder, `${twoFactorFileId(accessKey)}.json`);
    const hashed = this.readAt(hashedFile, hashedFile);
    if (hashed !== undefined) return hashed;
    return this.readAt(join(this.options.folder, `${accessKey}.json`), join(this.options.folder, "<access_key_http>.json"));
  }

  /** The time step (counter) the token belongs to within now ± `window` periods, or undefined. Constant time. */
  private matchCounter(file: TwoFactorFile, token: string, window: number): number | undefined {
    const secret = base32Decode(file.secret);
    const current = Math.floor(this.now() / 1000 / file.interval);
    const given = Buffer.from(token, "ascii");
    let match: number | undefined;
    // every candidate is generated and compared, so the time taken does not depend on which one matched
    for (let d = -window; d <= window; d += 1) {
      const candidate = Buffer.from(hotp(secret, current + d), "ascii");
      if (candidate.length === given.length && timingSafeEqual(candidate, given) && match === undefined) match = current + d;
    }
    return match;
  }

  /** Store id of a secret+period: a hash, so the state file never holds the secret. */
  private storeId(file: TwoFactorFile): string {
    return createHash("sha256").update(`knockport-used-totp-v1\0${file.secret}\0${file.interval}`).digest("hex").slice(0, 32);
  }

  /**
   * "not-required" when the key has no 2FA file; "ok" when the token is valid and of a later time
   * step than any accepted before (it is then recorded durably at once, so neither a concurrent
   * knock nor one after a restart can use it; `release` gives it back if the knock fails for a reason
   * of ours); "denied" otherwise — missing, malformed, wrong, expired or spent token, unreadable or
   * malformed file, or a store that cannot record it (fail closed).
   */
  check(accessKey: string, token: string | undefined): "not-required" | "ok" | "denied" {
    return this.checkAndSpend(accessKey, token).result;
  }

  /**
   * `check`, plus on "ok" which token was spent (secret id, time step and until when it could
   * validate), so a cluster can spend the same token across its gateways.
   */
  checkAndSpend(accessKey: string, token: string | undefined): { result: "not-required" | "ok" | "denied"; spent?: SpentToken } {
    const file = this.read(accessKey);
    if (file === undefined) return { result: "not-required" };
    if (file === "broken" || token === undefined || !TOKEN.test(token)) return { result: "denied" };
    const counter = this.matchCounter(file, token, this.skew);
    if (counter === undefined) return { result: "denied" };
    const id = this.storeId(file);
    const entry = this.store.get(id);
    const periodMs = file.interval * 1000;
    const forgottenAt = this.store.forgottenAt;
    // after the store lost its memory, anything valid at that moment may already have been spent
    const floor = forgottenAt === undefined ? -Infinity : Math.floor(forgottenAt / periodMs) + this.skew;
    if (counter <= Math.max(entry?.counter ?? -Infinity, floor)) return { result: "denied" };
    // a token of step c validates while now < (c + skew + 1) periods
    const until = (counter + this.skew + 1) * periodMs;
    try {
      this.store.set(id, { counter, until });
    } catch (err) {
      // The store's messages name its file and the errno, never a secret or a token.
      this.report("2fa.store.failed", "store", `every knock that needs a 2FA token is refused: ${(err as Error).message}`);
      return { result: "denied" };
    }
    this.previous.set(id, { counter, entry });
    return { result: "ok", spent: { secretId: id, counter, until } };
  }

  /** Un-spend a token whose knock then failed on our side (helper down), so the user can retry with it. */
  release(accessKey: string, token: string | undefined): void {
    const file = this.read(accessKey);
    if (file === undefined || file === "broken" || token === undefined || !TOKEN.test(token)) return;
    const id = this.storeId(file);
    const prev = this.previous.get(id);
    const counter = this.matchCounter(file, token, this.skew + 1);
    if (prev === undefined || counter === undefined || prev.counter !== counter || this.store.get(id)?.counter !== counter) return;
    this.previous.delete(id);
    try {
      this.store.set(id, prev.entry);
    } catch {
      // the token stays spent: safe, only less convenient
    }
  }
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`; // no passwd entry
  }
}

function parseTwoFactorFile(text: string): TwoFactorFile | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<TwoFactorFile> | null;
    if (parsed === null || typeof parsed !== "object") return undefined;
    if (typeof parsed.secret !== "string" || !/^[A-Z2-7]{16,}=*$/i.test(parsed.secret)) return undefined;
    const interval = parsed.interval ?? TWO_FACTOR_DEFAULT_INTERVAL;
    if (!Number.isInteger(interval) || interval < TWO_FACTOR_MIN_INTERVAL || interval > TWO_FACTOR_MAX_INTERVAL) return undefined;
    return { secret: parsed.secret.toUpperCase().replace(/=+$/, ""), interval };
  } catch {
    return undefined;
  }
}
