// Execution shared by the backends and the helper: running a program, sudo. conntrack's arguments are
// ./conntrack, loaded only for configs with close_established.
export * from "./run-command.js";
export * from "./privilege.js";
export * from "./command-error.js";
