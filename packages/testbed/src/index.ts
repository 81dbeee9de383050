/**
 * @knockport/testbed — a real-kernel test network in Linux network namespaces for KnockPort.
 *
 *   kp<suffix>-sw    bridge br0 joining the three hosts below (so both clients reach srv on ONE interface)
 *   kp<suffix>-srv   ext0 198.51.100.1/24 2001:db8:100::1/64   (+ int0 203.0.113.1/24 2001:db8:200::1/64 with lan)
 *   kp<suffix>-cli   eth0 198.51.100.10     2001:db8:100::10     the knocker
 *   kp<suffix>-cli2  eth0 198.51.100.20     2001:db8:100::20     a bystander that must stay locked out
 *   kp<suffix>-lan   eth0 203.0.113.10      2001:db8:200::10     (optional) internal host behind srv
 *   kp<suffix>-nat   eth0 198.51.100.30     2001:db8:100::30     (optional) home router masquerading priv (IPv4)
 *   kp<suffix>-priv  eth0 10.77.0.10                             (optional) a client behind nat
 *
 * Nothing is connected to the root namespace, so no test traffic can leave the topology.
 */
export { cleanupStaleTopologies, NAMESPACE_PATTERN, type StaleCleanupReport } from "./namespaces.js";
export {
  createTopology,
  type Topology,
  type TopologyOptions,
  type TopologyAddresses,
  type HostAddresses,
  type HostName,
  type ExecOptions,
  type ExecResult,
} from "./topology.js";
export type { ManagedProcess, SpawnOptions, OutputLine, OutputStream, ExitInfo, LineMatcher } from "./process.js";
export {
  probe,
  probeTcp,
  probeUdp,
  probeTcpConnect,
  startEchoServer,
  toolPath,
  type PortState,
  type ProbeMode,
  type ProbeResult,
  type EchoServerOptions,
} from "./probe.js";
export { knock, knockUrl, formBody, describeKnock, type KnockOptions, type KnockResult } from "./knock.js";
export {
  readNftTable,
  nftSetNames,
  nftSetElements,
  nftSetsContaining,
  listConntrack,
  enableConntrack,
  listTcpSockets,
  type NftJson,
  type NftSetElement,
  type JsonValue,
  type JsonObject,
} from "./nft.js";
export { startKnockport, unitNodeOptions, type StackOptions, type KnockportStack } from "./stack.js";
export { renderConfigYaml, exampleConfig, randomSecret, randomPath, randomTag, type AppSpec, type ConfigSpec, type ExampleConfigOptions } from "./config.js";
export type { StatusLease } from "./status.js";
export { sleep, sleepUntil, pollUntil, maskSecret } from "./util.js";
export {
  readFirewallState,
  firewallFlags,
  FIREWALL_KINDS,
  ALL_FIREWALL_KINDS,
  type FirewallKind,
  type FirewallState,
  type FirewallSetEntry,
} from "./firewall-state.js";
export { setNatPublicAddress, NAT_PUBLIC_V4, NAT_SPARE_V4 } from "./nat.js";
export { startTestRedis, type TestRedis } from "./redis.js";
