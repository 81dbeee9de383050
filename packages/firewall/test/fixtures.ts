import { parseConfig, type AppConfig, type KnockportConfig } from "@knockport/config";
import { ipFamily, type IpAddress } from "@knockport/protocol";
import { FirewallError, checkIp, httpsSetName, serviceSetName, type GrantTarget } from "../src/index.js";

/** 40 characters, every character class a path may hold. */
export const PATH_40 = "/k-7Hq2x/Zm9vYmFy.YmF6_cXV4~LXNlY3Jl-001";

export function makeConfig(overrides: { global?: Record<string, unknown>; apps?: Record<string, unknown> } = {}): KnockportConfig {
  const doc = {
    global: {
      http_post_path: PATH_40,
      https_post_path: "/step-two/8c1f4e",
      interface_ext: "eth0",
      http_port: 8080,
      https_port: 8443,
      ...overrides.global,
    },
    ...(overrides.apps ?? {
      openvpn: {
        port: 1194,
        protocol: "udp",
        access_key_http: ["http-key-openvpn-1"],
        access_key_https: ["https-key-openvpn-1"],
        duration: 86400,
        step2_https_duration: 5,
      },
      "ssh-admin": {
        port: 22,
        protocol: "tcp",
        access_key_http: ["http-key-ssh-admin-1"],
        access_key_https: ["https-key-ssh-admin-1"],
        duration: 3600,
        step2_https_duration: 10,
      },
    }),
  };
  return parseConfig(doc, "test/config.yaml");
}

/** One app's config entry with keys derived from its port; `extra` adds or overrides keys. */
export function appEntry(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    port,
    access_key_http: [`http-key-${port}-abcdef`],
    access_key_https: [`https-key-${port}-abcdef`],
    duration: 60,
    ...extra,
  };
}

function findAppOf(config: KnockportConfig, app: AppConfig | string): AppConfig {
  const name = typeof app === "string" ? app : app.name;
  const found = config.apps.find((a) => a.name === name);
  if (!found) throw new FirewallError("UNKNOWN_APP", `no app ${JSON.stringify(name.slice(0, 40))} in ${config.file}`);
  return found;
}

/** Step 1 passed: `ip` may reach the HTTPS knock port for the app's `step2_https_duration`. */
export function step1Target(config: KnockportConfig, app: AppConfig | string, ip: IpAddress): GrantTarget {
  const a = findAppOf(config, app);
  const checkedIp = checkIp(ip);
  return { set: httpsSetName(ipFamily(checkedIp)), ip: checkedIp, timeoutSeconds: a.step2HttpsDurationSeconds };
}

/** Step 2 passed: `ip` may reach the app's service port for the app's `duration`. */
export function step2Target(config: KnockportConfig, app: AppConfig | string, ip: IpAddress): GrantTarget {
  const a = findAppOf(config, app);
  const checkedIp = checkIp(ip);
  return { set: serviceSetName(a.name, ipFamily(checkedIp)), ip: checkedIp, timeoutSeconds: a.durationSeconds };
}
