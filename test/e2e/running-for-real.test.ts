// End-to-end, the documented first run exactly as typed (issue 17): the fenced blocks of
// docs/operations.md "Running it for real" run verbatim as root in srv (useradd, check-config,
// gen-cert, knockport run), and the curl templates of that section and of the README run from the
// clients with only their <placeholders> filled in. A doc edit that breaks the sequence fails here.
//
// The blocks write /etc/passwd, /etc/knockport, /var/lib/knockport* and /run/knockport: they run in a
// mount namespace of their own, over a copy of /etc and empty /var/lib and /run, so the host's files
// stay untouched (the copy's passwd has no knockport user, as on a fresh host).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./harness.js";
import { cleanupStaleTopologies, createTopology, probeTcp, randomPath, randomSecret, startEchoServer, type HostName, type ManagedProcess, type Topology } from "./testbed.js";

/**
 * The ```sh blocks of the markdown section under `heading` (up to the next heading of its level or
 * higher; a "# comment" inside a block is no heading), or of the whole text when `heading` is undefined.
 */
function fencedBlocks(markdown: string, heading?: string): string[] {
  const level = heading === undefined ? 0 : (/^#+/.exec(heading)?.[0].length ?? 2);
  const blocks: string[] = [];
  let inSection = heading === undefined;
  let block: string[] | undefined;
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      fenced = !fenced;
      if (inSection && fenced && line === "```sh") block = [];
      else if (inSection && !fenced && block !== undefined) {
        blocks.push(`${block.join("\n")}\n`);
        block = undefined;
      }
      continue;
    }
    if (fenced) {
      block?.push(line);
      continue;
    }
    const h = /^(#+) /.exec(line);
    if (h?.[1] !== undefined && heading !== undefined) {
      if (line === heading) inSection = true;
      else if (inSection && h[1].length <= level) break;
    }
  }
  if (heading !== undefined && !inSection) throw new Error(`no section "${heading}"`);
  return blocks;
}

