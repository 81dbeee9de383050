// The nftables side alone: the root helper running nftables imports this entry so that it never
// loads the iptables and VyOS renderers.
export * from "./errors.js";
export * from "./names.js";
export * from "./payload.js";
export * from "./elements.js";
export * from "./guard.js";
export * from "./ruleset.js";
