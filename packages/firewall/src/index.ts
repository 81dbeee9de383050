export * from "./nft.js";
export * from "./iptables.js";
export * from "./vyos.js";