const SERVICE_PORT = 2222;
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe("knockport end to end (nftables): docs/operations.md 'Running it for real', verbatim", () => {
  let topo: Topology;
  let run: ManagedProcess | undefined;
  const scratch = mkdtempSync(join(tmpdir(), "kp-for-real-"));
  const etc = join(scratch, "etc");
  const values = {
    app: "ssh",
    access_key_http: randomSecret(24),
    access_key_https: randomSecret(24),
    http_post_path: randomPath("/k1-", 24),
    https_post_path: randomPath("/k2-", 24),
  };
  const operations = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");
  const blocks = fencedBlocks(operations, "## Running it for real");
  const isClient = (block: string): boolean => /^curl /m.test(block);
  const serverScript = blocks.filter((b) => !isClient(b)).join("\n");
  const clientBlock = blocks.find(isClient) ?? "";
  const readmeBlock = fencedBlocks(readFileSync(join(REPO_ROOT, "README.md"), "utf8"))[0] ?? "";

  beforeAll(async () => {
    cleanupStaleTopologies();
    topo = await createTopology();
    cpSync("/etc", etc, { recursive: true, verbatimSymlinks: true });
    // A fresh host: no knockport user or group yet (the docs' first command creates them).
    for (const f of ["passwd", "group", "shadow", "gshadow"]) {
      const file = join(etc, f);
      try {
        writeFileSync(file, readFileSync(file, "utf8").split("\n").filter((l) => !l.startsWith("knockport:") && !l.startsWith("knockport-")).join("\n"));
      } catch {
        /* no gshadow on this host */
      }
    }
    rmSync(join(etc, "knockport"), { recursive: true, force: true });
    mkdirSync(join(etc, "knockport"), { mode: 0o755 });
    // The one step the docs leave to the reader: their config.
    writeFileSync(
      join(etc, "knockport/config.yaml"),
      [
        "global:",
        `  http_post_path: ${values.http_post_path}`,
        `  https_post_path: ${values.https_post_path}`,
        `  interface_ext: ${topo.extInterface}`,
        `${values.app}:`,
        `  port: ${SERVICE_PORT}`,
        `  access_key_http: [${values.access_key_http}]`,
        `  access_key_https: [${values.access_key_https}]`,
        "  duration: 300",
        "  step2_https_duration: 30",
        "",
      ].join("\n"),
      { mode: 0o644 },
    );
    await startEchoServer(topo, "srv", { tcp: [SERVICE_PORT] });
  });
  afterAll(async () => {
    await run?.stop(5000);
    await topo?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** A client block with its <placeholders> filled in; each line is one command. */
  const commands = (block: string): string[] => {
    const filled = block
      .replace(/<host>/g, topo.addr.srv.v4)
      .replace(/<(app|access_key_http|access_key_https|http_post_path|https_post_path)>/g, (_m, k: keyof typeof values) => values[k]);
    expect(filled, "every placeholder of the template is known").not.toMatch(/<[a-z_]+>/);
    return filled.split("\n").filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));
  };
  const runClient = async (from: HostName, block: string, what: string): Promise<void> => {
    const [step1, step2, ...more] = commands(block);
    expect(more, `${what}: two curl commands`).toEqual([]);
    const s1 = await topo.exec(from, "sh", ["-c", step1 ?? "false"], { timeoutMs: 15_000 });
    expect(s1.exitCode, `${what} step 1 (${step1}): curl exits 28, no answer ever comes; ${s1.stderr}`).toBe(28);
    const s2 = await topo.exec(from, "sh", ["-c", step2 ?? "false"], { timeoutMs: 20_000 });
    // The answer's first line is OK for curl scripts; the expires= and address= lines after it are for knockport knock --keep.
    const out = s2.stdout.replace(/^(OK\nexpires=)\d+\n/, "$1N\n");
    const ip = from === "cli2" ? topo.addr.cli2.v4 : topo.addr.cli.v4;
    expect({ exit: s2.exitCode, out, timedOut: s2.timedOut }, `${what} step 2 (${step2}): ${s2.stderr}`).toEqual({ exit: 0, out: `OK\nexpires=N\naddress=${ip}\n`, timedOut: false });
  };
  const svc = (host: HostName) => probeTcp(topo, host, topo.addr.srv.v4, SERVICE_PORT);

  it("the section has the server's blocks (useradd first, knockport run last) and the client's curl templates", () => {
    expect(serverScript.trimStart()).toMatch(/^useradd /);
    expect(serverScript.trimEnd()).toMatch(/node bin\/knockport run [^]*$/);
    expect(clientBlock).toMatch(/^curl .* -m 1 http:\/\/<host>:80<http_post_path>$/m);
    expect(readmeBlock).toMatch(/^curl .*https:\/\/<host>:443<https_post_path>$/m);
  });

  it("runs as typed: the server starts as knockport, reads its key, and both curl templates open the port for their client only", async () => {
    const mounts = [
      `mount --bind ${sq(etc)} /etc`,
      "mount -t tmpfs -o mode=0755 tmpfs /var/lib",
      "mount -t tmpfs -o mode=0755 tmpfs /run",
      `cd ${sq(REPO_ROOT)}`,
    ].join(" && ");
    run = topo.spawn("srv", "unshare", ["--mount", "--propagation", "private", "sh", "-ec", `${mounts}\n${serverScript}`], {
      label: "docs sequence",
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
    });
    await run.waitForLine(/"event":"server\.ready"/, 90_000);
    expect(run.lines.some((l) => /"event":"helper\.ready"/.test(l.line))).toBe(true);
    expect(run.lines.find((l) => l.line.startsWith("knockport run:"))?.line).toMatch(/server pid \d+ \(user knockport\)/);

    // gen-cert --owner knockport: the key is root:knockport 0640 in the copy of /etc.
    const gid = readFileSync(join(etc, "group"), "utf8").split("\n").find((l) => l.startsWith("knockport:"))?.split(":")[2];
    const key = statSync(join(etc, "knockport/tls/knockport.key"));
    expect({ uid: key.uid, gid: String(key.gid), mode: key.mode & 0o777 }).toEqual({ uid: 0, gid, mode: 0o640 });

    expect({ cli: await svc("cli"), cli2: await svc("cli2") }, "before any knock").toEqual({ cli: "closed", cli2: "closed" });
    await runClient("cli", readmeBlock, "README");
    expect({ cli: await svc("cli"), cli2: await svc("cli2") }, "after the README's knock from cli").toEqual({ cli: "open", cli2: "closed" });
    await runClient("cli2", clientBlock, "operations.md");
    expect(await svc("cli2"), "after the operations.md knock from cli2").toBe("open");
    expect(run.exitInfo, "knockport run still runs").toBeUndefined();
  });
});
