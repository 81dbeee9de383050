import { describe, expect, it } from "vitest";
import { formatAuthCheckListen, parseAuthCheckListen, parseConfig } from "../src/index.js";
import { baseDoc, FILE, problemsOf } from "./helpers.js";

describe("parseAuthCheckListen", () => {
  it.each([
    ["127.0.0.1:9180", { kind: "tcp", host: "127.0.0.1", port: 9180 }, "127.0.0.1:9180"],
    ["127.8.9.10:1", { kind: "tcp", host: "127.8.9.10", port: 1 }, "127.8.9.10:1"],
    ["[::1]:9180", { kind: "tcp", host: "::1", port: 9180 }, "[::1]:9180"],
    ["[0:0:0:0:0:0:0:1]:65535", { kind: "tcp", host: "::1", port: 65535 }, "[::1]:65535"],
    ["/run/knockport-server/auth-check.sock", { kind: "unix", path: "/run/knockport-server/auth-check.sock" }, "/run/knockport-server/auth-check.sock"],
  ])("%s", (text, parsed, formatted) => {
    const l = parseAuthCheckListen(text);
    expect(l).toEqual(parsed);
    expect(formatAuthCheckListen(l!)).toBe(formatted);
  });

  it.each([
    "", "0.0.0.0:9180", "198.51.100.1:9180", "[::]:9180", "[2001:db8::1]:9180", "::1:9180", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
    "localhost:9180", "[::1]", "relative.sock", "/run/../etc/x.sock", "/run/dir/", `/${"a".repeat(107)}`, "/run/a\0b",
  ])("refuses %j (public addresses, relative or odd paths)", (text) => {
    expect(parseAuthCheckListen(text)).toBeUndefined();
  });
});

describe("global.auth_check_listen", () => {
  it("is off by default and parsed when set", () => {
    expect(parseConfig(baseDoc(), FILE).global.authCheckListen).toBeUndefined();
    const doc = baseDoc();
    doc.global.auth_check_listen = "[::1]:9180";
    expect(parseConfig(doc, FILE).global.authCheckListen).toEqual({ kind: "tcp", host: "::1", port: 9180 });
  });

  it("a public address is refused with the key's name and what to write", () => {
    const doc = baseDoc();
    doc.global.auth_check_listen = "0.0.0.0:9180";
    expect(problemsOf(() => parseConfig(doc, FILE))).toEqual([
      `${FILE}: global.auth_check_listen: must be a loopback address and port such as 127.0.0.1:9180 or [::1]:9180, or an absolute Unix socket path such as /run/knockport-server/auth-check.sock (got "0.0.0.0:9180")`,
    ]);
  });
});
