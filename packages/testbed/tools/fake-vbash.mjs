#!/usr/bin/env node
// VyOS simulator for the end-to-end suite (VyOS itself cannot run here). It stands in for `vbash` on a
// VyOS router, run inside the srv namespace:
//
//   fake-vbash.mjs < script        configuration-mode commands on stdin, as knockport-helper sends them
//   fake-vbash.mjs --init [drop|accept]
//                                  writes a base router config (input default-action drop, established
//                                  and ICMP accepted; or accept: VyOS without an input filter) and commits it
//   fake-vbash.mjs --commit        a commit of some other change: re-renders the VyOS tables
//
// What it simulates (from VyOS's own templates and conf-mode scripts): `set firewall ipv4|ipv6 name N
// default-action return` becomes chain NAME_N / NAME6_N (`description` kept in the config, `delete … description`
// removes it); `set firewall ipv4|ipv6 input|forward filter
// rule R action jump; jump-target N` a jump in VYOS_INPUT_filter / VYOS_FORWARD_filter; a commit
// re-renders `table ip vyos_filter` and `table ip6 vyos_filter` with ONE `nft -f` that deletes and
// recreates them (every foreign rule vanishes, handles change); a commit without changes does nothing
// and exits 1 ("No configuration changes to commit"). Not simulated: everything else VyOS does (NAT,
// zones, conntrack tables, `save`, the CLI's validation).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const stateFile = `${process.argv[1]}.state.json`;
const load = () => (existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : { committed: null, working: empty() });
const save = (s) => writeFileSync(stateFile, JSON.stringify(s, null, 2));
function empty() {
  return { ipv4: { names: {}, input: { default: "accept", rules: {} }, forward: { default: "accept", rules: {} } }, ipv6: { names: {}, input: { default: "accept", rules: {} }, forward: { default: "accept", rules: {} } } };
}

function render(cfg) {
  const out = [];
  for (const fam of ["ipv4", "ipv6"]) {
    const t = fam === "ipv4" ? "ip" : "ip6";
    const prefix = fam === "ipv4" ? "NAME" : "NAME6";
    const c = cfg[fam];
    out.push(`table ${t} vyos_filter {}`, `delete table ${t} vyos_filter`, `table ${t} vyos_filter {`);
    for (const hook of ["input", "forward"]) {
      const h = c[hook];
      out.push(`  chain VYOS_${hook.toUpperCase()}_filter {`, `    type filter hook ${hook} priority filter; policy accept;`);
      for (const n of Object.keys(h.rules).map(Number).sort((a, b) => a - b)) {
        const r = h.rules[n];
        const tag = `comment "${fam}-${hook.slice(0, 3).toUpperCase()}-filter-${n}"`;
        if (r.state) out.push(`    ct state { established, related } accept ${tag}`);
        else if (r.icmp) out.push(`    meta l4proto ${fam === "ipv4" ? "icmp" : "ipv6-icmp"} accept ${tag}`);
        else if (r.action === "jump" && r.target) out.push(`    jump ${prefix}_${r.target} ${tag}`);
        else if (r.action === "accept") out.push(`    accept ${tag}`);
      }
      out.push(`    ${h.default} comment "${hook} default-action ${h.default}"`, "  }");
    }
    for (const [name, n] of Object.entries(c.names)) {
      out.push(`  chain ${prefix}_${name} {`, `    ${n.default ?? "drop"} comment "${name} default-action ${n.default ?? "drop"}"`, "  }");
    }
    out.push("}");
  }
  return `${out.join("\n")}\n`;
}

function commit(state, force) {
  const same = JSON.stringify(state.committed) === JSON.stringify(state.working);
  if (same && !force) {
    process.stdout.write("No configuration changes to commit\n");
    return 1;
  }
  const r = spawnSync("/usr/sbin/nft", ["-f", "-"], { input: render(state.working), encoding: "utf8" });
  if (r.status !== 0) {
    process.stderr.write(`fake vbash: commit failed: ${r.stderr}`);
    return 1;
  }
  state.committed = JSON.parse(JSON.stringify(state.working));
  save(state);
  return 0;
}

const unquote = (v) => v.replace(/^'(.*)'$/, "$1");
const arg = process.argv[2];
const state = load();
if (arg === "--init") {
  for (const fam of ["ipv4", "ipv6"]) {
    state.working[fam].input = { default: process.argv[3] === "accept" ? "accept" : "drop", rules: { 10: { state: true }, 20: { icmp: true } } };
  }
  process.exit(commit(state, true));
}
if (arg === "--commit") process.exit(commit(state, true));

let status = 0;
for (const raw of readFileSync(0, "utf8").split("\n")) {
  const line = raw.trim();
  if (line === "" || line.startsWith("#") || line.startsWith("source ") || line === "configure" || line === "exit" || line === "save") continue;
  if (line === "commit") {
    status = commit(state, false) || status;
    continue;
  }
  let m = /^set firewall (ipv4|ipv6) name ([A-Za-z0-9_-]+) (default-action|description) (.+)$/.exec(line);
  if (m) {
    const n = (state.working[m[1]].names[m[2]] ??= {});
    if (m[3] === "default-action") n.default = unquote(m[4]);
    else n.description = unquote(m[4]);
    continue;
  }
  m = /^delete firewall (ipv4|ipv6) name ([A-Za-z0-9_-]+) description$/.exec(line);
  if (m) {
    if (state.working[m[1]].names[m[2]]) delete state.working[m[1]].names[m[2]].description;
    continue;
  }
  m = /^set firewall (ipv4|ipv6) (input|forward) filter rule (\d+) (action|jump-target) (.+)$/.exec(line);
  if (m) {
    const r = (state.working[m[1]][m[2]].rules[m[3]] ??= {});
    r[m[4] === "action" ? "action" : "target"] = unquote(m[5]);
    continue;
  }
  process.stderr.write(`fake vbash: unsupported command: ${line}\n`);
  status = 2;
}
save(state);
process.exit(status);
