import { describe, expect, it } from "vitest";
import { parseNftDuration, parseNftSetElements } from "@knockport/backend-nftables/render";

describe("nft listing parser", () => {
  it("reads durations", () => {
    expect(parseNftDuration("2d23h59m59s992ms")).toBe(2 * 86_400_000 + 23 * 3_600_000 + 59 * 60_000 + 59_992);
    expect(parseNftDuration("1m30s")).toBe(90_000);
    expect(parseNftDuration("500ms")).toBe(500);
    expect(parseNftDuration("soon")).toBeUndefined();
  });

  it("reads elements of the named sets only, across wrapped lines, with and without a timeout", () => {
    const listing = [
      "table inet knockport {",
      "\tset https_v4 {",
      "\t\ttype ipv4_addr",
      "\t\tflags timeout",
      "\t\telements = { 198.51.100.10 timeout 1h expires 59m59s992ms, 198.51.100.11 timeout 1m30s expires 1m29s992ms,",
      "\t\t\t     198.51.100.12 }",
      "\t}",
      "",
      "\tset svc_ssh_v6 {",
      "\t\ttype ipv6_addr",
      "\t\tflags timeout",
      "\t\telements = { 2001:db8::1 timeout 5s expires 4s992ms }",
      "\t}",
      "",
      "\tset other {",
      "\t\ttype ipv4_addr",
      "\t\telements = { 198.51.100.99 }",
      "\t}",
      "",
      "\tset svc_ssh_v4 {",
      "\t\ttype ipv4_addr",
      "\t\tflags timeout",
      "\t}",
      "}",
    ].join("\n");
    expect(parseNftSetElements(listing, new Set(["https_v4", "svc_ssh_v6", "svc_ssh_v4"]))).toEqual([
      { set: "https_v4", ip: "198.51.100.10", expiresInMs: 3_599_992 },
      { set: "https_v4", ip: "198.51.100.11", expiresInMs: 89_992 },
      { set: "https_v4", ip: "198.51.100.12", expiresInMs: Infinity },
      { set: "svc_ssh_v6", ip: "2001:db8::1", expiresInMs: 4992 },
    ]);
  });

  it("skips the HTTPS connection meters: their elements are limiter state, not leases", () => {
    // The meter listing as nft 1.0.6 prints it after one connection from 198.51.100.10.
    const listing = [
      "table inet knockport {",
      "\tset https_v4 {",
      "\t\ttype ipv4_addr",
      "\t\tflags timeout",
      "\t\tcounter",
      "\t\telements = { 198.51.100.10 counter packets 1 bytes 60 timeout 1h expires 59m59s940ms }",
      "\t}",
      "",
      "\tset https_meter_v4 {",
      "\t\ttype ipv4_addr",
      "\t\tsize 65535",
      "\t\tflags dynamic,timeout",
      "\t\ttimeout 1m",
      "\t\telements = { 198.51.100.10 limit rate over 60/minute burst 20 packets expires 59s996ms, 198.51.100.66 limit rate over 60/minute burst 20 packets expires 3s }",
      "\t}",
      "}",
    ].join("\n");
    // the walk names the lease sets only (service.ts leaseSets: https_v4/6 and svc_<app>_v4/6)
    expect(parseNftSetElements(listing, new Set(["https_v4", "https_v6"]))).toEqual([
      { set: "https_v4", ip: "198.51.100.10", expiresInMs: 3_599_940, packets: 1, bytes: 60 },
    ]);
  });

  it("reads per-element counters (nft prints them before the timeout)", () => {
    const listing = [
      "table inet knockport {",
      "\tset svc_ssh_v4 {",
      "\t\ttype ipv4_addr",
      "\t\tflags timeout",
      "\t\tcounter",
      "\t\telements = { 198.51.100.10 counter packets 12 bytes 840 timeout 1m expires 59s984ms,",
      "\t\t\t     198.51.100.11 counter packets 0 bytes 0 timeout 5s expires 4s948ms, 198.51.100.12 counter packets 9007199254740993 bytes 1 }",
      "\t}",
      "}",
    ].join("\n");
    expect(parseNftSetElements(listing, new Set(["svc_ssh_v4"]))).toEqual([
      { set: "svc_ssh_v4", ip: "198.51.100.10", expiresInMs: 59_984, packets: 12, bytes: 840 },
      { set: "svc_ssh_v4", ip: "198.51.100.11", expiresInMs: 4948, packets: 0, bytes: 0 },
      // beyond what a JSON number holds exactly: no counters rather than wrong ones
      { set: "svc_ssh_v4", ip: "198.51.100.12", expiresInMs: Infinity },
    ]);
  });
});
