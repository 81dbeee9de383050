import { chmodSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT_ERRORS, exitStatusOf } from "@knockport/protocol";
import { ConfigError, findApp, loadConfig } from "../src/index.js";
import { BASE_YAML, configError, problemsOf, tempDir, writeConfig, writeConfigAt } from "./helpers.js";

describe("loadConfig: reading the file", () => {
  it("loads a valid file", () => {
    const file = writeConfig(BASE_YAML);
    const config = loadConfig(file);
    expect(config.file).toBe(file);
    expect(config.apps.map((a) => a.name)).toEqual(["openvpn", "ssh"]);
    expect(findApp(config, "ssh")?.port).toBe(2222);
    expect(findApp(config, "nope")).toBeUndefined();
  });

  it("a missing file names the file and the flag", () => {
    const file = join(tempDir(), "nope.yaml");
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe("CONFIG_NOT_FOUND");
    expect(err.file).toBe(file);
    expect(exitStatusOf(err, ROOT_ERRORS)).toBe(2);
    expect(err.problems).toEqual([
      `${file}: no such file; pass the config with -c/--config (see config/config.example.yaml)`,
    ]);
    expect(err.message).toBe(err.problems.join("\n"));
    expect(err.name).toBe("ConfigError");
    expect(err).toBeInstanceOf(Error);
  });

  it("a folder instead of a file is unreadable, with the reason", () => {
    const dir = tempDir();
    const err = configError(() => loadConfig(dir));
    expect(err.code).toBe("CONFIG_UNREADABLE");
    expect(err.problems).toEqual([`${dir}: cannot read (EISDIR); check the path and its permissions`]);
  });

  it.runIf(process.getuid?.() !== 0)("a file without read permission is unreadable", () => {
    const file = writeConfig(BASE_YAML);
    chmodSync(file, 0o000);
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe("CONFIG_UNREADABLE");
    expect(err.problems[0]).toContain("EACCES");
  });

  it("refuses a file over 1 MiB", () => {
    const file = writeConfig(`${BASE_YAML}\n#${"x".repeat(1024 * 1024)}\n`);
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.problems).toEqual([`${file}: file is larger than 1 MiB; is this the right file?`]);
  });

  it("a YAML syntax error gives line and column", () => {
    const file = writeConfig("global:\n  http_post_path: /a\n    bad: indent\n");
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe("CONFIG_YAML");
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: YAML syntax error at line 3, column \\d+: `));
  });

  it("an unclosed flow sequence is a YAML error with its position", () => {
    const file = writeConfig("global: [a, b\n");
    const problems = problemsOf(() => loadConfig(file));
    expect(problems[0]).toMatch(/YAML syntax error at line \d+, column \d+: /);
  });

  it("a duplicated key is a YAML error, not a silent override", () => {
    const file = writeConfig(`${BASE_YAML}\nssh:\n  port: 2223\n`);
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe("CONFIG_YAML");
    expect(err.problems[0]).toMatch(/line 2[0-9], column \d+: duplicated mapping key/);
  });

  it("a YAML error never shows the offending line (it may hold a key)", () => {
    const file = writeConfig(`${BASE_YAML.replace("- openvpn-http-2", "- openvpn-http-2: [")}`);
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe("CONFIG_YAML");
    expect(err.message).not.toContain("openvpn-http-2");
  });

  it.each([
    ["an empty file", ""],
    ["only a comment", "# nothing\n"],
    ["a list", "- global\n- ssh\n"],
    ["a scalar", "hello\n"],
    ["a number", "42\n"],
  ])("%s is not a mapping", (_what, text) => {
    const file = writeConfig(text);
    const err = configError(() => loadConfig(file));
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.problems).toEqual([
      `${file}: must be a YAML mapping with a "global" key and one key per app (see config/config.example.yaml)`,
    ]);
  });

  it("YAML 1.2 core types: quoted numbers stay strings, so a quoted port is a string", () => {
    const file = writeConfig(BASE_YAML.replace("port: 2222", 'port: "2222"'));
    expect(problemsOf(() => loadConfig(file))).toEqual([`${file}: ssh.port: must be an integer 1-65535 (got "2222")`]);
  });

  it("the string port from the brief gives exactly the documented message", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "config"));
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const file = writeConfigAt(join(dir, "config/config.yaml"), BASE_YAML.replace("port: 1194", 'port: "11940"'));
      expect(file).toBe(resolve(dir, "config/config.yaml"));
      expect(problemsOf(() => loadConfig("config/config.yaml"))).toEqual([
        'config/config.yaml: openvpn.port: must be an integer 1-65535 (got "11940")',
      ]);
    } finally {
      process.chdir(cwd);
    }
  });

  it("resolves a relative 2fa_config_folder from the config file's folder, not the working directory", () => {
    const dir = tempDir();
    const file = writeConfigAt(join(dir, "knock.yaml"), BASE_YAML.replace("interface_ext: eth0", "interface_ext: eth0\n  2fa_config_folder: secrets/2fa"));
    expect(loadConfig(file).global.twoFactorFolder).toBe(join(dir, "secrets/2fa"));
    const abs = writeConfigAt(join(dir, "abs.yaml"), BASE_YAML.replace("interface_ext: eth0", "interface_ext: eth0\n  2fa_config_folder: /etc/knockport/2fa"));
    expect(loadConfig(abs).global.twoFactorFolder).toBe("/etc/knockport/2fa");
    expect(loadConfig(writeConfigAt(join(dir, "def.yaml"), BASE_YAML)).global.twoFactorFolder).toBe(join(dir, "2fa"));
  });

  it("ConfigError is a real class callers can match", () => {
    const err = new ConfigError("CONFIG_INVALID", "f.yaml", ["f.yaml: a", "f.yaml: b"]);
    expect(err.message).toBe("f.yaml: a\nf.yaml: b");
    expect(exitStatusOf(err, ROOT_ERRORS)).toBe(2);
  });
});
