import type { EventCatalogue, LevelLogger, LogEvent } from "./event-types.js";
import type { ROOT_EVENTS } from "./events.js";

/** logEvent over catalogue `C`, which is only a type here (none of it is loaded): the name first, then the fields. */
export const eventLogger = <C extends EventCatalogue>(): LogEvent<C> => (log, level, name, fields, msg) => (log as LevelLogger)[level]({ event: name, ...fields }, msg);
/** The root helper's (and its backends') events. */
export const logEvent = eventLogger<typeof ROOT_EVENTS>();
