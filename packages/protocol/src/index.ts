// What the helper loads; its clients add ./client.js (@knockport/protocol/client).
export * from "./ip.js";
export * from "./port.js";
export * from "./methods.js";
export * from "./errors.js";
export * from "./jsonrpc.js";
export * from "./dispatch.js";
export type * from "./schema.js";
export type * from "./results.js";
export { logEvent } from "./log-event.js";
