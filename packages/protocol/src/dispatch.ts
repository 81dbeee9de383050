import { Ajv, type ValidateFunction } from "ajv";
import { JSONSCHEMA_ERRORS_MAX_DETAIL, describeSchemaErrors } from "./validation.js";
import { JSONRPC_ERRORS, type RequestId, type RpcErrorObject, type RpcResponse } from "./jsonrpc.js";
import {
  HELPER_ERRORS,
  METHODS,
  isMethodName,
  type HelperErrorName,
  type MethodName,
  type ParamsOf,
  type ResultOf,
} from "./methods.js";

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

export type MethodHandlers<Ctx> = {
  readonly [M in MethodName]: (params: ParamsOf<M>, ctx: Ctx) => Promise<ResultOf<M>>;
};

const MAX_ID_LENGTH = 64;

function isValidId(id: unknown): id is RequestId {
  return (
    (typeof id === "string" && id.length <= MAX_ID_LENGTH) ||
    (typeof id === "number" && Number.isSafeInteger(id))
  );
}

function errorResponse(id: RequestId | null, error: RpcErrorObject): RpcResponse {
  return { jsonrpc: "2.0", id, error };
}

/**
 * Build the request dispatcher: one JSON text in, one response out. It is the only path from the
 * socket to a handler: the method must be in METHODS and its params must pass that method's schema.
 */
export function createDispatcher<Ctx>(
  handlers: MethodHandlers<Ctx>,
  onInternalError: (err: unknown, method: MethodName) => void,
): (frame: string, ctx: Ctx) => Promise<RpcResponse> {
  const ajv = new Ajv({ allErrors: false, strict: true });
  const validators = new Map<MethodName, ValidateFunction>();
  for (const name of Object.keys(METHODS) as MethodName[]) {
    validators.set(name, ajv.compile(METHODS[name].params));
  }

  return async (frame, ctx) => {
    let message: unknown;
    try {
      message = JSON.parse(frame);
    } catch {
      return errorResponse(null, { ...JSONRPC_ERRORS.PARSE_ERROR });
    }
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      return errorResponse(null, { ...JSONRPC_ERRORS.INVALID_REQUEST, data: { detail: "expected one request object" } });
    }
    const req = message as Record<string, unknown>;
    const id = isValidId(req.id) ? req.id : null;
    const extraKeys = Object.keys(req).filter((k) => !["jsonrpc", "id", "method", "params"].includes(k));
    if (req.jsonrpc !== "2.0" || id === null || typeof req.method !== "string" || extraKeys.length > 0) {
      return errorResponse(id, {
        ...JSONRPC_ERRORS.INVALID_REQUEST,
        data: { detail: 'needs "jsonrpc":"2.0", an "id" (string ≤64 or integer), a "method", optional "params"' },
      });
    }
    const method = req.method;
    if (!isMethodName(method)) return errorResponse(id, { ...JSONRPC_ERRORS.METHOD_NOT_FOUND });
    const params = req.params === undefined ? {} : req.params;
    const validate = validators.get(method);
    if (!validate || !validate(params)) {
      return errorResponse(id, {
        ...JSONRPC_ERRORS.INVALID_PARAMS,
        data: { detail: describeSchemaErrors(validate?.errors).slice(0, JSONSCHEMA_ERRORS_MAX_DETAIL) },
      });
    }
    try {
      // The cast is sound: `params` passed METHODS[method].params, the schema typed as ParamsOf<method>.
      const handler = handlers[method] as (p: unknown, c: Ctx) => Promise<unknown>;
      const result = await handler(params, ctx);
      return { jsonrpc: "2.0", id, result };
    } catch (err) {
      if (err instanceof HelperError) {
        const spec = HELPER_ERRORS[err.errorName];
        return errorResponse(id, {
          code: spec.code,
          message: spec.message,
          data: { name: err.errorName, ...(err.detail ? { detail: err.detail } : {}) },
        });
      }
      onInternalError(err, method);
      return errorResponse(id, { ...JSONRPC_ERRORS.INTERNAL_ERROR });
    }
  };
}

/** Compiled result validators, for a client that must not trust what comes back either. */
export function compileResultValidators(): Map<MethodName, ValidateFunction> {
  const ajv = new Ajv({ allErrors: false, strict: true });
  const out = new Map<MethodName, ValidateFunction>();
  for (const name of Object.keys(METHODS) as MethodName[]) out.set(name, ajv.compile(METHODS[name].result));
  return out;
}

export function helperErrorNameFromCode(code: number): HelperErrorName | undefined {
  return (Object.keys(HELPER_ERRORS) as HelperErrorName[]).find((n) => HELPER_ERRORS[n].code === code);
}
