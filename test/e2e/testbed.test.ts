// Self-test of @knockport/testbed: the topology, probes, curl knocks, nft/conntrack readers and cleanup,
// against throwaway listeners and a throwaway nft table (no KnockPort binaries needed).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cleanupStaleTopologies,
  createTopology,
  enableConntrack,
  knock,
  knockUrl,
  listConntrack,
  nftSetElements,
  probe,
  probeTcp,
  probeTcpConnect,
  probeUdp,
  readNftTable,
  startEchoServer,
  type Topology,
} from "./testbed.js";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function namespaces(): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.length > 0);
}

describe("testbed", () => {
  let topo: Topology;

  beforeAll(async () => {
    cleanupStaleTopologies();
    topo = await createTopology({ withLan: true });
  });
  afterAll(async () => {
    await topo?.destroy();
  });

  it("builds namespaces with the per-run suffix and the documented addresses", async () => {
    expect(topo.suffix).toMatch(/^[0-9a-f]{6}$/);
    const present = namespaces();
    for (const ns of [topo.names.sw, topo.names.srv, topo.names.cli, topo.names.cli2, topo.names.lan]) {
      expect(present, `namespace ${String(ns)}`).toContain(ns);
    }
    const srvAddrs = await topo.exec("srv", "ip", ["-br", "addr", "show", "dev", "ext0"]);
    expect(srvAddrs.stdout).toContain("198.51.100.1/24");
    expect(srvAddrs.stdout).toContain("2001:db8:100::1/64");
    const cli2Addrs = await topo.exec("cli2", "ip", ["-br", "addr", "show", "dev", "eth0"]);
    expect(cli2Addrs.stdout).toContain("198.51.100.20/24");
    // No route anywhere but our own ranges: nothing can leave the topology.
    const routes = await topo.exec("cli", "ip", ["route", "show", "default"]);
    expect(routes.stdout.trim()).toBe("");
    const fwd = await topo.exec("srv", "sysctl", ["-n", "net.ipv4.ip_forward"]);
    expect(fwd.stdout.trim()).toBe("1");
  });

  it("probes see the echo service over IPv4 and IPv6, tcp and udp, and report closed ports", async () => {
    await startEchoServer(topo, "srv", { tcp: [2222], udp: [1194] });
    const { srv } = topo.addr;
    const results = await Promise.all([
      probeTcp(topo, "cli", srv.v4, 2222),
      probeTcp(topo, "cli2", srv.v6, 2222),
      probeUdp(topo, "cli", srv.v4, 1194),
      probeUdp(topo, "cli2", srv.v6, 1194),
      probeTcp(topo, "cli", srv.v4, 2223),
      probeUdp(topo, "cli", srv.v4, 1195),
    ]);
    expect(results).toEqual(["open", "open", "open", "open", "closed", "closed"]);
    const refused = await probe(topo, "cli", "tcp", srv.v4, 2223);
    expect(refused.reason).toBe("refused");
    // The lan host reaches srv's internal side.
    expect(await probeTcp(topo, "lan", topo.addr.srvLan?.v4 ?? "", 2222)).toBe("open");
  });

  it("a drop rule on ext0 closes a port for both clients (one shared interface), not for srv itself", async () => {
    const ruleset = `table inet kp_selftest {
  set allow_v4 { type ipv4_addr; flags timeout; }
  chain input { type filter hook input priority 0; policy accept;
    iifname "ext0" tcp dport 2222 ip saddr @allow_v4 accept
    iifname "ext0" tcp dport 2222 drop
    iifname "ext0" udp dport 1194 drop
  }
}
`;
    await topo.exec("srv", "nft", ["-f", "-"], { input: ruleset, reject: true });
    const { srv, cli } = topo.addr;
    const t0 = Date.now();
    const [a, b, c, d] = await Promise.all([
      probe(topo, "cli", "tcp", srv.v4, 2222, 300),
      probeTcp(topo, "cli2", srv.v4, 2222, 300),
      probeUdp(topo, "cli", srv.v4, 1194, 300),
      probeTcp(topo, "srv", srv.v4, 2222, 300),
    ]);
    expect([a.state, b, c, d]).toEqual(["closed", "closed", "closed", "open"]);
    expect(a.reason).toBe("timeout");
    expect(Date.now() - t0).toBeLessThan(5000);
    // A timed element opens it for cli only, and the kernel expires it.
    await topo.exec("srv", "nft", ["add", "element", "inet", "kp_selftest", "allow_v4", `{ ${cli.v4} timeout 2s }`], { reject: true });
    const table = await readNftTable(topo, { table: "kp_selftest" });
    expect(nftSetElements(table ?? { nftables: [] }, "allow_v4").map((e) => e.value)).toEqual([cli.v4]);
    expect(await probeTcp(topo, "cli", srv.v4, 2222, 300)).toBe("open");
    expect(await probeTcp(topo, "cli2", srv.v4, 2222, 300)).toBe("closed");
    await new Promise((r) => setTimeout(r, 2300));
    expect(await probeTcp(topo, "cli", srv.v4, 2222, 300)).toBe("closed");
    expect(await readNftTable(topo, { table: "no_such_table" })).toBeUndefined();
    await topo.exec("srv", "nft", ["delete", "table", "inet", "kp_selftest"], { reject: true });
  });

  it("knock(): step 1 times out when the reply is dropped; step 2 returns status and body (IPv4 and IPv6)", async () => {
    // Throwaway HTTP + HTTPS listeners in srv that answer "OK\n".
    const dir = mkdtempSync(join(tmpdir(), "kp-selftest-"));
    const keyFile = join(dir, "key.pem");
    const certFile = join(dir, "cert.pem");
    try {
      const cert = await topo.exec("srv", "openssl", [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=testbed",
        "-keyout", keyFile, "-out", certFile,
      ], { timeoutMs: 30_000 });
      expect(cert.exitCode, cert.stderr).toBe(0);
      const script = `
        import http from "node:http"; import https from "node:https"; import fs from "node:fs";
        const h = (req, res) => { let b = ""; req.on("data", (c) => b += c); req.on("end", () => { res.statusCode = b.includes("good") ? 200 : 403; res.end(b.includes("good") ? "OK\\n" : "Forbidden\\n"); }); };
        const opts = { key: fs.readFileSync(process.argv[1]), cert: fs.readFileSync(process.argv[2]) };
        let n = 0; const up = () => { if (++n === 2) console.log("listeners ready"); };
        http.createServer(h).listen({ host: "::", port: 8080 }, up);
        https.createServer(opts, h).listen({ host: "::", port: 8443 }, up);
      `;
      const listener = topo.spawn("srv", process.execPath, ["--input-type=module", "-e", script, keyFile, certFile], { label: "selftest-listener" });
      await listener.waitForLine(/listeners ready/, 10_000);
      // Drop every reply from the HTTP port except the handshake, like the stealth port.
      await topo.exec("srv", "nft", ["-f", "-"], {
        input: "table inet kp_selftest2 {\n chain output { type filter hook output priority 0; policy accept; tcp sport 8080 tcp flags & (syn|ack) != (syn|ack) drop; }\n}\n",
        reject: true,
      });
      const { srv } = topo.addr;
      const s1 = await knock(topo, "cli", { step: 1, url: knockUrl("http", srv.v4, 8080, "/x"), body: "app=a&access_key=good" });
      expect(s1.curlExit).toBe(28);
      expect(s1.durationMs).toBeLessThan(3000);
      for (const ip of [srv.v4, srv.v6]) {
        const ok = await knock(topo, "cli", { step: 2, url: knockUrl("https", ip, 8443, "/y"), body: "app=a&access_key=good" });
        expect(ok.curlExit).toBe(0);
        expect(ok.status).toBe(200);
        expect(ok.body).toBe("OK\n");
        const bad = await knock(topo, "cli2", { step: 2, url: knockUrl("https", ip, 8443, "/y"), body: "app=a&access_key=bad" });
        expect(bad.status).toBe(403);
      }
      expect(await probeTcpConnect(topo, "cli", srv.v6, 8443)).toBe("open");
      expect(await probeTcpConnect(topo, "cli", srv.v6, 8444)).toBe("closed");
      const none = await knock(topo, "cli", { step: 2, url: knockUrl("https", srv.v4, 8444, "/y"), body: "x=y" });
      expect(none.status).toBeUndefined();
      expect(none.curlExit).toBe(7);
      await listener.stop();
      await topo.exec("srv", "nft", ["delete", "table", "inet", "kp_selftest2"], { reject: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("listConntrack counts entries once conntrack is active", async () => {
    await enableConntrack(topo);
    const before = await listConntrack(topo, 2222);
    expect(await probeTcp(topo, "cli", topo.addr.srv.v4, 2222)).toBe("open");
    expect(await probeTcp(topo, "cli", topo.addr.srv.v6, 2222)).toBe("open");
    expect(await listConntrack(topo, 2222)).toBeGreaterThanOrEqual(before + 2);
  });

  it("destroy() stops children and removes every namespace; a second call is harmless", async () => {
    const sleeper = topo.spawn("cli2", "sleep", ["300"]);
    await new Promise((r) => setTimeout(r, 100));
    expect(sleeper.exitInfo).toBeUndefined();
    const names = [topo.names.sw, topo.names.srv, topo.names.cli, topo.names.cli2, topo.names.lan];
    await topo.destroy();
    await topo.destroy();
    expect(sleeper.exitInfo).toBeDefined();
    const present = namespaces();
    for (const ns of names) expect(present).not.toContain(ns);
  });

  it("cleanupStaleTopologies() removes namespaces a dead run left, and nothing else", async () => {
    execFileSync("ip", ["netns", "add", "kpdeaded-srv"]);
    execFileSync("ip", ["netns", "add", "kpdead01x-notours"]);
    try {
      const report = cleanupStaleTopologies(0);
      expect(report.removed).toContain("kpdeaded-srv");
      expect(namespaces()).not.toContain("kpdeaded-srv");
      expect(namespaces()).toContain("kpdead01x-notours");
    } finally {
      execFileSync("ip", ["netns", "del", "kpdead01x-notours"]);
    }
  });
});
