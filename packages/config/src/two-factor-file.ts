import { createHmac } from "node:crypto";

/**
 * HMAC key ("domain label") of the 2FA file id. Fixed and public: the id only keeps the access key
 * out of file names, directory listings and backups; it is not a secret of its own.
 */
export const TWO_FACTOR_ID_LABEL = "knockport-2fa-file-v1";

/**
 * The name under which `knockport setup-2fa` stores an access key's TOTP file:
 * the first 32 hex digits (128 bits) of HMAC-SHA256(key = "knockport-2fa-file-v1", message = the
 * access key, UTF-8). The server also reads the original's `<access_key>.json` name.
 */
export function twoFactorFileId(accessKey: string): string {
  return createHmac("sha256", TWO_FACTOR_ID_LABEL).update(accessKey, "utf8").digest("hex").slice(0, 32);
}

/** Shortest and longest TOTP period (seconds) a 2FA file may declare. */
export const TWO_FACTOR_MIN_INTERVAL = 1;
export const TWO_FACTOR_MAX_INTERVAL = 3600;
export const TWO_FACTOR_DEFAULT_INTERVAL = 30;
