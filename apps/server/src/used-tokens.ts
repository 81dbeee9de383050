import { chmodSync, readFileSync, statSync } from "node:fs";
import { userInfo } from "node:os";
import { checkPrivateDir, makeDirs, writeFileDurably } from "@knockport/durable-file";
import { join } from "node:path";


/** The last TOTP time step accepted for one secret, and until when a token of that step could be valid. */
export interface UsedTokenEntry {
  readonly counter: number;
  /** Epoch ms after which no token of `counter` or earlier can validate any more (the entry may go). */
  readonly until: number;
}

/**
 * Where accepted TOTP tokens are remembered. Ids are hashes (never the secret, never the token).
 * `set` must be durable when it returns, and throws when it cannot be (the caller then refuses).
 */
export interface UsedTokenStore {
  get(id: string): UsedTokenEntry | undefined;
  set(id: string, entry: UsedTokenEntry | undefined): void;
  /**
   * When the store lost its memory (a corrupt file was replaced), epoch ms; tokens that could have
   * been accepted before then are refused. Undefined when nothing was ever lost.
   */
  readonly forgottenAt: number | undefined;
}

/** Process-memory store: for tests and for tools; forgets everything on restart. */
export class MemoryUsedTokenStore implements UsedTokenStore {
  private readonly entries = new Map<string, UsedTokenEntry>();
  readonly forgottenAt: number | undefined = undefined;
  constructor(private readonly now: () => number = Date.now) {}
  get(id: string): UsedTokenEntry | undefined {
    return this.entries.get(id);
  }
  set(id: string, entry: UsedTokenEntry | undefined): void {
    const t = this.now();
    for (const [k, e] of this.entries) if (e.until <= t) this.entries.delete(k);
    if (entry === undefined) this.entries.delete(id);
    else this.entries.set(id, entry);
  }
}

/** Refuses every write: used when the state directory cannot be used, so 2FA knocks fail closed. */
export class UnavailableUsedTokenStore implements UsedTokenStore {
  readonly forgottenAt = undefined;
  constructor(private readonly reason: string) {}
  get(): UsedTokenEntry | undefined {
    return undefined;
  }
  set(): void {
    throw new UsedTokenStoreError("TOKEN_STORE_UNAVAILABLE", this.reason);
  }
}

export type UsedTokenStoreErrorCode = "TOKEN_STORE_UNAVAILABLE" | "TOKEN_STORE_WRITE_FAILED" | "TOKEN_STORE_FULL";

export class UsedTokenStoreError extends Error {
  constructor(
    readonly code: UsedTokenStoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "UsedTokenStoreError";
  }
}

export const USED_TOKENS_FILE = "used-totp.json";
/** One entry per 2FA secret that was used within its validity window; far more than any config has. */
const MAX_ENTRIES = 100_000;

interface StoreFile {
  version: 1;
  forgottenAt: number | null;
  used: Record<string, UsedTokenEntry>;
}

export interface FileUsedTokenStoreOptions {
  now?: () => number;
  /** Told when a corrupt file was found and replaced (never given secrets). */
  warn?: (message: string) => void;
}

/**
 * The server's own durable memory of accepted TOTP tokens: `<state-dir>/used-totp.json` (0600, in a
 * 0700 folder), rewritten atomically (temporary file, fsync, rename, fsync of the folder) before a
 * knock with a token is answered, so a token stays spent across restarts and crashes. Entries are
 * dropped once their token can no longer validate, so the file stays small.
 */
export class FileUsedTokenStore implements UsedTokenStore {
  private readonly file: string;
  private readonly now: () => number;
  private entries = new Map<string, UsedTokenEntry>();
  private forgotten: number | undefined;

