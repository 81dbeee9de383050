export * from "./connect.js";
export * from "./records.js";
export * from "./store.js";
export * from "./subscribe.js";
