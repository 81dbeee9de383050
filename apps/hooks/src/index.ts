export { HookEngine, type HookEngineOptions } from "./engine.js";
export { HookMetrics } from "./metrics.js";
export { OpenRecord, RecordError } from "./record.js";
export { parseEvent, parseSnapshot, type WatchSnapshot } from "./stream.js";
export { WatchClient } from "./watch-client.js";
export type { HookApp, LeaseEvent, LiveLease } from "./types.js";
