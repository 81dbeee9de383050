export * from "./errors.js";
export * from "./schema.js";
export * from "./types.js";
export * from "./load.js";
export * from "./flags.js";
export * from "./hooks.js";
export * from "./two-factor-file.js";
export * from "./waf.js";
