import type { BackendRender, BackendRuntime, BackendSudoers, FirewallType } from "@knockport/firewall";

// The one factory: each backend is a package of its own, imported only when --firewall-type names it,
// so the running helper loads no code of the other backends.
const PARTS: Record<FirewallType, { runtime: () => Promise<BackendRuntime>; render: () => Promise<BackendRender>; sudoers: () => Promise<BackendSudoers> }> = {
  nftables: { runtime: () => import("@knockport/backend-nftables/runtime"), render: () => import("@knockport/backend-nftables/render"), sudoers: () => import("@knockport/backend-nftables/sudoers") },
  iptables: { runtime: () => import("@knockport/backend-iptables/runtime"), render: () => import("@knockport/backend-iptables/render"), sudoers: () => import("@knockport/backend-iptables/sudoers") },
  vyos: { runtime: () => import("@knockport/backend-vyos/runtime"), render: () => import("@knockport/backend-vyos/render"), sudoers: () => import("@knockport/backend-vyos/sudoers") },
};

/** Installing, watching, applying, removing: what the helper runs (and the CLI's uninstall-firewall). */
export const loadRuntime = (type: FirewallType): Promise<BackendRuntime> => PARTS[type].runtime();
/** The pure rendering (the CLI's dry-run). */
export const loadRender = (type: FirewallType): Promise<BackendRender> => PARTS[type].render();
/** The command lines of the sudoers file (the CLI's print-sudoers). */
export const loadSudoers = (type: FirewallType): Promise<BackendSudoers> => PARTS[type].sudoers();
