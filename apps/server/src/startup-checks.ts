import type { KnockportConfig } from "@knockport/config";
import type { HelloResult } from "@knockport/protocol";

/** The helper protects ports from its own reading of the config; serving other ports would be unprotected. */
export function compareWithHelper(config: KnockportConfig, hello: HelloResult): string[] {
  const problems: string[] = [];
  if (hello.httpPort !== config.httpPort) problems.push(`helper protects HTTP port ${hello.httpPort}, server would serve ${config.httpPort}`);
  if (hello.httpsPort !== config.httpsPort) problems.push(`helper protects HTTPS port ${hello.httpsPort}, server would serve ${config.httpsPort}`);
  const mineWaf = config.waf ? `${config.waf.httpPort}/${config.waf.httpsPort}` : "off";
  const theirsWaf = hello.waf ? `${hello.waf.httpPort}/${hello.waf.httpsPort}` : "off";
  if (mineWaf !== theirsWaf) {
    problems.push(`helper's WAF ports (HTTP/HTTPS) are ${theirsWaf}, the server's ${mineWaf}; give both the same --waf-http-port and --waf-https-port`);
  }
  const mine = config.apps.map((a) => `${a.name}:${a.protocol}/${a.port}`).sort().join(", ");
  const theirs = hello.services.map((s) => `${s.app}:${s.protocol}/${s.port}`).sort().join(", ");
  if (mine !== theirs) problems.push(`helper's apps (${theirs}) differ from the server's (${mine})`);
  return problems;
}

