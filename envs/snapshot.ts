/**
 * Saving and restoring an env's full state as JSON, so a training run can be checkpointed and resumed without
 * replaying its history. One generic walker serves every env: an env's state is its own fields (numbers, typed
 * arrays, plain objects, helper objects such as a deck), and nested envs (a wrapper's inner env) are saved
 * through their own `getState`. Spaces and functions are configuration, fixed by the constructor, and skipped.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What `snapshotFields` returns: an object's fields as JSON. */
export type FieldsState = { [key: string]: Json };

/** Objects that snapshot themselves (envs): the walker calls these instead of walking their fields. */
export interface Snapshottable {
  getState(): Json;
  setState(state: Json): void;
}

const TYPED = {
  Float32Array,
  Float64Array,
  Int8Array,
  Int16Array,
  Int32Array,
  Uint8Array,
  Uint16Array,
  Uint32Array,
} as const;
type TypedName = keyof typeof TYPED;
type Typed = InstanceType<(typeof TYPED)[TypedName]>;

function isSnapshottable(x: object): x is Snapshottable {
  return typeof (x as Partial<Snapshottable>).getState === 'function' && typeof (x as Partial<Snapshottable>).setState === 'function';
}

/** Class instances other than plain objects and arrays are restored in place, so their methods stay. */
function isInstance(x: object): boolean {
  const proto = Object.getPrototypeOf(x);
  return proto !== null && proto !== Object.prototype && !Array.isArray(x) && !ArrayBuffer.isView(x);
}

/** Values that are configuration and never change after construction: not part of the state. */
export type SkipTest = (value: unknown) => boolean;

function encode(value: unknown, skip: SkipTest, path: string): Json | undefined {
  if (value === undefined || typeof value === 'function' || skip(value)) return undefined;
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : { $num: String(value) };
  if (typeof value !== 'object') throw new Error(`Cannot save ${path}: a ${typeof value} is not JSON-able.`);
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name as TypedName;
    if (!(name in TYPED)) throw new Error(`Cannot save ${path}: unsupported array type ${name}.`);
    return { $typed: name, data: Array.from(value as Typed, (x) => encode(x, skip, path) as Json) };
  }
  if (Array.isArray(value)) return value.map((x, i) => encode(x, skip, `${path}[${i}]`) ?? null);
  if (value instanceof Map || value instanceof Set) throw new Error(`Cannot save ${path}: Map and Set are not supported.`);
  if (isSnapshottable(value)) return { $state: value.getState() };
  return { $fields: snapshotFields(value, skip, path) };
}

/** The own fields of `obj` as JSON (see the module comment). */
export function snapshotFields(obj: object, skip: SkipTest, path = obj.constructor.name): FieldsState {
  const out: FieldsState = {};
  for (const [key, value] of Object.entries(obj)) {
    const encoded = encode(value, skip, `${path}.${key}`);
    if (encoded !== undefined) out[key] = encoded;
  }
  return out;
}

function tagged(x: Json): { [key: string]: Json } | undefined {
  return x !== null && typeof x === 'object' && !Array.isArray(x) ? x : undefined;
}

/** Decodes `state` for a field whose current value is `current`, restoring objects in place where it can. */
function decode(state: Json, current: unknown, path: string): unknown {
  const tag = tagged(state);
  if (tag && '$num' in tag) return Number(tag.$num);
  if (tag && '$typed' in tag) {
    const Ctor = TYPED[tag.$typed as TypedName];
    if (!Ctor || !Array.isArray(tag.data)) throw new Error(`Bad saved state at ${path}: unknown array type.`);
    const data = tag.data.map((x) => decode(x, undefined, path) as number);
    if (current instanceof Ctor && current.length === data.length) {
      current.set(data);
      return current;
    }
    return Ctor.from(data);
  }
  if (tag && '$state' in tag) {
    if (!current || typeof current !== 'object' || !isSnapshottable(current))
      throw new Error(`Bad saved state at ${path}: it holds a nested env, but this object has none there.`);
    current.setState(tag.$state);
    return current;
  }
  if (tag && '$fields' in tag) {
    const fields = tagged(tag.$fields);
    if (!fields) throw new Error(`Bad saved state at ${path}: fields are not an object.`);
    if (current && typeof current === 'object' && isInstance(current)) {
      restoreFields(current, fields, path);
      return current;
    }
    const plain: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) plain[k] = decode(v, undefined, `${path}.${k}`);
    return plain;
  }
  if (Array.isArray(state)) {
    const old = Array.isArray(current) && current.length === state.length ? current : [];
    return state.map((x, i) => decode(x, old[i], `${path}[${i}]`));
  }
  return state;
}

/** Any JSON-able env value (observations: numbers, typed arrays, arrays, plain objects) as JSON. */
export function valueToJson(value: unknown): Json {
  return encode(value, () => false, 'value') ?? null;
}

/** The value `valueToJson` saved (typed arrays come back as typed arrays). */
export function valueFromJson(json: Json): unknown {
  return decode(json, undefined, 'value');
}

/** Restores fields saved by `snapshotFields` into `obj` (class instances among them in place). */
export function restoreFields(obj: object, state: FieldsState, path = obj.constructor.name): void {
  const target = obj as Record<string, unknown>;
  for (const [key, value] of Object.entries(state)) {
    if (!(key in target)) throw new Error(`Bad saved state at ${path}: no field '${key}' (was it saved from another env?).`);
    target[key] = decode(value, target[key], `${path}.${key}`);
  }
}
