// The knock server's two listeners on real sockets (127.0.0.1, ephemeral ports) behind a fake helper,
// shared by the socket-level fault files.
import { afterAll, beforeAll } from "vitest";
import { buildKnockApp, createKnockContext } from "../../apps/server/src/app.js";
import { FakeHelper, makeConfig } from "../../apps/server/test/fixtures.js";
import { makeCert, tempDir } from "./support.js";

export type KnockApp = Awaited<ReturnType<typeof buildKnockApp>>;

export interface KnockListeners {
  readonly helper: FakeHelper;
  readonly step1: KnockApp;
  readonly step2: KnockApp;
  /** The listeners' ports, by step. */
  readonly ports: { readonly 1: number; readonly 2: number };
}

/**
 * Starts both listeners before the block's tests (the knock rate limit set out of the way, a throwaway
 * certificate for step 2) and closes them after. The fields are set once beforeAll has run.
 */
export function knockListeners(tempPrefix: string): KnockListeners {
  const dir = tempDir(tempPrefix);
  const out = { helper: new FakeHelper(), ports: { 1: 0, 2: 0 } } as { helper: FakeHelper; step1: KnockApp; step2: KnockApp; ports: { 1: number; 2: number } };
  beforeAll(async () => {
    const config = makeConfig({ "2fa_config_folder": dir.path, step1_2_rate_limit_per_minute: 100_000 });
    const context = createKnockContext(config, out.helper);
    out.step1 = await buildKnockApp({ step: 1, context, logger: false });
    out.step2 = await buildKnockApp({ step: 2, context, logger: false, https: makeCert(dir.path) });
    await out.step1.listen({ host: "127.0.0.1", port: 0 });
    await out.step2.listen({ host: "127.0.0.1", port: 0 });
    const port = (a: KnockApp): number => (a.server.address() as { port: number }).port;
    out.ports = { 1: port(out.step1), 2: port(out.step2) };
  });
  afterAll(async () => {
    await out.step1?.close();
    await out.step2?.close();
    dir.remove();
  });
  return out;
}

/** Connections a listener holds open (-1 when it cannot tell). */
export function connectionsOf(app: KnockApp): Promise<number> {
  return new Promise((resolve) => app.server.getConnections((_e, n) => resolve(n ?? -1)));
}
