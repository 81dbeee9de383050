export * from "./errors.js";
export * from "./names.js";
export * from "./validate.js";
export * from "./payload.js";
export * from "./apps.js";
export * from "./elements.js";
export * from "./guard.js";
export * from "./backend.js";
