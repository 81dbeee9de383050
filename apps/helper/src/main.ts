import { createLogger } from "./log.js";
import { readFileSync } from "node:fs";
import { loadFirewallConfig } from "@knockport/config/firewall";
import { ROOT_ERRORS, createDispatcher, exitOnError, type SocketName, logEvent } from "@knockport/protocol";
import { forwardedApps, nftPlacement } from "@knockport/firewall";
import { DIRECT } from "@knockport/firewall/run";
import { parseHelperArgs } from "./args.js";
import { HelperService } from "./service.js";
import { SOCKET_LIMITS, startRpcServer } from "./socket-server.js";
import { createBackend } from "./backend-factory.js";
import type { RpcPeer } from "./helper-context.js";
import { prepareInterfaces } from "./interfaces.js";
import { helperStateFiles } from "@knockport/durable-file/helper-state";
import { lockPrivateDir, type InstanceLock } from "@knockport/durable-file/instance-lock";

/**
 * Locks held until the process exits (never released: the kernel drops them with the process). Kept
 * referenced here so that nothing holding a lock's descriptor can be collected and closed early.
 */
const heldLocks: InstanceLock[] = [];

async function main(argv: string[]): Promise<number> {
  const options = parseHelperArgs(argv);
  if (options === "help") {
    process.stdout.write((await import("./usage.js")).HELPER_USAGE);
    return 0;
  }
  const log = createLogger({ name: "knockport-helper", level: options.logLevel });
  // What a given run does not use is never loaded: the sudo checks, forwarding checks, conntrack, the interface watch, shutdown cleanup.
  const privilege = !options.useSudo
    ? DIRECT
    : await import("./privilege.js").then((p) => {
        p.refuseSudoAsServerUser(process.geteuid?.() ?? 0, readFileSync("/etc/passwd", "utf8"));
        return p.sudoPrivilege(options.sudoPath);
      });
  const config = await loadFirewallConfig(options.configFile, { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
  if (forwardedApps(config).length > 0) (await import("./forwarding.js")).checkForwarding(config);
  const conntrack = config.apps.some((a) => a.closeEstablished)
    ? await import("./conntrack.js").then((c) => new c.ConntrackCutter(log, c.locateConntrackFor(config), privilege))
    : undefined;
  // Loaded at start, not at stop: a package upgrade may have replaced the files by then.
  const shutdown = options.serviceRuleCleanupOnShutdown ? await import("./shutdown.js") : undefined;
  const firewall = await createBackend(options, config, privilege);
  const missingInterfaces = prepareInterfaces(config, firewall, log);
  // Both locks before any firewall command: a second helper (another config, state dir or socket)
  // exits here and leaves the running helper's table alone.
  heldLocks.push(await lockPrivateDir(options.stateDir, helperStateFiles(options.stateDir).lock, "--state-dir"));
  const service = new HelperService(config, firewall, log, undefined, conntrack);
  // Requests that arrive while the table is being installed wait for it (the client's timeout bounds that).
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const sockets: { close(): Promise<void> }[] = [];
  for (const [name, flag, socketPath, socketGroup] of [
    ["knock", "--socket", options.socketPath, options.socketGroup],
    ["admin", "--admin-socket", options.adminSocketPath, options.adminSocketGroup],
    ["events", "--events-socket", options.eventsSocketPath, options.eventsSocketGroup],
  ] as const) {
    // Each socket's dispatcher serves only its rows of the method table.
    const dispatch = createDispatcher<SocketName, RpcPeer | undefined>(name, service.handlers, {
      onInternalError: (err, method) => logEvent(log, "error", "rpc.internal_error", { method, err: (err as Error)?.message }, "handler failed"),
      onNotAllowed: (method) => logEvent(log, "warn", "rpc.not_allowed", { audit: true, socket: name, method }, `${method} refused on the ${name} socket`),
    });
    const serve = async (frame: string, peer: RpcPeer) => {
      await started;
      return dispatch(frame, peer);
    };
    sockets.push(await startRpcServer({ name, flag, socketPath, socketGroup, dispatch: serve, log, ...SOCKET_LIMITS[name] }));
  }
  await service.start();
  markStarted();
  service.startExpirySweep();
  service.startSelfHeal();
  const watchInterfaces = (config.global.allowMissingInterfaces ?? []).length > 0 || missingInterfaces.length > 0;
  const interfaceWatch = !watchInterfaces
    ? undefined
    : (await import("./interface-watch.js")).startInterfaceWatch({
        config,
        firewall,
        log,
        initial: missingInterfaces,
        reinstall: () => service.reinstall("an interface of global.allow_missing_interfaces appeared or went"),
      });
  logEvent(log, "info", "helper.ready",
    {
      firewallType: firewall.type,
      nftTable: options.firewallType === "nftables" ? nftPlacement(options.customChains).table : undefined,
      httpPort: config.httpPort,
      httpsPort: config.httpsPort,
      ...(config.waf ? { wafHttpPort: config.waf.httpPort, wafHttpsPort: config.waf.httpsPort } : {}),
      apps: config.apps.map((a) => `${a.name}:${a.protocol}/${a.port}`),
    },
    "helper ready",
  );

  return new Promise<number>((resolve) => {
    // Listeners stay registered (not `once`): a second signal during the stop is ignored rather than
    // killing the helper with the default action while a firewall command runs.
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      const cleanup = options.serviceRuleCleanupOnShutdown;
      logEvent(log, "info", "helper.stopping",
        { signal, revokeGrants: cleanup },
        cleanup
          ? "stopping; revoking live grants (--service-rule-cleanup-on-shutdown), the firewall table stays so ports stay protected"
          : "stopping; the firewall table stays so ports stay protected",
      );
      service.stop();
      clearInterval(interfaceWatch);
      // No new requests first, then (with the flag) the grants go; the table and its drops never do.
      void Promise.all(sockets.map((s) => s.close()))
        .then(async () => await shutdown?.revokeAllLeases(service, log))
        .then(
          (r) => resolve(r !== undefined && r.failed > 0 ? 1 : 0),
          () => resolve(1),
        );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => exitOnError("knockport-helper", ROOT_ERRORS, err));