  /** Throws (with the errno code in the message) when the folder cannot be created or the file read. */
  constructor(
    private readonly dir: string,
    options: FileUsedTokenStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.file = join(dir, USED_TOKENS_FILE);
    makeDirs(dir, 0o700);
    try {
      if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
    } catch {
      /* not ours to change: checkPrivateDir decides whether it is safe */
    }
    checkPrivateDir(dir, { label: "--state-dir" });
    let text: string | undefined;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw unusableFile(this.file, err);
    }
    if (text !== undefined) {
      const parsed = parseStoreFile(text);
      if (parsed === undefined) {
        // What was spent before is unknown: refuse every token that could have been accepted until now.
        this.forgotten = this.now();
        options.warn?.(`${this.file}: unreadable content; tokens valid before now are refused, the file is rewritten`);
        this.write();
      } else {
        this.forgotten = parsed.forgottenAt ?? undefined;
        for (const [id, e] of Object.entries(parsed.used)) this.entries.set(id, e);
      }
    }
    // Prove now, not at the first knock, that the folder is writable.
    try {
      this.write();
    } catch (err) {
      throw unusableFile(this.file, err);
    }
  }

  get forgottenAt(): number | undefined {
    return this.forgotten;
  }

  get(id: string): UsedTokenEntry | undefined {
    return this.entries.get(id);
  }

  set(id: string, entry: UsedTokenEntry | undefined): void {
    const before = this.entries.get(id);
    if (entry === undefined) this.entries.delete(id);
    else this.entries.set(id, entry);
    const t = this.now();
    for (const [k, e] of this.entries) if (e.until <= t && k !== id) this.entries.delete(k);
    if (this.entries.size > MAX_ENTRIES) {
      this.restoreEntry(id, before);
      throw new UsedTokenStoreError("TOKEN_STORE_FULL", `${this.file}: more than ${MAX_ENTRIES} entries`);
    }
    try {
      this.write();
    } catch (err) {
      this.restoreEntry(id, before);
      throw new UsedTokenStoreError(
        "TOKEN_STORE_WRITE_FAILED",
        `${this.file}: cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the server's --state-dir`,
      );
    }
  }

  private restoreEntry(id: string, before: UsedTokenEntry | undefined): void {
    if (before === undefined) this.entries.delete(id);
    else this.entries.set(id, before);
  }

  private write(): void {
    const content: StoreFile = { version: 1, forgottenAt: this.forgotten ?? null, used: Object.fromEntries(this.entries) };
    writeFileDurably(this.file, `${JSON.stringify(content)}\n`);
  }
}

/** Why the store file cannot be used, naming it, its owner and the fix (a root-owned file left by a run as root). */
function unusableFile(file: string, err: unknown): UsedTokenStoreError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  const user = userInfo().username;
  let owner = "";
  try {
    const st = statSync(file);
    owner = `; it belongs to uid ${st.uid}, mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}`;
  } catch {
    /* gone or hidden: the code says enough */
  }
  const fix = code === "EACCES" || code === "EPERM" ? `; give it to the server's user: chown ${user}: ${file} (knockport run does so for its --server-state-dir)` : "";
  return new UsedTokenStoreError("TOKEN_STORE_UNAVAILABLE", `${file}: cannot ${code === "EACCES" ? "use it" : "read or write it"} as user ${user} (${code}${owner})${fix}`);
}

function parseStoreFile(text: string): StoreFile | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof doc !== "object" || doc === null) return undefined;
  const d = doc as Record<string, unknown>;
  if (d.version !== 1 || typeof d.used !== "object" || d.used === null || Array.isArray(d.used)) return undefined;
  if (d.forgottenAt !== null && !Number.isSafeInteger(d.forgottenAt)) return undefined;
  const used: Record<string, UsedTokenEntry> = {};
  for (const [id, e] of Object.entries(d.used as Record<string, unknown>)) {
    if (!/^[0-9a-f]{32}$/.test(id) || typeof e !== "object" || e === null) return undefined;
    const { counter, until } = e as Record<string, unknown>;
    if (!Number.isSafeInteger(counter) || !Number.isSafeInteger(until)) return undefined;
    used[id] = { counter: counter as number, until: until as number };
  }
  return { version: 1, forgottenAt: (d.forgottenAt as number | null) ?? null, used };
}
