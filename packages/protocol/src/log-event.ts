import type { EventLevel, LevelLogger, LogEvent } from "./event-types.js";
import type { ROOT_EVENTS } from "./events.js";

export function writeEvent(log: Partial<LevelLogger>, level: EventLevel, name: string, fields: object, msg?: string): void {
  (log as LevelLogger)[level]({ event: name, ...fields }, msg);
}

/** The root helper's (and its backends') events: the catalogue is only a type here, never loaded. */
export const logEvent: LogEvent<typeof ROOT_EVENTS> = writeEvent;
