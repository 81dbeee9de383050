import { pino } from "pino";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, UsageError, loadConfig } from "@knockport/config";
import { createDispatcher, type SocketName } from "@knockport/protocol";
import { HELPER_USAGE, parseHelperArgs } from "./args.js";
import { LeaseJournal } from "./leases.js";
import { FirewallCommandError, NftablesBackend, locateNft, uninstallNftables } from "./nftables.js";
import { HelperService } from "./service.js";
import { SOCKET_LIMITS, SocketSetupError, startRpcServer } from "./socket-server.js";
import { revokeAllLeases } from "./shutdown.js";
import { nftPlacement, renderIptablesDryRun, renderNftRuleset } from "@knockport/firewall";
import { IptablesBackend, locateIptables, uninstallIptables } from "./iptables.js";
import type { FirewallBackend } from "./backend.js";
import { DIRECT, refuseSudoAsServerUser, sudoPrivilege } from "./privilege.js";
import { VyosBackend, VyosBootstrapNeededError, locateVbash } from "./vyos.js";
import { renderSudoers, sudoCommands } from "./sudoers.js";
import { ForwardingDisabledError, checkForwarding } from "./forwarding.js";
import { ConntrackCutter, ConntrackMissingError, locateConntrackFor } from "./conntrack.js";
import { HookRunner } from "./hooks.js";
import type { RpcPeer } from "./lease-events.js";
import { InstanceLockError, takeInstanceLock, type InstanceLock } from "./instance-lock.js";

/** Problems the admin can fix: print the message alone, no stack trace. */
function isExpectedFailure(err: unknown): err is Error & { code: string } {
  return (
    err instanceof ConfigError ||
    err instanceof UsageError ||
    err instanceof FirewallCommandError ||
    err instanceof SocketSetupError ||
    err instanceof ForwardingDisabledError ||
    err instanceof VyosBootstrapNeededError ||
    err instanceof ConntrackMissingError ||
    err instanceof InstanceLockError ||
    (err instanceof Error && (err as { code?: string }).code === "STATE_WRITE_FAILED")
  );
}

/**
 * Locks held until the process exits (never released: the kernel drops them with the process). Kept
 * referenced here so that nothing holding a lock's descriptor can be collected and closed early.
 */
const heldLocks: InstanceLock[] = [];

async function lockStateDir(journal: LeaseJournal): Promise<void> {
  journal.prepare();
  heldLocks.push(await takeInstanceLock(join(journal.dir, "helper.lock"), `--state-dir ${journal.dir}`));
}

