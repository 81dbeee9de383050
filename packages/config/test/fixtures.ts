// Config files for the tests of every package that starts a process or a command on a config.

/**
 * A valid config of one app (ssh, tcp/2222, one key pair) as YAML. `tag` names its knock paths
 * (/<tag>-one, /<tag>-two) and keys (<tag>-http-key, <tag>-https-key), so each test file has its own.
 */
export function oneAppConfig(tag: string, o: { interfaceExt?: string; duration?: number; step2HttpsDuration?: number } = {}): string {
  return [
    "global:",
    `  http_post_path: /${tag}-one`,
    `  https_post_path: /${tag}-two`,
    `  interface_ext: ${o.interfaceExt ?? "eth0"}`,
    "ssh:",
    "  port: 2222",
    `  access_key_http: [${tag}-http-key]`,
    `  access_key_https: [${tag}-https-key]`,
    `  duration: ${o.duration ?? 60}`,
    ...(o.step2HttpsDuration === undefined ? [] : [`  step2_https_duration: ${o.step2HttpsDuration}`]),
    "",
  ].join("\n");
}
