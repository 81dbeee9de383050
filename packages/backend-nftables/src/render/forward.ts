import { serviceSetName, type ForwardedApp } from "@knockport/firewall";
import { comment, quoteIfaces } from "./ruleset.js";

/**
 * Forwarded apps (`destination: IP[:PORT]`), loaded only when the config has one:
 * - nat prerouting: only members of the app's set are DNATed from interface_ext to the LAN host;
 * - forward: the translated destination is accepted for set members whose connection we DNATed; all
 *   else from interface_ext to it is dropped (a bystander routing to the LAN address, an expired lease);
 * - nat postrouting: masquerade towards interface_int unless the app says `masquerade: false`.
 * A destination of one family is reached by clients of that family only (no NAT64).
 */
export function forwardRules(forwarded: readonly ForwardedApp[], setRef: (logical: string) => string): { pre: string[]; fwd: string[]; post: string[] } {
  const pre: string[] = [];
  const fwd: string[] = [];
  const post: string[] = [];
  for (const { app, family, ip, port } of forwarded) {
    const proto = app.protocol;
    const pub = app.port;
    const ipKw = family === 4 ? "ip" : "ip6";
    const set = setRef(serviceSetName(app.name, family));
    const target = family === 4 ? `${ip}:${port}` : `[${ip}]:${port}`;
    const iif = `iifname ${quoteIfaces([app.interfaceExt])}`;
    const oif = `oifname ${quoteIfaces([app.interfaceInt])}`;
    const what = `app ${app.name} ${proto}/${pub}`;
    const dst = `${ipKw} daddr ${ip} ${proto} dport ${port}`;
    pre.push(`${iif} ${ipKw} saddr ${set} ${proto} dport ${pub} counter dnat ${ipKw} to ${target} ${comment(`${what}: clients that passed step 2 go to LAN host ${target}`)}`);
    fwd.push(
      `${iif} ${oif} ${dst} ${ipKw} saddr ${set} ct status dnat counter accept ${comment(`${what}: forwarded clients that passed step 2 (translated destination)`)}`,
      `${iif} ${dst} counter drop ${comment(`${what}: everyone else to LAN host ${target}`)}`,
    );
    if (app.masquerade) post.push(`${oif} ${dst} ${ipKw} saddr ${set} ct status dnat counter masquerade ${comment(`${what}: masquerade towards the LAN host`)}`);
  }
  return { pre, fwd, post };
}
