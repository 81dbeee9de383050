import { describe, expect, it } from "vitest";
import { ConfigError, checkHookArgv, expandHookArgv, parseConfig } from "../src/index.js";
import { FILE, baseDoc } from "./helpers.js";

function problems(patch: Record<string, unknown>): readonly string[] {
  const doc = baseDoc();
  Object.assign(doc.ssh, patch);
  try {
    parseConfig(doc, FILE);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe("on_open / on_close", () => {
  it("are optional and parsed as argument lists", () => {
    const doc = baseDoc();
    doc.ssh.on_open = ["/usr/local/bin/allow", "{ip}", "{port}/{protocol}", "{duration}", "{app}"];
    doc.ssh.on_close = ["/usr/local/bin/deny", "{ip}"];
    const c = parseConfig(doc, FILE);
    expect(c.apps.find((a) => a.name === "ssh")).toMatchObject({
      onOpen: ["/usr/local/bin/allow", "{ip}", "{port}/{protocol}", "{duration}", "{app}"],
      onClose: ["/usr/local/bin/deny", "{ip}"],
    });
    expect(c.apps.find((a) => a.name === "openvpn")?.onOpen).toBeUndefined();
  });

  it.each([
    [{ on_open: "/usr/bin/true {ip}" }, /ssh\.on_open: must be a command as a list/],
    [{ on_open: [] }, /ssh\.on_open: must be a command as a list/],
    [{ on_open: ["aws", "ec2"] }, /ssh\.on_open: the program must be an absolute path .*no shell/],
    [{ on_close: ["./x"] }, /ssh\.on_close: the program must be an absolute path/],
    [{ on_open: ["/usr/bin/{app}"] }, /ssh\.on_open: the program \(first item\) cannot contain placeholders/],
    [{ on_open: ["/usr/bin/x", "{address}"] }, /ssh\.on_open: item 1: unknown placeholder "\{address\}"; use \{ip\}, \{port\}/],
    [{ on_open: ["/usr/bin/x", 7] }, /ssh\.on_open/],
    [{ on_open: ["/usr/bin/x", "a\0b"] }, /item 1: must not contain a NUL/],
    [{ on_open: ["/usr/bin/x", ...Array.from({ length: 64 }, () => "a")] }, /ssh\.on_open: must be a command as a list of 1-64/],
  ])("refuses %j", (patch, message) => {
    const found = problems(patch);
    expect(found.join("\n")).toMatch(message);
  });

  it("checkHookArgv and expandHookArgv work argument by argument", () => {
    expect(checkHookArgv(["/bin/echo", "{ip}:{port}"])).toBeUndefined();
    expect(
      expandHookArgv(["/bin/echo", "{ip}:{port}", "{protocol}", "x{duration}x", "{app}", "{ip} {ip}"], {
        ip: "2001:db8::1",
        port: "22",
        protocol: "tcp",
        duration: "60",
        app: "ssh",
      }),
    ).toEqual(["/bin/echo", "2001:db8::1:22", "tcp", "x60x", "ssh", "2001:db8::1 2001:db8::1"]);
  });
});
