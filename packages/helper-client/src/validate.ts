import { Ajv, type ValidateFunction } from "ajv";
import type { MethodName } from "@knockport/protocol";
import { RESULTS, leaseEvent } from "@knockport/protocol/client";

/**
 * Validators compiled on first use, not at import: a process calls a few of the methods (the server
 * hello/open/counters), and compiling the whole table cost ~0.1 s of every start.
 */
let ajv: Ajv | undefined;
const resultValidators = new Map<MethodName, ValidateFunction>();
function resultValidator(method: MethodName): ValidateFunction {
  let validate = resultValidators.get(method);
  if (validate === undefined) {
    ajv ??= new Ajv({ allErrors: false, strict: true });
    validate = ajv.compile(RESULTS[method]);
    resultValidators.set(method, validate);
  }
  return validate;
}
let leaseEventValidator: ValidateFunction | undefined;
export const leaseEventValid = (params: unknown): boolean => (leaseEventValidator ??= new Ajv({ strict: true }).compile(leaseEvent))(params);

/** Whether `result` is what the method table says `method` answers (a name outside the table never is). */
export function validResult(method: MethodName, result: unknown): boolean {
  return Object.hasOwn(RESULTS, method) && resultValidator(method)(result);
}