async function main(argv: string[]): Promise<number> {
  const options = parseHelperArgs(argv);
  if (options === "help") {
    process.stdout.write(HELPER_USAGE);
    return 0;
  }
  const log = pino({ name: "knockport-helper", level: options.logLevel });
  if (options.useSudo) refuseSudoAsServerUser(process.geteuid?.() ?? 0, readFileSync("/etc/passwd", "utf8"));
  const privilege = options.useSudo ? sudoPrivilege(options.sudoPath) : DIRECT;
  const placement = nftPlacement(options.customChains);
  if (options.printSudoers) {
    const config = options.configFile === undefined ? undefined : loadConfig(options.configFile, { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
    const conntrackPath = config === undefined ? undefined : locateConntrackFor(config);
    const commands =
      options.firewallType === "iptables"
        ? sudoCommands({ type: "iptables", bin: locateIptables(options.iptablesBinary) }, config, conntrackPath)
        : options.firewallType === "vyos"
          ? sudoCommands({ type: "vyos", nft: locateNft() }, config, conntrackPath)
          : sudoCommands({ type: "nftables", nft: locateNft(), placement }, config, conntrackPath);
    process.stdout.write(renderSudoers(options.sudoUser, commands, options.firewallType));
    return 0;
  }
  if (options.uninstallFirewall) {
    const removed =
      options.firewallType === "iptables"
        ? await uninstallIptables(locateIptables(options.iptablesBinary), privilege)
        : options.firewallType === "vyos" && options.configFile !== undefined
          ? await new VyosBackend(loadConfig(options.configFile), "/bin/vbash", locateNft(), privilege).uninstall()
          : await uninstallNftables(locateNft(), privilege, placement);
    const journal = new LeaseJournal(options.stateDir);
    await lockStateDir(journal);
    journal.save([]);
    log.info(
      { event: "firewall.uninstalled", removed, table: placement.table },
      removed ? `KnockPort's firewall objects removed (${placement.table})` : "no KnockPort firewall objects were installed",
    );
    return 0;
  }
  // parseHelperArgs guarantees a config file unless uninstalling
  const config = loadConfig(options.configFile ?? "", { httpPort: options.httpPort, httpsPort: options.httpsPort, ...options.waf });
  if (options.dryRun) {
    // Rendering needs no nft binary and no privileges.
    process.stdout.write(
      options.firewallType === "iptables"
        ? renderIptablesDryRun(config)
        : options.firewallType === "vyos"
          ? new VyosBackend(config, "/bin/vbash", "/usr/sbin/nft").renderRuleset()
          : renderNftRuleset(config, { placement }),
    );
    return 0;
  }
  checkForwarding(config);
  const conntrack = new ConntrackCutter(log, locateConntrackFor(config), privilege);
  const firewall: FirewallBackend =
    options.firewallType === "iptables"
      ? new IptablesBackend(config, locateIptables(options.iptablesBinary), privilege)
      : options.firewallType === "vyos"
        ? new VyosBackend(config, locateVbash(options.vbash), locateNft(), privilege)
        : new NftablesBackend(config, locateNft(), privilege, placement);
  const journal = new LeaseJournal(options.stateDir);
  // Both locks before any firewall command: a second helper (another config, state dir or socket)
  // exits here and leaves the running helper's table and journal alone.
  await lockStateDir(journal);
  const service = new HelperService(config, firewall, journal, log, undefined, new HookRunner(log), conntrack);
  const onInternalError = (err: unknown, method: string): void =>
    log.error({ event: "rpc.internal_error", method, err: (err as Error)?.message }, "handler failed");
  const onNotAllowed = (socket: SocketName) => (method: string): void =>
    log.warn({ audit: true, event: "rpc.not_allowed", socket, method }, `${method} refused on the ${socket} socket`);
  const knockDispatch = createDispatcher<"knock", RpcPeer | undefined>("knock", service.handlers, { onInternalError, onNotAllowed: onNotAllowed("knock") });
  const adminDispatch = createDispatcher<"admin", RpcPeer | undefined>("admin", service.handlers, { onInternalError, onNotAllowed: onNotAllowed("admin") });
  // Requests that arrive while the table is being installed wait for it (the client's timeout bounds that).
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const sockets = [
    await startRpcServer({
      name: "knock",
      socketPath: options.socketPath,
      socketGroup: options.socketGroup,
      dispatch: async (frame, peer) => {
        await started;
        return knockDispatch(frame, peer);
      },
      log,
      ...SOCKET_LIMITS.knock,
    }),
    await startRpcServer({
      name: "admin",
      flag: "--admin-socket",
      socketPath: options.adminSocketPath,
      socketGroup: options.adminSocketGroup,
      dispatch: async (frame, peer) => {
        await started;
        return adminDispatch(frame, peer);
      },
      log,
      ...SOCKET_LIMITS.admin,
    }),
  ];
  const rpc = { close: () => Promise.all(sockets.map((s) => s.close())) };
  await service.start();
  markStarted();
  service.startExpirySweep();
  service.startSelfHeal();
  log.info(
    {
      event: "helper.ready",
      firewallType: firewall.type,
      nftTable: options.firewallType === "nftables" ? placement.table : undefined,
      httpPort: config.httpPort,
      httpsPort: config.httpsPort,
      ...(config.waf ? { wafHttpPort: config.waf.httpPort, wafHttpsPort: config.waf.httpsPort } : {}),
      apps: config.apps.map((a) => `${a.name}:${a.protocol}/${a.port}`),
    },
    "helper ready",
  );

  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      const cleanup = options.serviceRuleCleanupOnShutdown;
      log.info(
        { event: "helper.stopping", signal, revokeGrants: cleanup },
        cleanup
          ? "stopping; revoking live grants (--service-rule-cleanup-on-shutdown), the firewall table stays so ports stay protected"
          : "stopping; the firewall table stays so ports stay protected",
      );
      service.stop();
      // No new requests first, then (with the flag) the grants go; the table and its drops never do.
      void rpc
        .close()
        .then(async () => (cleanup ? await revokeAllLeases(service, log) : undefined))
        .then(
          (r) => resolve(r !== undefined && r.failed > 0 ? 1 : 0),
          () => resolve(1),
        );
    };
    // Listeners stay registered (not `once`): execa's exit hook re-raises a signal when it finds
    // itself the only listener, which killed the helper mid-stop whenever a firewall command was
    // running. A second signal during the stop is ignored.
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      stop(signal);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (isExpectedFailure(err)) {
      process.stderr.write(`knockport-helper: ${err.message}\n`);
      process.exit(err instanceof ConfigError || err instanceof UsageError ? 2 : 1);
    }
    // A bug, not a usage problem: one line for the operator, no stack trace.
    process.stderr.write(`knockport-helper: unexpected error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
