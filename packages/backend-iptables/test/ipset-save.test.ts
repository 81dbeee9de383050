import { describe, expect, it } from "vitest";
import { ipsetsWithoutCounters, parseIpsetSave } from "@knockport/backend-iptables/render";

describe("ipset save parser", () => {
  it("reads ipset save counters and finds our sets made without counters", () => {
    const save = [
      "create kp-https-v4 hash:ip family inet hashsize 1024 maxelem 65536 timeout 0 counters bucketsize 12 initval 0xc7a05532",
      "add kp-https-v4 198.51.100.9 timeout 29 packets 2 bytes 100",
      "create kp-https-v6 hash:ip family inet6 hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval 0xd9f40882",
      "add kp-https-v6 2001:db8::9 timeout 29",
      "create someone-elses hash:ip family inet hashsize 1024 maxelem 65536",
      "",
    ].join("\n");
    const names = new Map([
      ["kp-https-v4", "https_v4"],
      ["kp-https-v6", "https_v6"],
    ]);
    expect(parseIpsetSave(save, names)).toEqual([
      { set: "https_v4", ip: "198.51.100.9", expiresInMs: 29_000, packets: 2, bytes: 100 },
      { set: "https_v6", ip: "2001:db8::9", expiresInMs: 29_000 },
    ]);
    expect([...ipsetsWithoutCounters(save, (n) => n.startsWith("kp-"))]).toEqual(["kp-https-v6"]);
  });

  it("reads ipset save output: our sets only, logical names, whole seconds, timeout 0 = never", () => {
    const save = [
      "create kp-https-v4 hash:ip family inet hashsize 1024 maxelem 65536 timeout 60 bucketsize 12 initval 0xd9f40882",
      "add kp-https-v4 198.51.100.9 timeout 29",
      "add kp-https-v4 198.51.100.8 timeout 0",
      "add someone-elses 198.51.100.7 timeout 5",
      "add kp-ssh-abcdef01-v6 2001:db8::7 timeout 3600",
      "",
    ].join("\n");
    const names = new Map([
      ["kp-https-v4", "https_v4"],
      ["kp-ssh-abcdef01-v6", "svc_ssh_v6"],
    ]);
    expect(parseIpsetSave(save, names)).toEqual([
      { set: "https_v4", ip: "198.51.100.9", expiresInMs: 29_000 },
      { set: "https_v4", ip: "198.51.100.8", expiresInMs: Infinity },
      { set: "svc_ssh_v6", ip: "2001:db8::7", expiresInMs: 3_600_000 },
    ]);
  });
});

