import { join } from "node:path";

/**
 * The files of knockport-helper's --state-dir: the instance lock, and the lease journal (snapshot and
 * log) that helpers kept before the kernel's sets became the lease book; `knockport uninstall-firewall`
 * still removes a journal left by one.
 */
export function helperStateFiles(dir: string): { journal: string; journalLog: string; lock: string } {
  return { journal: join(dir, "leases.json"), journalLog: join(dir, "leases.log"), lock: join(dir, "helper.lock") };
}
