export type { FirewallBackend, KernelElement, SetChange } from "@knockport/firewall";
