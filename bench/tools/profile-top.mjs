#!/usr/bin/env node
// Top self-time functions of node .cpuprofile files (as written by `pnpm bench -- --profile DIR`).
//
//   node bench/tools/profile-top.mjs [--top N] FILE.cpuprofile...
//
// Self time of a function = the time of the samples whose leaf frame is that function (every sample's
// duration is its timeDelta). Functions are merged by name + script + line; "(idle)" is the event loop
// waiting, "(garbage collector)" V8's GC, "(program)" native code outside JS (e.g. TLS, syscalls).
import { readFileSync } from "node:fs";
import { basename } from "node:path";

const args = process.argv.slice(2);
let top = 25;
const files = [];
for (let i = 0; i < args.length; i += 1) {
  if (args[i] === "--top") top = Math.max(1, Number(args[++i]) || 25);
  else files.push(args[i]);
}
if (files.length === 0) {
  process.stderr.write("usage: profile-top.mjs [--top N] FILE.cpuprofile...\n");
  process.exit(2);
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    totalUs += us;
    selfUs.set(id, (selfUs.get(id) ?? 0) + us);
  });
  const merged = new Map();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)?.callFrame ?? {};
    const where = f.url ? ` ${f.url.replace(/^file:\/\/.*?\/node_modules\/(\.pnpm\/)?/, "").replace(/^file:\/\/.*?\/(apps|packages)\//, "$1/")}:${(f.lineNumber ?? 0) + 1}` : "";
    const key = `${f.functionName || "(anonymous)"}${where}`;
    merged.set(key, (merged.get(key) ?? 0) + us);
  }
  const idleUs = [...merged].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, v]) => a + v, 0);
  const busyUs = totalUs - idleUs;
  process.stdout.write(
    `\n${basename(file)}: ${(totalUs / 1e6).toFixed(1)} s profiled, ${(busyUs / 1e6).toFixed(2)} s busy (${((100 * busyUs) / Math.max(totalUs, 1)).toFixed(1)}%)\n`,
  );
  process.stdout.write("   self ms  % busy  function\n");
  for (const [key, us] of [...merged].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(us / 1000).toFixed(1).padStart(10)}  ${((100 * us) / Math.max(busyUs, 1)).toFixed(1).padStart(6)}  ${key}\n`);
  }
}
