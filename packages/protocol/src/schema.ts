/**
 * The subset of JSON schema the method table is written in, and `Infer`, the TypeScript type a schema
 * describes. The table's schemas are the single source: ajv validates with them and the types of
 * params and results are read from them, so the two cannot drift apart.
 *
 * Optional properties are plain optional (no `nullable`): ajv then refuses `null` for them, which a
 * type derived as `T | undefined` could not describe.
 */
interface Common {
  readonly description?: string;
}
export interface StringSchema extends Common {
  readonly type: "string";
  readonly enum?: readonly string[];
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
}
export interface NumberSchema extends Common {
  readonly type: "integer" | "number";
  readonly enum?: readonly number[];
  readonly minimum?: number;
  readonly maximum?: number;
}
export interface BooleanSchema extends Common {
  readonly type: "boolean";
}
export interface ArraySchema extends Common {
  readonly type: "array";
  readonly items: Schema;
  readonly maxItems?: number;
}
export interface ObjectSchema extends Common {
  readonly type: "object";
  readonly additionalProperties: false;
  readonly required: readonly string[];
  readonly properties: { readonly [name: string]: Schema };
}
export type Schema = StringSchema | NumberSchema | BooleanSchema | ArraySchema | ObjectSchema;

type Simplify<T> = { -readonly [K in keyof T]: T[K] } & {};

type InferObject<P, R extends string> = [keyof P] extends [never] ? Record<string, never> : Simplify<
  { [K in keyof P as K extends R ? K : never]: Infer<P[K]> } & { [K in keyof P as K extends R ? never : K]?: Infer<P[K]> }
>;

/** The value type a schema of the subset above accepts. */
export type Infer<S> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly type: "string" }
    ? string
    : S extends { readonly type: "integer" | "number" }
      ? number
      : S extends { readonly type: "boolean" }
        ? boolean
        : S extends { readonly type: "array"; readonly items: infer I }
          ? Infer<I>[]
          : S extends { readonly type: "object"; readonly properties: infer P; readonly required: readonly (infer R)[] }
            ? InferObject<P, R & string>
            : never;
