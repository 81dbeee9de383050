import { Ajv, type ValidateFunction } from "ajv";
import { describe, expect, it } from "vitest";
import {
  APP_NAME_PATTERN,
  HELPER_ERRORS,
  isMethodName,
  METHODS,
  MAX_GRANT_SECONDS,
  type MethodName,
  PROTOCOL_VERSION,
} from "../src/index.js";
import { RESULTS, leaseEvent } from "../src/client.js";

const ajv = new Ajv({ strict: true });
const names = Object.keys(METHODS) as MethodName[];
const params = new Map<MethodName, ValidateFunction>();
const results = new Map<MethodName, ValidateFunction>();

/** The compiled validator (compiled on first use, so each test also runs on its own). */
function compiled(map: Map<MethodName, ValidateFunction>, m: MethodName): ValidateFunction {
  let v = map.get(m);
  if (!v) {
    v = ajv.compile(map === params ? METHODS[m].params : RESULTS[m]);
    map.set(m, v);
  }
  return v;
}

const validResults = {
  hello: {
    version: "0.1.0",
    protocolVersion: PROTOCOL_VERSION,
    firewallType: "nftables",
    httpPort: 8080,
    httpsPort: 8443,
    services: [
      { app: "openvpn", port: 1194, protocol: "udp" },
      { app: "ssh", port: 2222, protocol: "tcp" },
    ],
  },
  open: {
    app: "openvpn",
    ip: "198.51.100.7",
    step: 2,
    durationSeconds: 86400,
    expiresAt: "2026-01-01T00:00:00.000Z",
    refreshed: false,
  },
  close: { closed: 1 },
  grant: {
    app: "ssh",
    ip: "203.0.113.9",
    step: 2,
    durationSeconds: 600,
    expiresAt: "2026-01-01T00:10:00.000Z",
    refreshed: false,
  },
  list: {
    leases: [
      {
        app: "ssh",
        ip: "2001:db8::7",
        step: 1,
        port: 8443,
        protocol: "tcp",
        expiresAt: "2026-01-01T00:00:05.000Z",
        remainingSeconds: 4.5,
        packets: 12,
        bytes: 840,
      },
    ],
    countersAt: "2026-01-01T00:00:00.500Z",
  },
  stats: {
    startedAt: "2026-01-01T00:00:00.000Z",
    leasesRestored: 2,
    reinstalls: 1,
    reconciliations: 30,
    elementsAdded: 1,
    elementsRetimed: 0,
    elementsRemoved: 3,
    selfHealFailures: 0,
  },
  counters: {
    startedAt: "2026-01-01T00:00:00.000Z",
    leasesRestored: 0,
    reinstalls: 0,
    reconciliations: 3,
    elementsAdded: 0,
    elementsRetimed: 0,
    elementsRemoved: 0,
    selfHealFailures: 0,
    openLeases: [{ app: "ssh", step: 2, count: 12 }],
  },
  check: { open: true },
  release: { closed: 2 },
  watch: {
    leases: [{ app: "ssh", ip: "2001:db8::7", step: 2, port: 2222, protocol: "tcp", expiresAt: "2026-01-01T00:00:05.000Z" }],
    hooks: [{ app: "ssh", onOpen: ["/usr/local/bin/sg-open", "{ip}"], onClose: ["/usr/local/bin/sg-close", "{ip}"] }],
  },
} satisfies Record<MethodName, unknown>;

