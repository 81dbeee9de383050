/**
 * The shape of the event catalogue (events.ts, events-apps.ts) and the types derived from it: a log
 * call's fields are checked against its event's entry. Types only: nothing here is loaded at run time.
 */
export type EventLevel = "debug" | "info" | "warn" | "error";

/**
 * A field's type as the catalogue writes it; a trailing `?` marks a field that is not on every line; a
 * list of strings is a field that always holds one of them.
 */
export type FieldType = "string" | "number" | "boolean" | "string[]" | "number[]";
export type FieldSpec = FieldType | `${FieldType}?` | readonly string[];

export interface EventSpec {
  readonly level: EventLevel;
  /** Audit lines carry `"audit":true` (a lease or firewall change, a hook run). */
  readonly audit?: boolean;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}
export type EventCatalogue = Readonly<Record<string, EventSpec>>;

type TsType<T> = T extends readonly (infer V)[] ? V
  : T extends "string" ? string
  : T extends "number" ? number
  : T extends "boolean" ? boolean
  : T extends "string[]" ? readonly string[]
  : T extends "number[]" ? readonly number[]
  : never;
type RequiredFields<F> = { [K in keyof F as F[K] extends `${string}?` ? never : K]: TsType<F[K]> };
type OptionalFields<F> = { [K in keyof F as F[K] extends `${string}?` ? K : never]?: F[K] extends `${infer T}?` ? TsType<T> | undefined : never };

/** The fields a line of event `S` carries besides `event` (and `"audit":true` for an audit event). */
export type EventFields<S extends EventSpec> = RequiredFields<S["fields"]> & OptionalFields<S["fields"]> & (S["audit"] extends true ? { audit: true } : unknown);

/** pino's logger and the helper's own both fit; a call needs only its event's level. */
export interface LevelLogger {
  debug(fields: Record<string, unknown>, msg?: string): void;
  info(fields: Record<string, unknown>, msg?: string): void;
  warn(fields: Record<string, unknown>, msg?: string): void;
  error(fields: Record<string, unknown>, msg?: string): void;
}

/**
 * Logs one event of catalogue `C`: the type checks the name, that `level` is the catalogue's, and the
 * fields (names, types, none missing, none extra). The level is written at the call, as with
 * `log.warn(...)`, so that no table of levels has to be loaded at run time.
 */
export type LogEvent<C extends EventCatalogue> = <N extends keyof C & string>(
  log: Pick<LevelLogger, C[N]["level"]>,
  level: C[N]["level"],
  name: N,
  fields: EventFields<C[N]>,
  msg?: string,
) => void;
