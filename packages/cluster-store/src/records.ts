/**
 * What the store holds and what its channel carries. Whoever can write the store could put anything
 * there, so every record is schema-checked and only its app, address, key index and deadline are
 * used; the reader still clamps them to its own config.
 */
import { Ajv, type ValidateFunction } from "ajv";
import { APP_NAME_PATTERN, appName, ipText, parseIpAddress, type IpAddress } from "@knockport/protocol";

/** Longest record or message accepted: the ones written are about 120 bytes. */
export const MAX_RECORD_BYTES = 1024;
/** Deadlines are epoch ms; anything past year ~3000 is garbage. */
const deadline = { type: "integer", minimum: 0, maximum: 32_503_680_000_000 } as const;
/** An index into an app's key list (the config allows at most 1000 keys). */
const keyIndex = { type: "integer", minimum: 0, maximum: 999 } as const;

/** A step-1 window: step 2 with key pair `keyIndex` is accepted on any gateway until `deadline`. */
export interface Step1Record {
  readonly app: string;
  readonly ip: IpAddress;
  readonly keyIndex: number;
  readonly deadline: number;
}
/** A service lease of the cluster: every gateway opens `app` for `ip` until `deadline`. */
export interface LeaseRecord {
  readonly app: string;
  readonly ip: IpAddress;
  readonly deadline: number;
}
export type ClusterMessage =
  | ({ readonly kind: "step1" } & Step1Record)
  | ({ readonly kind: "lease" } & LeaseRecord)
  | { readonly kind: "revoke"; readonly app: string; readonly ip: IpAddress };

const step1Schema = {
  type: "object",
  additionalProperties: false,
  required: ["app", "ip", "keyIndex", "deadline"],
  properties: { app: appName, ip: ipText, keyIndex, deadline },
} as const;
const leaseValueSchema = { type: "object", additionalProperties: false, required: ["deadline"], properties: { deadline } } as const;
const messageSchema = {
  oneOf: [
    { type: "object", additionalProperties: false, required: ["kind", ...step1Schema.required], properties: { kind: { const: "step1" }, ...step1Schema.properties } },
    { type: "object", additionalProperties: false, required: ["kind", "app", "ip", "deadline"], properties: { kind: { const: "lease" }, app: appName, ip: ipText, deadline } },
    { type: "object", additionalProperties: false, required: ["kind", "app", "ip"], properties: { kind: { const: "revoke" }, app: appName, ip: ipText } },
  ],
} as const;

const ajv = new Ajv({ strict: true, allErrors: false });
const validateStep1 = ajv.compile(step1Schema);
const validateLeaseValue = ajv.compile(leaseValueSchema);
const validateMessage = ajv.compile(messageSchema);
const appNameRegex = new RegExp(APP_NAME_PATTERN);

function parseJson(text: string | Buffer | null | undefined, validate: ValidateFunction): Record<string, unknown> | undefined {
  if (text === null || text === undefined || text.length > MAX_RECORD_BYTES) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(typeof text === "string" ? text : text.toString("utf8"));
  } catch {
    return undefined;
  }
  return validate(doc) ? (doc as Record<string, unknown>) : undefined;
}

/** The address in canonical form, or undefined when the text is none (the schema only bounds it). */
function address(text: unknown): IpAddress | undefined {
  return typeof text === "string" ? parseIpAddress(text) : undefined;
}

export function parseStep1(text: string | Buffer | null | undefined): Step1Record | undefined {
  const d = parseJson(text, validateStep1);
  const ip = address(d?.ip);
  if (!d || !ip) return undefined;
  return { app: d.app as string, ip, keyIndex: d.keyIndex as number, deadline: d.deadline as number };
}

export function parseMessage(text: string | Buffer): ClusterMessage | undefined {
  const d = parseJson(text, validateMessage);
  const ip = address(d?.ip);
  if (!d || !ip) return undefined;
  if (d.kind === "revoke") return { kind: "revoke", app: d.app as string, ip };
  if (d.kind === "lease") return { kind: "lease", app: d.app as string, ip, deadline: d.deadline as number };
  return { kind: "step1", app: d.app as string, ip, keyIndex: d.keyIndex as number, deadline: d.deadline as number };
}

/** A field of the leases hash is `app ip`; its value `{"deadline":…}`. */
export function leaseField(app: string, ip: IpAddress): string {
  return `${app} ${ip}`;
}

export function parseLease(field: string, value: string): LeaseRecord | undefined {
  if (field.length > 100) return undefined;
  const [app, ipTextValue, extra] = field.split(" ");
  const ip = address(ipTextValue);
  const v = parseJson(value, validateLeaseValue);
  if (extra !== undefined || app === undefined || !appNameRegex.test(app) || app.length > 32 || !ip || !v) return undefined;
  return { app, ip, deadline: v.deadline as number };
}
