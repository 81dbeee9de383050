export * from "./ip.js";
export * from "./port.js";
export * from "./methods.js";
export * from "./jsonrpc.js";
export * from "./dispatch.js";
export * from "./validation.js";
export * from "./schema.js";
