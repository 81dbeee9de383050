import type { BackendRender, BackendRuntime, BackendSudoers, FirewallType } from "@knockport/firewall";

// The one factory: each backend is a package of its own, imported only when --firewall-type names it,
// so the running helper loads no code of the other backends.

const RUNTIME: Record<FirewallType, () => Promise<BackendRuntime>> = {
  nftables: () => import("@knockport/backend-nftables/runtime"),
  iptables: () => import("@knockport/backend-iptables/runtime"),
  vyos: () => import("@knockport/backend-vyos/runtime"),
};

const RENDER: Record<FirewallType, () => Promise<BackendRender>> = {
  nftables: () => import("@knockport/backend-nftables/render"),
  iptables: () => import("@knockport/backend-iptables/render"),
  vyos: () => import("@knockport/backend-vyos/render"),
};

const SUDOERS: Record<FirewallType, () => Promise<BackendSudoers>> = {
  nftables: () => import("@knockport/backend-nftables/sudoers"),
  iptables: () => import("@knockport/backend-iptables/sudoers"),
  vyos: () => import("@knockport/backend-vyos/sudoers"),
};

/** Installing, watching, applying and removing: what the helper runs (and the CLI's uninstall). */
export const loadRuntime = (type: FirewallType): Promise<BackendRuntime> => RUNTIME[type]();
/** The pure rendering (the CLI's dry-run). */
export const loadRender = (type: FirewallType): Promise<BackendRender> => RENDER[type]();
/** The command lines a sudoers file allows (the CLI's print-sudoers). */
export const loadSudoers = (type: FirewallType): Promise<BackendSudoers> => SUDOERS[type]();