describe("METHODS table", () => {
  it("has exactly the ten methods, and isMethodName agrees", () => {
    // A new method widens what a caller can do: add it here deliberately.
    expect(names.sort()).toEqual(["check", "close", "counters", "grant", "hello", "list", "open", "release", "stats", "watch"]);
    for (const m of names) expect(isMethodName(m)).toBe(true);
    for (const m of ["toString", "__proto__", "constructor", "hasOwnProperty", "OPEN", "", 1, null, undefined]) {
      expect(isMethodName(m)).toBe(false);
    }
  });

  it.each(names)("%s: params and result schemas compile under ajv strict mode", (m) => {
    const strict = new Ajv({ strict: true });
    expect(() => strict.compile(METHODS[m].params)).not.toThrow();
    expect(() => strict.compile(RESULTS[m])).not.toThrow();
  });

  it.each(names)("%s: every schema object forbids extra properties", (m) => {
    const walk = (schema: unknown, where: string): void => {
      if (schema === null || typeof schema !== "object") return;
      const s = schema as Record<string, unknown>;
      if (s.type === "object") expect(s.additionalProperties, where).toBe(false);
      for (const [k, v] of Object.entries(s)) walk(v, `${where}/${k}`);
    };
    walk(METHODS[m].params, `${m}.params`);
    walk(RESULTS[m], `${m}.result`);
  });

  it.each(names)("%s: its named errors exist with distinct codes", (m) => {
    for (const e of METHODS[m].errors) expect(HELPER_ERRORS[e]).toBeDefined();
    const codes = Object.values(HELPER_ERRORS).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe("params schemas", () => {
  it("hello, list and stats take an empty object only", () => {
    for (const m of ["hello", "list", "stats"] as const) {
      const v = compiled(params, m);
      expect(v({})).toBe(true);
      expect(v({ x: 1 })).toBe(false);
      expect(v([])).toBe(false);
      expect(v(null)).toBe(false);
      expect(v("")).toBe(false);
    }
  });

  const open = (): ValidateFunction => compiled(params, "open");
  it.each([
    { step: 1, app: "openvpn", ip: "198.51.100.7" },
    { step: 2, app: "ssh", ip: "2001:db8::7" },
    { step: 2, app: "a", ip: "::1" },
    { step: 1, app: "A".repeat(32), ip: "::ffff:1.2.3.4" },
    { step: 1, app: "0-app_name", ip: "1.2.3.4" },
  ])("open accepts %j", (p) => {
    expect(open()(p)).toBe(true);
  });

  it.each([
    [{ step: 1, app: "openvpn", ip: "198.51.100.7", port: 22 }, "extra property (a port)"],
    [{ step: 1, app: "openvpn", ip: "198.51.100.7", command: "rm -rf /" }, "extra property"],
    [{ step: 3, app: "openvpn", ip: "198.51.100.7" }, "step 3"],
    [{ step: 0, app: "openvpn", ip: "198.51.100.7" }, "step 0"],
    [{ step: 1.5, app: "openvpn", ip: "198.51.100.7" }, "fractional step"],
    [{ step: "1", app: "openvpn", ip: "198.51.100.7" }, "step as string"],
    [{ step: 1, app: "A".repeat(33), ip: "198.51.100.7" }, "oversize app name"],
    [{ step: 1, app: "", ip: "198.51.100.7" }, "empty app name"],
    [{ step: 1, app: "-ssh", ip: "198.51.100.7" }, "app name starting with -"],
    [{ step: 1, app: "ssh;reboot", ip: "198.51.100.7" }, "app name with ;"],
    [{ step: 1, app: "ssh\n", ip: "198.51.100.7" }, "app name with newline"],
    [{ step: 1, app: 7, ip: "198.51.100.7" }, "app name as number"],
    [{ step: 1, app: "ssh", ip: "198.51.100.7; nft flush ruleset" }, "ip with junk"],
    [{ step: 1, app: "ssh", ip: "fe80::1%eth0" }, "ip with scope"],
    [{ step: 1, app: "ssh", ip: "1.2.3.0/24" }, "ip with prefix"],
    [{ step: 1, app: "ssh", ip: "1".repeat(46) }, "over-long ip"],
    [{ step: 1, app: "ssh", ip: 16909060 }, "ip as number"],
    [{ step: 1, app: "ssh" }, "ip missing"],
    [{ app: "ssh", ip: "1.2.3.4" }, "step missing"],
    [[1, "ssh", "1.2.3.4"], "array"],
    [null, "null"],
  ] as [unknown, string][])("open rejects %j (%s)", (p) => {
    expect(open()(p)).toBe(false);
  });

  it("close takes app and ip only", () => {
    const v = compiled(params, "close");
    expect(v({ app: "ssh", ip: "198.51.100.7" })).toBe(true);
    expect(v({ app: "ssh", ip: "198.51.100.7", step: 1 })).toBe(false);
    expect(v({ app: "ssh" })).toBe(false);
    expect(v({ app: "x".repeat(33), ip: "198.51.100.7" })).toBe(false);
    expect(v({ app: "ssh", ip: "example.com" })).toBe(false);
  });

  it("grant takes app, ip and an optional bounded duration, nothing else", () => {
    const v = compiled(params, "grant");
    expect(v({ app: "ssh", ip: "198.51.100.7" })).toBe(true);
    expect(v({ app: "ssh", ip: "2001:db8::7", durationSeconds: 60 })).toBe(true);
    expect(v({ app: "ssh", ip: "198.51.100.7", durationSeconds: MAX_GRANT_SECONDS })).toBe(true);
    expect(v({ app: "ssh", ip: "198.51.100.7", durationSeconds: MAX_GRANT_SECONDS + 1 })).toBe(false);
    expect(v({ app: "ssh", ip: "198.51.100.7", durationSeconds: 0 })).toBe(false);
    expect(v({ app: "ssh", ip: "198.51.100.7", durationSeconds: 1.5 })).toBe(false);
    expect(v({ app: "ssh", ip: "198.51.100.7", durationSeconds: "60" })).toBe(false);
    expect(v({ app: "ssh", ip: "198.51.100.7", step: 1 })).toBe(false);
    expect(v({ app: "ssh", ip: "198.51.100.7", port: 22 })).toBe(false);
    expect(v({ app: "ssh" })).toBe(false);
    expect(v({ app: "ssh", ip: "1.2.3.0/24" })).toBe(false);
  });

  it("APP_NAME_PATTERN allows 1-32 characters", () => {
    const re = new RegExp(APP_NAME_PATTERN);
    expect(re.test("a")).toBe(true);
    expect(re.test("a".repeat(32))).toBe(true);
    expect(re.test("a".repeat(33))).toBe(false);
    expect(re.test("_a")).toBe(false);
    expect(re.test("a.b")).toBe(false);
  });
});

describe("result schemas", () => {
  it.each(names)("%s accepts a valid result", (m) => {
    const v = compiled(results, m);
    expect(v(validResults[m]), JSON.stringify(v.errors)).toBe(true);
  });

  it.each(names)("%s rejects an extra top-level property", (m) => {
    expect(compiled(results, m)({ ...validResults[m], extra: 1 })).toBe(false);
  });

  it("rejects wrong types and values in nested results", () => {
    const hello = compiled(results, "hello");
    expect(hello({ ...validResults.hello, firewallType: "pf" })).toBe(false);
    expect(hello({ ...validResults.hello, httpPort: 0 })).toBe(false);
    expect(hello({ ...validResults.hello, httpsPort: 65536 })).toBe(false);
    expect(hello({ ...validResults.hello, protocolVersion: "1" })).toBe(false);
    expect(hello({ ...validResults.hello, services: [{ app: "ssh", port: 22, protocol: "sctp" }] })).toBe(false);
    expect(hello({ ...validResults.hello, services: [{ app: "ssh", port: 22, protocol: "tcp", ip: "x" }] })).toBe(false);

    const open = compiled(results, "open");
    expect(open({ ...validResults.open, step: 3 })).toBe(false);
    expect(open({ ...validResults.open, durationSeconds: 0 })).toBe(false);
    expect(open({ ...validResults.open, refreshed: "no" })).toBe(false);
    expect(open({ ...validResults.open, app: "A".repeat(33) })).toBe(false);
    const { refreshed: _omit, ...noRefreshed } = validResults.open;
    expect(open(noRefreshed)).toBe(false);

    const close = compiled(results, "close");
    expect(close({ closed: -1 })).toBe(false);
    expect(close({ closed: 0.5 })).toBe(false);
    expect(close({ closed: 0 })).toBe(true);
    // Hook outcomes are knockport-hooks' business: the helper's answers carry none.
    expect(close({ closed: 1, hooks: { ran: 1, failed: 1 } })).toBe(false);

    const grant = compiled(results, "grant");
    expect(grant(validResults.grant)).toBe(true);
    expect(grant({ ...validResults.grant, hooks: { ran: 1, failed: 0 } })).toBe(false);
    expect(grant({ ...validResults.grant, durationSeconds: 0 })).toBe(false);

    const list = compiled(results, "list");
    const lease = validResults.list.leases[0]!;
    expect(list({ leases: [] })).toBe(true);
    expect(list({ leases: [{ ...lease, step: 3 }] })).toBe(false);
    expect(list({ leases: [{ ...lease, remainingSeconds: -1 }] })).toBe(false);
    expect(list({ leases: [{ ...lease, port: 70000 }] })).toBe(false);
    expect(list({ leases: [{ ...lease, extra: true }] })).toBe(false);
    expect(list({ leases: {} })).toBe(false);
    // counters are optional, whole and not negative; countersAt is a bounded string
    const { packets: _p, bytes: _b, ...noCounters } = lease;
    expect(list({ leases: [noCounters] })).toBe(true);
    expect(list({ leases: [{ ...lease, packets: -1 }] })).toBe(false);
    expect(list({ leases: [{ ...lease, bytes: 1.5 }] })).toBe(false);
    expect(list({ leases: [{ ...lease, bytes: "840" }] })).toBe(false);
    expect(list({ leases: [], countersAt: "x".repeat(41) })).toBe(false);
    expect(list({ leases: [], countersAt: 5 })).toBe(false);
    expect(list({ leases: [], counters: {} })).toBe(false);

    const stats = compiled(results, "stats");
    expect(stats(validResults.stats)).toBe(true);
    const { reinstalls: _r, ...noReinstalls } = validResults.stats;
    expect(stats(noReinstalls)).toBe(false);
    expect(stats({ ...validResults.stats, reinstalls: -1 })).toBe(false);
    expect(stats({ ...validResults.stats, reconciliations: 0.5 })).toBe(false);
    expect(stats({ ...validResults.stats, leases: [] })).toBe(false);
  });
});

describe("watch notifications", () => {
  const validate = ajv.compile(leaseEvent);
  const event = { event: "open", app: "ssh", ip: "198.51.100.7", step: 2, port: 2222, protocol: "tcp", expiresAt: "2026-01-01T00:00:05.000Z", durationSeconds: 5, via: "knock" };
  it("the lease event schema takes each event kind and refuses other kinds and extra fields", () => {
    for (const kind of ["open", "refresh", "close", "expiry"]) expect(validate({ ...event, event: kind })).toBe(true);
    expect(validate({ ...event, event: "grant" })).toBe(false);
    expect(validate({ ...event, secret: "x" })).toBe(false);
    expect(validate({ ...event, via: null })).toBe(false);
  });
});
