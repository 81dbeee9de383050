/**
 * The demo (scripts/demo.sh): a complete KnockPort on the real kernel, in throwaway network namespaces.
 *
 * Builds kp<suffix>-{sw,srv,cli,cli2}, writes an example config with random secrets, starts the helper
 * (root), the server (unprivileged) and an echo service in srv, then shows the service ports' state for
 * the knocker (cli) and a bystander (cli2) before the knock, after the two-step knock and after expiry.
 * Everything is removed at the end, also on error or Ctrl-C.
 */
import { rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { describeKnock, formBody, knock, knockUrl } from "./knock.js";
import { probeTcp, probeUdp, type PortState } from "./probe.js";
import { exampleConfig, type AppSpec } from "./config.js";
import { startKnockport, type KnockportStack } from "./stack.js";
import { cleanupStaleTopologies } from "./namespaces.js";
import { createTopology, type HostName, type Topology } from "./topology.js";
import { maskSecret, sleepUntil } from "./util.js";

export interface DemoOptions {
  /** Repository root holding bin/knockport-helper and bin/knockport-server. */
  repoRoot: string;
  log: (line: string) => void;
}

const DURATION_SECONDS = 5;
const PROBE_TIMEOUT_MS = 500;
const REQUIRED_TOOLS = ["ip", "nft", "curl", "setpriv"] as const;

function findTool(name: string): boolean {
  for (const dir of ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]) {
    try {
      if (statSync(`${dir}/${name}`).isFile()) return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/**
 * The first directory on the way to `path` (itself included) that others may not search, or
 * undefined: the server runs as nobody and must reach bin/knockport-server. A clone in /root
 * (0700) is the common case.
 */
export function closedToOthers(path: string): string | undefined {
  const parts = resolve(path).split("/").filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = `/${parts.slice(0, i).join("/")}`;
    if ((statSync(dir).mode & 0o001) === 0) return dir;
  }
  return undefined;
}

interface Row {
  label: string;
  states: PortState[];
}

function pad(text: string, width: number): string {
  return text.length >= width ? `${text} ` : text.padEnd(width);
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const { log } = opts;
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    log("demo: needs root (it creates network namespaces and firewall rules)");
    return 2;
  }
  const missing = REQUIRED_TOOLS.filter((t) => !findTool(t));
  if (missing.length > 0) {
    log(`demo: missing tools: ${missing.join(", ")} (Debian: apt-get install -y iproute2 nftables curl util-linux)`);
    return 2;
  }

  const closed = closedToOthers(opts.repoRoot);
  if (closed !== undefined) {
    log(`demo: the server runs as nobody, which cannot enter ${closed} (mode ${(statSync(closed).mode & 0o777).toString(8)}); run the demo from a clone that others may read, e.g. /srv/knockport`);
    return 2;
  }

  const stale = cleanupStaleTopologies();
  if (stale.removed.length > 0) log(`removed namespaces an earlier run left behind: ${stale.removed.join(", ")}`);

  let topo: Topology | undefined;
  let stack: KnockportStack | undefined;
  let tmpDir: string | undefined;
  const removeTmp = (): void => {
    if (tmpDir !== undefined) rmSync(tmpDir, { recursive: true, force: true });
  };
  // Ctrl-C: the testbed's safety net kills the children and deletes the namespaces; we drop the temp dir.
  process.once("exit", removeTmp);
  try {
    topo = await createTopology();
    const t = topo;
    const { srv, cli, cli2 } = t.addr;
    log(`network namespaces: ${t.names.srv} (server), ${t.names.cli} (knocker), ${t.names.cli2} (bystander), joined by a bridge in ${t.names.sw}`);
    log(`  srv ${srv.v4} / ${srv.v6} on ${t.extInterface}; cli ${cli.v4}; cli2 ${cli2.v4}`);

    const config = exampleConfig({ interfaceExt: t.extInterface, duration: DURATION_SECONDS, step2HttpsDuration: 5, keyPairs: 1 });
    log("starting knockport-helper (root, nftables), knockport-server (as nobody) and an echo service in srv ...");
    stack = await startKnockport(t, { repoRoot: opts.repoRoot, config });
    tmpDir = stack.dir;
    const apps = config.apps;
    const secrets = apps.flatMap((a) => [...a.accessKeysHttp, ...a.accessKeysHttps]);
    log(`config ${stack.configPath}:`);
    log(`  step 1: POST http://${srv.v4}:${config.httpPort}${config.httpPostPath}   (stealth: replies are dropped)`);
    log(`  step 2: POST https://${srv.v4}:${config.httpsPort}${config.httpsPostPath}`);
    for (const app of apps) log(`  app ${app.name}: ${app.protocol}/${app.port}, open for ${app.duration} s after a knock`);
    log("");

    const columns: Array<{ host: HostName; app: AppSpec }> = [];
    for (const host of ["cli", "cli2"] as const) for (const app of apps) columns.push({ host, app });
    const snapshot = async (label: string): Promise<Row> => {
      const states = await Promise.all(
        columns.map(({ host, app }) =>
          app.protocol === "tcp" ? probeTcp(t, host, srv.v4, app.port, PROBE_TIMEOUT_MS) : probeUdp(t, host, srv.v4, app.port, PROBE_TIMEOUT_MS),
        ),
      );
      return { label, states };
    };

    const rows: Row[] = [];
    rows.push(await snapshot("before knock"));

    log(`knocking from cli (${cli.v4}):`);
    let expiresBy = 0;
    for (const app of apps) {
      const keyHttp = app.accessKeysHttp[0] ?? "";
      const keyHttps = app.accessKeysHttps[0] ?? "";
      const s1 = await knock(t, "cli", {
        step: 1,
        url: knockUrl("http", srv.v4, config.httpPort, config.httpPostPath),
        body: formBody({ app: app.name, access_key: keyHttp }),
      });
      log(`  $ ${describeKnock(s1, secrets, maskSecret)}`);
      log(`    -> ${s1.timedOut ? "no reply, curl gave up after 1 s (exit 28): the firewall drops step-1 replies" : `unexpected: curl exit ${String(s1.curlExit)}`}`);
      const s2 = await knock(t, "cli", {
        step: 2,
        url: knockUrl("https", srv.v4, config.httpsPort, config.httpsPostPath),
        body: formBody({ app: app.name, access_key: keyHttps }),
      });
      expiresBy = Date.now() + app.duration * 1000;
      log(`  $ ${describeKnock(s2, secrets, maskSecret)}`);
      log(`    -> ${s2.status !== undefined ? `HTTP ${s2.status} ${JSON.stringify(s2.body)}` : `no answer (curl exit ${String(s2.curlExit)})`}`);
    }
    log("");
    rows.push(await snapshot("after knock"));
    log(`waiting for the leases to expire (${DURATION_SECONDS} s; the kernel removes the set elements) ...`);
    await sleepUntil(expiresBy + 1000);
    rows.push(await snapshot(`after expiry (${DURATION_SECONDS} s)`));

    // The table.
    const first = 22;
    const cell = 18;
    log("");
    log(pad("", first) + pad(`knocker cli ${cli.v4}`, cell * apps.length) + `bystander cli2 ${cli2.v4}`);
    log(pad("service port state", first) + columns.map((c) => pad(`${c.app.name} ${c.app.protocol}/${c.app.port}`, cell)).join("").trimEnd());
    for (const row of rows) {
      log(pad(row.label, first) + row.states.map((s) => pad(s === "open" ? "OPEN" : "closed", cell)).join("").trimEnd());
    }
    log("");

    // What a correct KnockPort shows: closed, open for the knocker only, closed again.
    const expected: PortState[][] = [
      columns.map(() => "closed"),
      columns.map((c) => (c.host === "cli" ? "open" : "closed")),
      columns.map(() => "closed"),
    ];
    const ok = rows.every((row, i) => row.states.every((s, j) => s === expected[i]?.[j]));
    if (ok) {
      log("as expected: the service ports opened for the knocker only, and closed again on time.");
      return 0;
    }
    log("UNEXPECTED port states (see the table above); helper and server logs:");
    log(t.logs(30));
    return 1;
  } catch (error) {
    log(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    if (topo !== undefined) log(topo.logs(30));
    return 1;
  } finally {
    await stack?.stop();
    await topo?.destroy();
    removeTmp();
    process.off("exit", removeTmp);
    log("cleaned up: processes stopped, namespaces removed.");
  }
}
