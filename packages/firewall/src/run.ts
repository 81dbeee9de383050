// Execution shared by the backends and the helper: running a program, sudo, conntrack's arguments.
export * from "./run-command.js";
export * from "./privilege.js";
export * from "./command-error.js";
export * from "./conntrack-args.js";
