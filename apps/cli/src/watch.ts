import { HelperClient, type HelperCallError } from "@knockport/helper-client";

/**
 * `knockport watch`: the helper's lease events as JSON lines on stdout — first `{"leases":[...]}`
 * (every live lease), then one line per open, refresh, close and expiry, until the helper goes away
 * (exit 1) or the command is interrupted (exit 0).
 */
export function watchLeases(socketPath: string, write: (line: string) => void): Promise<number> {
  const client = new HelperClient({ socketPath, timeoutMs: 5000 });
  return new Promise<number>((resolve, reject) => {
    const stop = (): void => {
      client.close();
      resolve(0);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    client
      .watch(
        (event) => write(`${JSON.stringify(event)}\n`),
        (err: HelperCallError) => {
          process.stderr.write(`knockport: watch ended: ${err.message}\n`);
          resolve(1);
        },
      )
      .then((snapshot) => write(`${JSON.stringify(snapshot)}\n`), reject);
  });
}
