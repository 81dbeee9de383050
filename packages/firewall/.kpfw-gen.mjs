// throwaway generator for the real-kernel check (deleted afterwards)
import * as fw from "./dist/index.js";
import { parseConfig } from "@knockport/config";
export const PATH = "/k-7Hq2x/Zm9vYmFy.YmF6_cXV4~LXNlY3Jl-001";
const config = parseConfig({
  global: { http_post_path: PATH, https_post_path: "/step-two/8c1f4e", interface_ext: "kpsrv0", http_port: 8080, https_port: 8443 },
  openvpn: { port: 1194, protocol: "udp", access_key_http: ["http-key-openvpn-1"], access_key_https: ["https-key-openvpn-1"], duration: 86400, step2_https_duration: 5 },
  "ssh-admin": { port: 2222, protocol: "tcp", access_key_http: ["http-key-ssh-admin-1"], access_key_https: ["https-key-ssh-admin-1"], duration: 3600, step2_https_duration: 10 },
}, "verify.yaml");
const [cmd, ...a] = process.argv.slice(2);
const t = (app, step, ip, secs) => { const x = (step === "1" ? fw.step1Target : fw.step2Target)(config, app, ip); return secs ? { ...x, timeoutSeconds: Number(secs) } : x; };
if (cmd === "ruleset") process.stdout.write(fw.renderNftRuleset(config, { elements: a.length ? [t(a[0], a[1], a[2], a[3])] : [] }));
else if (cmd === "grant") process.stdout.write(fw.renderNftGrant(t(a[0], a[1], a[2], a[3])));
else if (cmd === "revoke") process.stdout.write(fw.renderNftRevoke(t(a[0], a[1], a[2])));
else if (cmd === "path") process.stdout.write(PATH);
else if (cmd === "remove") process.stdout.write(fw.renderNftRemoveTable());
