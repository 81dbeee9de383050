import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect } from "vitest";
import { ConfigError } from "../src/index.js";

export const FILE = "config/config.yaml";

/** Every secret the sample configs use; no message may ever contain one. */
export const SECRETS = [
  "openvpn-http-1",
  "openvpn-http-2",
  "openvpn-https-1",
  "openvpn-https-2",
  "ssh-http-key-1",
  "ssh-https-key-1",
];

export type Doc = Record<string, any>;

/** A valid config: two apps, every optional key left out. */
export function baseDoc(): Doc {
  return {
    global: { http_post_path: "/k-step-one", https_post_path: "/k-step-two", interface_ext: "eth0" },
    openvpn: {
      port: 1194,
      protocol: "udp",
      access_key_http: ["openvpn-http-1", "openvpn-http-2"],
      access_key_https: ["openvpn-https-1", "openvpn-https-2"],
      destination: "local",
      duration: 86400,
    },
    ssh: {
      port: 2222,
      access_key_http: ["ssh-http-key-1"],
      access_key_https: ["ssh-https-key-1"],
      duration: 3600,
    },
  };
}

export const BASE_YAML = `global:
  http_post_path: /k-step-one
  https_post_path: /k-step-two
  interface_ext: eth0

openvpn:
  port: 1194
  protocol: udp
  access_key_http:
    - openvpn-http-1
    - openvpn-http-2
  access_key_https:
    - openvpn-https-1
    - openvpn-https-2
  destination: local
  duration: 86400

ssh:
  port: 2222
  access_key_http: [ssh-http-key-1]
  access_key_https: [ssh-https-key-1]
  duration: 3600
`;

/** The ConfigError thrown by `fn` (fails the test when it returns or throws something else). */
/** `baseDoc()` changed by `edit`. */
export function withDoc(edit: (d: Doc) => void): Doc {
  const d = baseDoc();
  edit(d);
  return d;
}

/** Problems without the `FILE: ` prefix, which every line must carry. */
export function withoutFile(problems: readonly string[]): string[] {
  return problems.map((p) => {
    expect(p.startsWith(`${FILE}: `), p).toBe(true);
    return p.slice(FILE.length + 2);
  });
}

export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError, but the config was accepted");
}

export function problemsOf(fn: () => unknown): string[] {
  return [...configError(fn).problems];
}

const tempRoot = mkdtempSync(join(tmpdir(), "knockport-config-test-"));
afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

/** A fresh folder under the OS temp dir; all are removed after the test file. */
export function tempDir(): string {
  return mkdtempSync(join(tempRoot, "case-"));
}

export function writeConfig(text: string | Buffer, name = "config.yaml"): string {
  const file = join(tempDir(), name);
  writeFileSync(file, text);
  return file;
}

/** Write `text` to a chosen path. */
export function writeConfigAt(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}
