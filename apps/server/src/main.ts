import type { FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import { formatAuthCheckListen, loadConfig, type KnockportConfig } from "@knockport/config";
import { HelperClient } from "@knockport/helper-client";
import { ROOT_ERRORS, SERVER_ERRORS, exitOnError } from "@knockport/protocol/errors";
import { SERVER_USAGE, parseServerArgs } from "./args.js";
import { StartupError, compareWithHelper, helloWithRetry } from "./startup-checks.js";
import { buildAuthCheckApp, listenAuthCheck } from "./auth-check.js";
import { buildKnockApp, createKnockContext } from "./app.js";
import type { MetricsListener } from "./metrics.js";
import { readTlsFiles, type TlsFiles } from "./tls-files.js";
import type { ServerCluster } from "./cluster.js";
import { FileUsedTokenStore, UnavailableUsedTokenStore, UsedTokenStoreError, type UsedTokenStore } from "./used-tokens.js";
import { logEvent } from "@knockport/protocol/events";

function readTls(certFile: string, keyFile: string): TlsFiles {
  try {
    return readTlsFiles(certFile, keyFile);
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
}

async function listen(app: FastifyInstance, port: number, host: string): Promise<void> {
  try {
    await app.listen({ port, host });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (host === "::" && (code === "EAFNOSUPPORT" || code === "EADDRNOTAVAIL")) {
      await app.listen({ port, host: "0.0.0.0" }); // IPv6 disabled on this host
      return;
    }
    const hint = code === "EACCES" ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : code === "EADDRINUSE" ? " (already in use)" : "";
    throw new StartupError(`cannot listen on port ${port}: ${code ?? (err as Error).message}${hint}`);
  }
}

/**
 * Cluster mode: the store connection, which reconnects by itself. Losing and regaining it is logged
 * once each; while it is gone every knock is answered 503 (docs/cluster.md). The store's client
 * (ioredis) is loaded only in cluster mode: it cost every start about 0.1 s CPU and 4 MB.
 */
async function startCluster(config: KnockportConfig, log: Logger): Promise<ServerCluster | undefined> {
  const cluster = config.global.cluster;
  if (!cluster) return undefined;
  const [{ ClusterStoreConfigError, connectStore }, { ServerCluster }] = await Promise.all([import("@knockport/cluster-store"), import("./cluster.js")]);
  let connection;
  try {
    connection = connectStore(cluster, { onError: (message) => logEvent(log, "debug", "cluster.store.error", { err: message }, "cluster store connection error") });
  } catch (err) {
    throw err instanceof ClusterStoreConfigError ? new StartupError(err.message) : err;
  }
  let up = false;
  connection.on("ready", () => {
    up = true;
    logEvent(log, "info", "cluster.store.ready", { url: cluster.url }, "cluster store connected");
  });
  connection.on("close", () => {
    if (up) logEvent(log, "warn", "cluster.store.lost", { url: cluster.url }, "cluster store connection lost; knocks are answered 503 until it is back");
    up = false;
  });
  return new ServerCluster(config, connection, log.child({ part: "cluster" }));
}

async function main(argv: string[]): Promise<number> {
  const options = parseServerArgs(argv);
  if (options === "help") {
    process.stdout.write(SERVER_USAGE);
    return 0;
  }
  const config = loadConfig(options.configFile, { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
  const https = readTls(options.certFile, options.keyFile);
  const log = pino({
    name: "knockport-server",
    level: options.logLevel,
    redact: { paths: ["access_key", "token", "*.access_key", "*.token", "req.body"], censor: "[redacted]" },
  });

  // Before the helper is asked anything: a bad --state-dir fails at once.
  let usedTokens: UsedTokenStore;
  try {
    usedTokens = new FileUsedTokenStore(options.stateDir, { warn: (m) => logEvent(log, "warn", "2fa.store.reset", {}, m) });
  } catch (err) {
    // A file in it that this user cannot use is named with its own fix; otherwise the folder is the problem.
    const fileProblem = err instanceof UsedTokenStoreError;
    const why = fileProblem
      ? `--state-dir ${options.stateDir}: ${err.message}`
      : `--state-dir ${options.stateDir}: cannot use it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    if (options.stateDirGiven) {
      throw new StartupError(fileProblem ? why : `${why}; create it writable for this user (mode 0700) or pass another --state-dir`);
    }
    // Default folder missing (e.g. no StateDirectory=): keys without 2FA keep working, 2FA knocks are refused.
    logEvent(log, "warn", "2fa.store.unavailable", {}, `${why}; every knock that needs a 2FA token is refused until --state-dir is writable`);
    usedTokens = new UnavailableUsedTokenStore(why);
  }

  const helper = new HelperClient({ socketPath: options.socketPath, timeoutMs: 5000 });
  // Asked while the listeners are built (about 80 ms): when systemd starts both daemons at once, the
  // helper is still installing its firewall. Nothing listens before its answer is compared.
  const helloAnswer = helloWithRetry(helper, log);
  helloAnswer.catch(() => undefined); // awaited below; a failure must not end the process as unhandled first

  // prom-client is loaded only for --metrics-port (a tenth of a second of every start otherwise)
  const metricsModule = options.metricsPort === undefined ? undefined : await import("./metrics.js");
  const metrics = metricsModule === undefined ? undefined : new metricsModule.ServerMetrics(config.apps.map((a) => a.name));
  const cluster = await startCluster(config, log);
  const context = createKnockContext(config, metrics && metricsModule ? metricsModule.instrumentHelper(helper, metrics) : helper, Date.now, usedTokens, cluster, (event, message) =>
    logEvent(log, "warn", event, {}, message),
  );
  const step1 = await buildKnockApp({ step: 1, context, logger: log.child({ listener: "http" }), metrics });
  const step2 = await buildKnockApp({ step: 2, context, logger: log.child({ listener: "https" }), https, metrics });
  await Promise.all([step1.ready(), step2.ready()]);
  const hello = await helloAnswer;
  const mismatch = compareWithHelper(config, hello);
  if (mismatch.length > 0) {
    helper.close();
    await cluster?.stop();
    throw new StartupError(`refusing to start: ${mismatch.join("; ")}. Give both the same config and port flags.`);
  }
  cluster?.start(context.step1, context.helper);
  await listen(step1, config.httpPort, options.listenAddress);
  await listen(step2, config.httpsPort, options.listenAddress);
  let metricsListener: MetricsListener | undefined;
  if (metrics && metricsModule && options.metricsPort !== undefined) {
    try {
      metricsListener = await metricsModule.startMetricsListener({
        address: options.metricsAddress,
        port: options.metricsPort,
        metrics,
        helper: new metricsModule.CachedHelperSnapshot(helper, metrics),
      });
    } catch (err) {
      throw new StartupError(`--metrics-port ${options.metricsPort}: cannot listen on ${options.metricsAddress} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    logEvent(log, "info", "metrics.listening", { address: options.metricsAddress, port: metricsListener.port }, "metrics listener ready");
  }
  const authCheckListen = options.authCheckListen ?? config.global.authCheckListen;
  let authCheck: FastifyInstance | undefined;
  if (authCheckListen) {
    authCheck = await buildAuthCheckApp({ config, helper: context.helper, unixSocket: authCheckListen.kind === "unix", logger: log.child({ listener: "auth-check" }) });
    try {
      await listenAuthCheck(authCheck, authCheckListen);
    } catch (err) {
      throw new StartupError(`${(err as Error).message}; check --auth-check-listen / global.auth_check_listen`);
    }
    logEvent(log, "info", "auth-check.listening", { listen: formatAuthCheckListen(authCheckListen) }, "auth-check listener ready");
  }
  logEvent(log, "info", "server.ready", { httpPort: config.httpPort, httpsPort: config.httpsPort, helper: hello.firewallType }, "server ready");

  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      logEvent(log, "info", "server.stopping", { signal }, "stopping");
      const deadline = setTimeout(() => resolve(0), 5000);
      deadline.unref();
      void Promise.allSettled([step1.close(), step2.close(), metricsListener?.close(), authCheck?.close(), cluster?.stop()]).then(() => {
        helper.close();
        resolve(0);
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => exitOnError("knockport-server", { ...ROOT_ERRORS, ...SERVER_ERRORS }, err));
