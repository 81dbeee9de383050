import { join } from "node:path";

/** The files of knockport-helper's --state-dir: the lease journal (snapshot and log) and the instance lock. */
export function helperStateFiles(dir: string): { journal: string; journalLog: string; lock: string } {
  return { journal: join(dir, "leases.json"), journalLog: join(dir, "leases.log"), lock: join(dir, "helper.lock") };
}
