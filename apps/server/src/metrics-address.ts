/**
 * The --metrics-address check, apart from the metrics themselves: the argument parser needs it on every
 * start, prom-client only a server started with --metrics-port.
 */
import { BlockList, isIP } from "node:net";
import { UsageError } from "@knockport/config";

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** --metrics-address must be a loopback address: the metrics listener is never public. */
export function checkMetricsAddress(address: string): string {
  const family = isIP(address);
  const loopback = family !== 0 && LOOPBACK.check(address, family === 4 ? "ipv4" : "ipv6");
  if (!loopback) {
    throw new UsageError(
      `--metrics-address: must be a loopback address such as 127.0.0.1 or ::1 (got "${address}"); the metrics listener is never exposed, scrape it locally or through a proxy`,
    );
  }
  return address;
}
