// End-to-end: the HTTPS connection limit (global.https_connection_limit_per_minute / _burst) on the real
// kernel, per backend. cli passes step 1 and then opens new TCP connections to the HTTPS knock port one
// after another: the first `burst` complete, the rest are dropped by the firewall (the SYN gets no
// answer: a connect timeout, not a reset). cli2, knocked too, is not affected: its own connections and
// its step 2 go through while cli is over the limit.
import { expect, it } from "vitest";
import { describeKnockport } from "./describe-knockport.js";
import { describeResult, e2eMatrix, expectOk, expectStep1NoReply } from "./harness.js";

const PER_MINUTE = 6;
const BURST = 4;
const ATTEMPTS = BURST + 8;
/** A dropped SYN is retransmitted after 1 s; one attempt gives up well before that. */
const CONNECT_TIMEOUT_MS = 400;

/** Sequential connects from inside a namespace; prints one JSON array of "open" | "timeout" | "<error code>". */
const BURST_SCRIPT = `
const net = require("node:net");
const [ip, port, count, timeoutMs] = process.argv.slice(1);
const one = () => new Promise((resolve) => {
  const s = net.connect({ host: ip, port: Number(port) });
  const t = setTimeout(() => { s.destroy(); resolve("timeout"); }, Number(timeoutMs));
  s.once("connect", () => { clearTimeout(t); s.destroy(); resolve("open"); });
  s.once("error", (e) => { clearTimeout(t); resolve(e.code || "error"); });
});
(async () => { const out = []; for (let i = 0; i < Number(count); i++) out.push(await one()); console.log(JSON.stringify(out)); })();
`;

const stack = { duration: 30, step2HttpsDuration: 60, rateLimitPerMinute: 1000, httpsConnectionLimit: { perMinute: PER_MINUTE, burst: BURST } };

describeKnockport("HTTPS connection limit ($firewall, IPv$family, real kernel)", e2eMatrix(), stack, (h) => {
  const family = h.family;

  const burst = async (host: "cli" | "cli2", count: number): Promise<string[]> => {
    const r = await h.topo.exec(host, process.execPath, ["-e", BURST_SCRIPT, h.srvIp(family), String(h.knockHttpsPort), String(count), String(CONNECT_TIMEOUT_MS)], {
      timeoutMs: count * CONNECT_TIMEOUT_MS + 10_000,
    });
    expect(r.exitCode, `connect burst from ${host}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout.trim()) as string[];
  };

  it(`lets a knocked address open ${BURST} connections at once, drops the rest before TLS, and leaves another knocked address alone`, async () => {
    for (const host of ["cli", "cli2"] as const) expectStep1NoReply(await h.step1(host, h.ssh), `step 1 from ${host}`);
    // Both are in the HTTPS set now (the helper grants before the server could answer).
    expect(await h.https("cli2")).toBe("open");

    const cli = await burst("cli", ATTEMPTS);
    const opened = cli.filter((r) => r === "open").length;
    // The bucket holds `burst` connections; at 6/minute at most one more token arrives during the burst.
    expect(cli.slice(0, BURST), `first ${BURST} of ${JSON.stringify(cli)}`).toEqual(Array(BURST).fill("open"));
    expect(opened, JSON.stringify(cli)).toBeLessThanOrEqual(BURST + 1);
    // Over the limit the SYN is dropped (no RST, no TLS): the connect times out.
    expect(cli.slice(BURST + 2), JSON.stringify(cli)).toEqual(Array(ATTEMPTS - BURST - 2).fill("timeout"));

    // cli2 has its own bucket: its connections and its step 2 go through while cli is limited.
    expect(await burst("cli2", 2)).toEqual(["open", "open"]);
    const s2 = await h.step2("cli2", h.ssh);
    expectOk(s2, "step 2 from cli2 while cli is over the limit");
    expect(await h.svc("cli2", h.ssh)).toBe("open");

    // cli is still limited (its bucket refills at one connection per 10 s), although still in the HTTPS set.
    const again = await h.step2("cli", h.ssh);
    expect(again.status, `step 2 from cli over the limit: ${describeResult(again)}`).not.toBe(200);
  });
});
