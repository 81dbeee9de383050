import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { IpAddress } from "@knockport/protocol";
import { InvalidValueError, serviceSetName } from "@knockport/firewall";
import { IPSET_NAME_MAX, ipsetName, ipsetUpgradeName, isOurIpset, renderIpsetAdd, renderIpsetDel, renderIptablesDryRun, renderIptablesRuleset, renderU32PostMatch } from "@knockport/backend-iptables/render";
import { expectGolden } from "../../firewall/test/golden.js";
import { appEntry, makeConfig, PATH_40, step1Target, step2Target } from "../../firewall/test/fixtures.js";

const app = appEntry;

const forwardConfig = () =>
  makeConfig({
    apps: {
      local1: app(22),
      fwd1: app(3389, { destination: "192.0.2.10:13389", interface_int: "lan0" }),
      fwd2: app(5900, { destination: "[2001:db8::5]", protocol: "udp", masquerade: false, interface_ext: "wan1", interface_int: "lan1" }),
    },
  });

describe("iptables rendering", () => {
  it("guards every app's public port before any DNAT in mangle PREROUTING (runs before nat, where Docker DNATs), jumped to first", () => {
    const r = renderIptablesRuleset(forwardConfig());
    for (const [text, family] of [[r.v4, 4], [r.v6, 6]] as const) {
      const mangle = /\*mangle\n([\s\S]*?)COMMIT/.exec(text)?.[1] ?? "";
      const rules = mangle.split("\n").filter((l) => l.startsWith("-A "));
      expect(rules.map((l) => l.replace(/ -m comment .*$/, ""))).toEqual(
        (
          [
            ["local1", "eth0", "tcp", 22],
            ["fwd1", "eth0", "tcp", 3389],
            ["fwd2", "wan1", "udp", 5900],
          ] as const
        ).map(
          ([name, iface, proto, port]) =>
            `-A KNOCKPORT-PREROUTING -i ${iface} -p ${proto} --dport ${port} -m conntrack --ctdir ORIGINAL -m set ! --match-set ${ipsetName(serviceSetName(name, family))} src ! --update-counters`,
        ),
      );
      for (const l of rules) expect(l).toMatch(/ -j DROP$/);
    }
    expect(r.jumps).toContainEqual({ table: "mangle", builtin: "PREROUTING", spec: ["-m", "comment", "--comment", "KnockPort: jump to its own chain", "-j", "KNOCKPORT-PREROUTING"] });
  });

  it("matches the golden files (tcp + udp app, 40-character path)", () => {
    const r = renderIptablesRuleset(makeConfig());
    expectGolden("iptables-v4.rules", r.v4);
    expectGolden("iptables-v6.rules", r.v6);
    expectGolden("ipset.restore", r.ipset);
    expectGolden("iptables-dry-run.txt", renderIptablesDryRun(makeConfig()));
  });

  it("matches the golden files with forwarded apps and re-added leases", () => {
    const c = forwardConfig();
    const r = renderIptablesRuleset(c, {
      elements: [step2Target(c, "fwd1", "198.51.100.7" as IpAddress), { ...step2Target(c, "fwd2", "2001:db8:1::7" as IpAddress), timeoutSeconds: 99 }],
    });
    expectGolden("iptables-forward-v4.rules", r.v4);
    expectGolden("iptables-forward-v6.rules", r.v6);
    expectGolden("ipset-forward.restore", r.ipset);
    expect(r.v4).toContain("-A KNOCKPORT-PREROUTING -i eth0 -p tcp --dport 3389 -m set --match-set");
    expect(r.v4).toMatch(/-A KNOCKPORT-FORWARD -i eth0 -o lan0 -d 192\.0\.2\.10 -p tcp --dport 13389 -m set --match-set kp-fwd1-[0-9a-f]{8}-v4 src -m conntrack --ctstate DNAT /);
    expect(r.v4).toContain("-j DNAT --to-destination 192.0.2.10:13389");
    expect(r.v6).toContain("-j DNAT --to-destination [2001:db8::5]:5900");
    expect(r.v6).not.toContain("MASQUERADE");
  });

  it("limits new HTTPS connections per knocked address with hashlimit before the accept, without counting them on the lease; none when the limit is 0", () => {
    const r = renderIptablesRuleset(makeConfig({ global: { https_connection_limit_per_minute: 7, https_connection_limit_burst: 3 } }));
    for (const [family, text] of [[4, r.v4], [6, r.v6]] as const) {
      const lines = text.split("\n");
      const limit = lines.findIndex((l) => l.includes("-m hashlimit"));
      const accept = lines.findIndex((l) => l.includes(`--dport 8443 -m set --match-set kp-https-v${family} src -m comment`));
      expect(limit).toBeGreaterThan(-1);
      expect(accept).toBe(limit + 1);
      expect(lines[limit]).toContain(
        `--dport 8443 -m conntrack --ctstate NEW -m set --match-set kp-https-v${family} src ! --update-counters -m hashlimit --hashlimit-above 7/minute --hashlimit-burst 3 --hashlimit-mode srcip --hashlimit-name kp-https-v${family} `,
      );
      expect(lines[limit]).toMatch(/-j DROP$/);
    }
    const off = renderIptablesRuleset(makeConfig({ global: { https_connection_limit_per_minute: 0 } }));
    expect(off.v4 + off.v6).not.toContain("hashlimit");
    // no ipset for the limiter: its state lives in the hashlimit table
    expect(r.ipset).not.toMatch(/meter|hashlimit/);
  });

  it("puts a comment on every rule", () => {
    for (const text of [renderIptablesRuleset(forwardConfig()).v4, renderIptablesRuleset(forwardConfig()).v6]) {
      const rules = text.split("\n").filter((l) => l.startsWith("-A "));
      expect(rules.length).toBeGreaterThan(10);
      for (const r of rules) expect(r).toMatch(/ -m comment --comment "[^"]+" -j /);
    }
  });

  it("anchors the step-1 match at the first payload byte, 4 bytes a test, at most 10 tests a u32 match", () => {
    const path64 = `/${"abcdefghij".repeat(6)}-._`;
    expect(path64).toHaveLength(64);
    const v4 = renderU32PostMatch(path64, 4);
    // "POST " + 64 + " " = 70 bytes = 18 tests (the last one masked to 2 bytes) in 2 u32 matches
    expect(v4.filter((x) => x === "-m")).toHaveLength(2);
    const tests = v4.filter((x) => x.startsWith('"')).flatMap((x) => x.slice(1, -1).split("&&"));
    expect(tests).toHaveLength(18);
    expect(tests[0]).toBe("0>>22&0x3C@12>>26&0x3C@0=0x504F5354");
    expect(tests[17]).toBe("0>>22&0x3C@12>>26&0x3C@68&0xFFFF0000=0x5F200000");
    const v6 = renderU32PostMatch(PATH_40, 6).filter((x) => x.startsWith('"')).flatMap((x) => x.slice(1, -1).split("&&"));
    expect(v6[0]).toBe("52>>26&0x3C@40=0x504F5354");
    expect(v6).toHaveLength(12); // 46 bytes
  });

  it("derives ipset names of at most 31 characters, injective and recognisable", () => {
    const long = "A".repeat(32);
    const names = [long, `${"A".repeat(31)}B`, "a".repeat(32), "ssh", "my-app_1"].map((n) => ipsetName(serviceSetName(n, 4)));
    for (const n of names) {
      expect(n.length).toBeLessThanOrEqual(IPSET_NAME_MAX);
      expect(isOurIpset(n)).toBe(true);
    }
    expect(new Set(names).size).toBe(names.length);
    expect(ipsetName("https_v6")).toBe("kp-https-v6");
    expect(ipsetName(serviceSetName("ssh", 6))).toMatch(/^kp-ssh-[0-9a-f]{8}-v6$/);
    expect(() => ipsetName("nope")).toThrow(InvalidValueError);
    expect(isOurIpset("docker-net")).toBe(false);
  });

  it("renders grants and revokes for ipset -exist restore", () => {
    const c = makeConfig();
    expect(renderIpsetAdd(step1Target(c, "openvpn", "198.51.100.7" as IpAddress))).toBe("add kp-https-v4 198.51.100.7 timeout 5 packets 0 bytes 0\n");
    expect(renderIpsetDel(step1Target(c, "openvpn", "2001:db8::7" as IpAddress))).toBe("del kp-https-v6 2001:db8::7\n");
    expect(() => renderIpsetAdd({ set: "https_v4", ip: "2001:db8::7" as IpAddress, timeoutSeconds: 5 })).toThrow(InvalidValueError);
  });

  it("creates every set with per-element counters", () => {
    const creates = renderIptablesRuleset(makeConfig()).ipset.split("\n").filter((l) => l.startsWith("create "));
    expect(creates).toHaveLength(6);
    for (const line of creates) expect(line).toMatch(/^create kp-\S+ hash:ip family inet6? timeout 0 counters$/);
  });

  it("swaps sets made without counters for fresh ones before filling them (golden)", () => {
    const c = makeConfig();
    const old = new Set([ipsetName("https_v4"), ipsetName(serviceSetName("ssh-admin", 6))]);
    const r = renderIptablesRuleset(c, { elements: [step2Target(c, "ssh-admin", "2001:db8::7" as IpAddress)], withoutCounters: old });
    expectGolden("ipset-upgrade.restore", r.ipset);
    const lines = r.ipset.split("\n");
    for (const name of old) {
      const at = lines.indexOf(`swap ${name} ${name}-u`);
      expect(at).toBeGreaterThan(0);
      expect(lines[at + 1]).toBe(`destroy ${name}-u`);
      // the swap comes before the set's own create/flush, and so before the leases are re-added
      expect(lines.indexOf(`flush ${name}`)).toBeGreaterThan(at);
    }
    expect(lines.filter((l) => l.startsWith("swap "))).toHaveLength(2);
    expect(ipsetUpgradeName("kp-https-v4")).toBe("kp-https-v4-u");
    expect(isOurIpset(ipsetUpgradeName("kp-https-v4"))).toBe(false);
    expect(() => ipsetUpgradeName("docker-net")).toThrow(InvalidValueError);
  });
});

