export * from "./lease-sync.js";
