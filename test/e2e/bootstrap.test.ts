// End-to-end: the README's quick start on a fresh Debian 12 without any Node. A copy of the checkout's
// files (tracked and new, not ignored) goes into a Debian 12 container (container.ts: the cached
// mmdebstrap rootfs, which has systemd, nftables, iproute2 and openssl but no Node, booted by
// systemd-nspawn). There:
//   1. `bash scripts/bootstrap.sh` on the host's network (Debian's apt and the npm registry only; the
//      container has no CAP_NET_ADMIN there): it installs the Debian packages, puts the pinned Node 20
//      and pnpm into /opt/knockport-node, installs the node modules and builds;
//   2. the same again: nothing installed or downloaded;
//   3. after a reboot onto a private network namespace of its own, `bash scripts/demo.sh` (which runs
//      bootstrap a third time, offline) to its end: a full knock in the demo's namespaces, the service
//      open for the knocker only and closed again on expiry.
// The README's second command (scripts/test.sh, the whole suite) is not run in the container.
// Downloads are kept between runs in /var/cache/knockport-test/bootstrap (apt's archives and lists,
// pnpm's store, the two tarballs), bound into the container. The host's own CAs
// (/usr/local/share/ca-certificates, e.g. a TLS-inspecting egress proxy's) go into the container too,
// and NODE_EXTRA_CA_CERTS is passed on when the host sets it: the container trusts what the host does.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootContainer, missingHostTools, type Container } from "./container.js";
import { REPO_ROOT } from "./harness.js";

const CACHE = join(process.env.KNOCKPORT_TEST_CACHE ?? "/var/cache/knockport-test", "bootstrap");
/** Not under /root (0700): the demo's server runs as nobody and refuses such a clone (demo.test.ts). */
const CHECKOUT = "/srv/knockport";
const README = "README.md";
const NODE_DIR = "/opt/knockport-node";
const NODE_ENV = readFileSync(join(REPO_ROOT, "scripts/node-env.sh"), "utf8");
/** A version pinned in scripts/node-env.sh. */
const pinned = (name: string): string => {
  const m = new RegExp(`^${name}=(\\S+)$`, "m").exec(NODE_ENV);
  if (!m) throw new Error(`scripts/node-env.sh: no ${name}`);
  return m[1]!;
};

const skip = missingHostTools();
if (skip) console.warn(`skipping the bootstrap test: ${skip}`);

describe.skipIf(skip !== undefined)("the README's quick start on a fresh Debian 12 without Node (nspawn)", { timeout: 120_000 }, () => {
  let box: Container;
  const seconds: Record<string, number> = {};
  /** A command in the checkout, as root with a login-like environment, timed. */
  const inCheckout = (label: string, command: string, timeoutMs: number): { status: number | null; out: string } => {
    const started = Date.now();
    const env = ["HOME=/root", ...(process.env.NODE_EXTRA_CA_CERTS ? [`NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS}`] : [])];
    const r = box.exec(["env", ...env, "bash", "-c", `cd ${CHECKOUT} && ${command}`], { timeoutMs });
    seconds[label] = Math.round((Date.now() - started) / 100) / 10;
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };

  beforeAll(async () => {
    const binds = [
      ["apt-archives", "/var/cache/apt/archives"],
      ["apt-lists", "/var/lib/apt/lists"],
      ["pnpm-store", "/root/.local/share/pnpm/store"],
      ["tarballs", "/root/.cache/knockport"],
    ].map(([dir, container]) => {
      mkdirSync(join(CACHE, dir!), { recursive: true });
      return { host: join(CACHE, dir!), container: container!, writable: true };
    });
    box = await bootContainer({ network: "host", binds });
    const localCas = "/usr/local/share/ca-certificates";
    if (existsSync(localCas)) cpSync(localCas, join(box.root, localCas), { recursive: true });
    // the checkout's files as a clone would have them once committed (no node_modules, no dist)
    const files = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO_ROOT, encoding: "utf8" });
    if (files.status !== 0) throw new Error(`git ls-files: ${files.stderr}`);
    mkdirSync(join(box.root, CHECKOUT), { recursive: true });
    const copy = spawnSync("tar", ["-C", REPO_ROOT, "--null", "-T", "-", "-cf", "-"], { input: files.stdout, maxBuffer: 1 << 30 });
    const untar = spawnSync("tar", ["-C", join(box.root, CHECKOUT), "-xf", "-"], { input: copy.stdout, maxBuffer: 1 << 30 });
    if (copy.status !== 0 || untar.status !== 0) throw new Error(`copying the checkout: ${String(copy.stderr)}${String(untar.stderr)}`);
  }, 300_000);

  afterAll(async () => {
    console.log(`bootstrap test, seconds: ${JSON.stringify(seconds)}`);
    await box?.destroy();
  });

  it("the container has no Node and no pnpm, and the README's quick start is what runs below", () => {
    expect(box.exec(["sh", "-c", "command -v node || command -v nodejs || command -v pnpm || command -v npm"]).status).not.toBe(0);
    const readme = box.must(["cat", join(CHECKOUT, README)]);
    const block = /^## Quick start$[\s\S]*?^```sh\n([\s\S]*?)^```$/m.exec(readme)?.[1] ?? "";
    expect(block.split("\n").map((l) => l.split("#")[0]!.trim()).filter(Boolean)).toEqual(["bash scripts/demo.sh", "bash scripts/test.sh"]);
  });

  it("bash scripts/bootstrap.sh brings the pinned Node 20 and pnpm, installs and builds", () => {
    const r = inCheckout("bootstrap", "bash scripts/bootstrap.sh", 1_500_000);
    expect(r.status, r.out.slice(-3000)).toBe(0);
    expect(r.out).toContain(`installing Node.js ${pinned("KNOCKPORT_NODE_VERSION")} into ${NODE_DIR} (found: no node)`);
    expect(box.must([`${NODE_DIR}/bin/node`, "--version"]).trim()).toBe(`v${pinned("KNOCKPORT_NODE_VERSION")}`);
    expect(box.must(["env", "HOME=/root", `PATH=${NODE_DIR}/bin:/usr/bin:/bin`, "pnpm", "--version"]).trim()).toBe(pinned("KNOCKPORT_PNPM_VERSION"));
    expect(box.exec(["sh", "-c", "command -v node"]).status, "nothing on the system's PATH: Debian's nodejs is not installed").not.toBe(0);
    expect(box.exec(["test", "-f", join(CHECKOUT, "apps/helper/dist/main.js")]).status, "built").toBe(0);
  }, 1_600_000);

  it("run again it installs and downloads nothing", () => {
    const r = inCheckout("bootstrap again", "bash scripts/bootstrap.sh", 300_000);
    expect(r.status, r.out.slice(-3000)).toBe(0);
    expect(r.out).not.toMatch(/bootstrap: installing (Debian packages|Node|pnpm)/);
  }, 310_000);

  it("bash scripts/demo.sh (on a network of the container's own): the knocker's port opens and closes on time", async () => {
    await box.reboot("private");
    const r = inCheckout("demo", "bash scripts/demo.sh", 300_000);
    expect(r.status, r.out.slice(-3000)).toBe(0);
    expect(r.out).toContain("as expected: the service ports opened for the knocker only, and closed again on time.");
    expect(r.out, "offline: nothing to install").not.toMatch(/bootstrap: installing (Debian packages|Node|pnpm)/);
  }, 400_000);
});