// The generated files against the real binaries, in a throwaway network namespace (root only).
const UNSHARE = ["/usr/bin/unshare", "/bin/unshare"].find((p) => existsSync(p));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const flavours = ["nft", "legacy"].filter((f) => existsSync(`/usr/sbin/iptables-${f}-restore`) && existsSync("/usr/sbin/ipset"));
const skip = !UNSHARE || !isRoot || flavours.length === 0;
if (skip) console.warn("[firewall] skipping iptables-restore checks: needs root, unshare, ipset and iptables");

describe.skipIf(skip).each(flavours)("iptables-%s-restore loads the generated rules (unshare --net)", (flavour) => {
  it("ipset, IPv4 and IPv6 rules, with forwarded apps and a 64-character path", () => {
    const c = makeConfig({
      global: { http_post_path: `/${"abcdefghij".repeat(6)}-._` },
      apps: { local1: app(22), fwd1: app(3389, { destination: "192.0.2.10:13389" }), fwd2: app(5900, { destination: "[2001:db8::5]", protocol: "udp" }) },
    });
    const r = renderIptablesRuleset(c, { elements: [step2Target(c, "local1", "198.51.100.7" as IpAddress)] });
    // One shell-free invocation per tool inside one fresh namespace: unshare runs a small fixed script
    // whose inputs arrive through the environment, never interpolated.
    const script = [
      'printf "%s" "$IPSET" | ipset -exist restore || exit 11',
      `printf "%s" "$V4" | iptables-${flavour}-restore --noflush || exit 12`,
      `printf "%s" "$V6" | ip6tables-${flavour}-restore --noflush || exit 13`,
      `iptables-${flavour} -S KNOCKPORT-INPUT | grep -c u32 || exit 14`,
      "ipset list kp-https-v4 >/dev/null || exit 15",
    ].join("\n");
    const res = spawnSync(UNSHARE as string, ["--net", "/bin/sh", "-c", script], {
      encoding: "utf8",
      timeout: 20_000,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", IPSET: r.ipset, V4: r.v4, V6: r.v6 },
    });
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: "" });
  });

  it("upgrades sets made without counters while our rules reference them; the lease is re-added with counters", () => {
    const c = makeConfig();
    const target = step2Target(c, "ssh-admin", "198.51.100.7" as IpAddress);
    const set = ipsetName(target.set);
    const current = renderIptablesRuleset(c, { elements: [target] });
    // What an earlier version created: the same sets without `counters`, an element in one of them.
    const before = current.ipset.replace(/ counters$/gm, "").replace(/ packets 0 bytes 0$/gm, "");
    const every = new Set(before.split("\n").filter((l) => l.startsWith("create ")).map((l) => l.split(" ")[1] ?? ""));
    expect(every.size).toBe(6);
    const upgrade = renderIptablesRuleset(c, { elements: [target], withoutCounters: every });
    const script = [
      'printf "%s" "$BEFORE" | ipset -exist restore || exit 11',
      `printf "%s" "$V4" | iptables-${flavour}-restore --noflush || exit 12`,
      // without the swap the new create is refused
      'printf "%s" "$CURRENT" | ipset -exist restore 2>/dev/null && exit 13',
      'printf "%s" "$UPGRADE" | ipset -exist restore || exit 14',
      "ipset save",
      "ipset list -n",
    ].join("\n");
    const res = spawnSync(UNSHARE as string, ["--net", "/bin/sh", "-c", script], {
      encoding: "utf8",
      timeout: 20_000,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", BEFORE: before, CURRENT: current.ipset, UPGRADE: upgrade.ipset, V4: current.v4 },
    });
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: "" });
    expect(before).not.toContain("counters");
    expect(res.stdout).toMatch(new RegExp(`^create ${set} hash:ip family inet .*timeout 0 counters`, "m"));
    expect(res.stdout).toMatch(/^create kp-https-v4 hash:ip family inet .*timeout 0 counters/m);
    expect(res.stdout).toMatch(new RegExp(`^add ${set} 198\\.51\\.100\\.7 timeout \\d+ packets 0 bytes 0$`, "m"));
    expect(res.stdout).not.toContain("-u\n");
  });
});
