import { createHash, timingSafeEqual } from "node:crypto";
import type { AppConfig, KnockportConfig } from "@knockport/config";

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

interface AppKeys {
  readonly http: readonly Buffer[];
  readonly https: readonly Buffer[];
}

/**
 * Access keys as SHA-256 digests, compared with timingSafeEqual against every candidate without
 * stopping early, so neither a key's content nor its position in the list shows in the timing.
 * Unknown apps are checked against a decoy list of the same shape.
 */
export class KeyChecker {
  private readonly apps = new Map<string, AppKeys>();
  private readonly decoy: AppKeys;

  constructor(config: KnockportConfig) {
    for (const app of config.apps) {
      this.apps.set(app.name, { http: app.accessKeysHttp.map(digest), https: app.accessKeysHttps.map(digest) });
    }
    const longest = Math.max(1, ...config.apps.map((a) => a.accessKeysHttp.length));
    const filler = Array.from({ length: longest }, (_, i) => digest(`decoy-${i}-${Math.random()}`));
    this.decoy = { http: filler, https: filler };
  }

  /** Index of the step-1 key that matches, or -1 (also for unknown apps). */
  matchStep1(appName: string, key: string): number {
    const keys = this.apps.get(appName);
    const index = matchIndex((keys ?? this.decoy).http, digest(key));
    return keys ? index : -1;
  }

  /** Step 2 must present the HTTPS key paired with the step-1 key this address used. */
  matchStep2(appName: string, pairedIndex: number, key: string): boolean {
    const keys = this.apps.get(appName);
    const expected = keys?.https[pairedIndex] ?? this.decoy.https[0];
    return expected !== undefined && timingSafeEqual(expected, digest(key)) && keys !== undefined;
  }
}

function matchIndex(candidates: readonly Buffer[], given: Buffer): number {
  let found = -1;
  for (let i = 0; i < candidates.length; i += 1) {
    const candidate = candidates[i];
    if (candidate && timingSafeEqual(candidate, given) && found === -1) found = i;
  }
  return found;
}

export type { AppConfig };
