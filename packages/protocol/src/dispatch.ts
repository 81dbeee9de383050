import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { JSONRPC_ERRORS, type RequestId, type RpcErrorObject, type RpcResponse } from "./jsonrpc.js";
import { HELPER_ERRORS, type HelperErrorName } from "./errors.js";
import { METHODS, isMethodName, methodsOf, type MethodName, type SocketName, type ParamsOf, type ResultOf } from "./methods.js";

/** A failure a handler reports to the caller by name; anything else becomes "Internal error". */
export class HelperError extends Error {
  constructor(
    readonly errorName: HelperErrorName,
    readonly detail?: string,
  ) {
    super(detail ?? HELPER_ERRORS[errorName].message);
    this.name = "HelperError";
  }
}

export type MethodHandler<M extends MethodName, Ctx> = (params: ParamsOf<M>, ctx: Ctx) => Promise<ResultOf<M>>;
export type MethodHandlers<Ctx> = { readonly [M in MethodName]: MethodHandler<M, Ctx> };
/** The handlers a dispatcher for `socket` holds: only the rows of that socket. */
export type SocketHandlers<S extends SocketName, Ctx> = {
  readonly [M in MethodName as (typeof METHODS)[M]["socket"] extends S ? M : never]: MethodHandler<M, Ctx>;
};

export interface DispatcherOptions {
  /** A handler failed with something other than a named error of its row (a bug, or a leak to contain). */
  onInternalError: (err: unknown, method: MethodName) => void;
  /** A caller asked for a method of the other socket. */
  onNotAllowed?: (method: MethodName) => void;
}

const MAX_ID_LENGTH = 64;
const MAX_DETAIL = 300;
const ENVELOPE_KEYS = new Set(["jsonrpc", "id", "method", "params"]);

/** Schema errors as "path message" text; values are never echoed back (they may be hostile or secret). */
function describeSchemaErrors(errors: ErrorObject[] | null | undefined): string {
  const text = (errors ?? []).map((e) => {
    const extra = e.keyword === "additionalProperties" ? ` (${String((e.params as { additionalProperty?: unknown }).additionalProperty).slice(0, 32)})` : "";
    return `${e.instancePath || "params"} ${e.message ?? "invalid"}${extra}`;
  });
  return (text.join("; ") || "invalid").slice(0, MAX_DETAIL);
}

const isValidId = (id: unknown): id is RequestId =>
  (typeof id === "string" && id.length <= MAX_ID_LENGTH) || (typeof id === "number" && Number.isSafeInteger(id));
const errorResponse = (id: RequestId | null, error: RpcErrorObject): RpcResponse => ({ jsonrpc: "2.0", id, error });

function named(id: RequestId, name: HelperErrorName, detail: string | undefined): RpcResponse {
  const spec = HELPER_ERRORS[name];
  return errorResponse(id, { code: spec.code, message: spec.message, data: { name, ...(detail ? { detail } : {}) } });
}

/**
 * Build the request dispatcher of one socket: one JSON text in, one response out. It is the only path
 * from that socket to a handler, and it enforces the method table's columns: the method must be a row
 * of this socket (another socket's row answers METHOD_NOT_ALLOWED and runs nothing), its params must
 * pass the row's schema, and a handler error that is not one of the row's named errors is answered as
 * a generic internal error and reported to onInternalError.
 */
export function createDispatcher<S extends SocketName, Ctx>(
  socket: S,
  handlers: SocketHandlers<S, Ctx>,
  options: DispatcherOptions,
): (frame: string, ctx: Ctx) => Promise<RpcResponse> {
  const ajv = new Ajv({ allErrors: false, strict: true });
  type AnyHandler = (params: never, ctx: Ctx) => Promise<unknown>;
  const bySocket: Partial<Record<MethodName, AnyHandler>> = handlers;
  const rows = new Map<MethodName, { validate: ValidateFunction; handler: AnyHandler }>();
  for (const name of methodsOf(socket)) {
    const handler = bySocket[name];
    if (typeof handler !== "function") throw new Error(`no handler for ${socket} method ${name}`);
    rows.set(name, { validate: ajv.compile(METHODS[name].params), handler });
  }

  return async (frame, ctx) => {
    let req: Record<string, unknown>;
    try {
      req = JSON.parse(frame) as Record<string, unknown>;
    } catch {
      return errorResponse(null, { ...JSONRPC_ERRORS.PARSE_ERROR });
    }
    if (req === null || typeof req !== "object" || Array.isArray(req)) {
      return errorResponse(null, { ...JSONRPC_ERRORS.INVALID_REQUEST, data: { detail: "expected one request object" } });
    }
    const id = isValidId(req.id) ? req.id : null;
    if (req.jsonrpc !== "2.0" || id === null || typeof req.method !== "string" || Object.keys(req).some((k) => !ENVELOPE_KEYS.has(k))) {
      return errorResponse(id, {
        ...JSONRPC_ERRORS.INVALID_REQUEST,
        data: { detail: 'needs "jsonrpc":"2.0", an "id" (string ≤64 or integer), a "method", optional "params"' },
      });
    }
    const method = req.method;
    if (!isMethodName(method)) return errorResponse(id, { ...JSONRPC_ERRORS.METHOD_NOT_FOUND });
    const row = rows.get(method);
    if (row === undefined) {
      options.onNotAllowed?.(method);
      return named(id, "METHOD_NOT_ALLOWED", `${method} is a method of the ${METHODS[method].socket} socket`);
    }
    const params = req.params === undefined ? {} : req.params;
    if (!row.validate(params)) return errorResponse(id, { ...JSONRPC_ERRORS.INVALID_PARAMS, data: { detail: describeSchemaErrors(row.validate.errors) } });
    try {
      // Sound: `params` passed the row's schema, from which the handler's parameter type is derived.
      return { jsonrpc: "2.0", id, result: await row.handler(params as never, ctx) };
    } catch (err) {
      const allowed: readonly HelperErrorName[] = METHODS[method].errors;
      if (err instanceof HelperError && allowed.includes(err.errorName)) return named(id, err.errorName, err.detail);
      options.onInternalError(err, method);
      return errorResponse(id, { ...JSONRPC_ERRORS.INTERNAL_ERROR });
    }
  };
}
