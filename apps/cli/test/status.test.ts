import { describe, expect, it } from "vitest";
import type { ListResult } from "@knockport/protocol";
import { formatLeaseTable } from "../src/status.js";

const lease = (over: Partial<ListResult["leases"][number]> = {}): ListResult["leases"][number] => ({
  app: "ssh",
  ip: "198.51.100.7",
  step: 2,
  port: 2222,
  protocol: "tcp",
  expiresAt: "2030-01-01T00:10:00.000Z",
  remainingSeconds: 599.5,
  ...over,
});

describe("knockport status table", () => {
  it("shows packets and bytes per lease, right-aligned, '-' where the helper has no reading, and when they were read", () => {
    const text = formatLeaseTable({
      countersAt: "2030-01-01T00:00:01.000Z",
      leases: [
        lease({ step: 1, port: 8443, remainingSeconds: 4.25, expiresAt: "2030-01-01T00:00:05.000Z", packets: 7, bytes: 3000 }),
        lease({ packets: 123456, bytes: 98765432 }),
        lease({ app: "openvpn", ip: "2001:db8::7", protocol: "udp", port: 1194 }),
      ],
    });
    expect(text).toBe(
      [
        "APP      STEP         ADDRESS       PORT      REMAINING  PACKETS     BYTES  EXPIRES",
        "ssh      1 (https)    198.51.100.7  tcp/8443  4.3s             7      3000  2030-01-01T00:00:05.000Z",
        "ssh      2 (service)  198.51.100.7  tcp/2222  599.5s      123456  98765432  2030-01-01T00:10:00.000Z",
        "openvpn  2 (service)  2001:db8::7   udp/1194  599.5s           -         -  2030-01-01T00:10:00.000Z",
        "counters read from the kernel at 2030-01-01T00:00:01.000Z; they restart at 0 when a lease is refreshed",
        "",
      ].join("\n"),
    );
  });

  it("without a counter reading: dashes and no footer; no leases: one line", () => {
    const text = formatLeaseTable({ leases: [lease()] });
    expect(text.split("\n")[1]).toMatch(/ {2}599\.5s {11}- {6}- {2}2030-/);
    expect(text).not.toContain("counters read");
    expect(formatLeaseTable({ leases: [], countersAt: "2030-01-01T00:00:01.000Z" })).toBe("no open leases\n");
  });
});
