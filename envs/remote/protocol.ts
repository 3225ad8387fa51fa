/**
 * The hqlt env protocol (docs/PROTOCOL.md): a multipart ZeroMQ message is a UTF-8 JSON header frame followed by
 * raw little-endian binary frames. An n-d array inside the header is `{"$nd": k, "dtype": ..., "shape": [...]}`,
 * its data being frame k (1-based); a non-finite float is `{"$f": "inf" | "-inf" | "nan"}`.
 *
 * Batched values follow Gymnasium's vector batching: one array per leaf of the space with the env index first
 * (`[numEnvs, ...shape]`), Tuple as a JSON array of batches, Dict as a JSON object of batches.
 */
import type { Batch, SpaceJSON } from '../spaces.js';
import type { VectorInfo } from '../vector.js';

/**
 * Bumped on any incompatible change; a peer speaking another version gets a `ProtocolVersionMismatch` error.
 * v2: one client session at a time (`Busy`), `close` ends the session instead of stopping the server.
 */
export const PROTOCOL_VERSION = 2;
/** How long a client waits for a reply by default (`--remote-timeout`, `timeoutMs`). */
export const DEFAULT_REMOTE_TIMEOUT_MS = 30_000;
/** Largest request or reply accepted by default (all frames together). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export const DTYPES = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
} as const;
export type Dtype = keyof typeof DTYPES;
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A typed n-d array on the wire; `bool` data is one byte (0/1) per element. */
export class NDArray {
  constructor(
    readonly dtype: Dtype,
    readonly shape: readonly number[],
    readonly data: TypedArray,
  ) {}
  /** Element i (row-major) as a JS number. */
  at(i: number): number {
    return Number(this.data[i]);
  }
}

/** A request or reply that breaks the protocol (bad framing, header, array or field). */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** An error raised inside the peer, carried by an `error` reply. */
export class RemoteEnvError extends Error {
  override name = 'RemoteEnvError';
  constructor(
    message: string,
    /** The remote exception's type, e.g. `ValueError`, `ProtocolVersionMismatch`. */
    readonly remoteType?: string,
  ) {
    super(message);
  }
}

export type Header = Record<string, unknown> & { type: string };

/** Encodes a header (which may hold NDArrays, typed arrays and non-finite numbers) into message frames. */
export function encodeMessage(header: Header): Buffer[] {
  const frames: Buffer[] = [];
  const ref = (dtype: Dtype, shape: readonly number[], data: ArrayBufferView) => {
    frames.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return { $nd: frames.length, dtype, shape };
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'number') return Number.isFinite(v) ? v : { $f: Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf' };
    if (typeof v === 'bigint') return Number(v);
    if (v === null || typeof v !== 'object') return v;
    if (v instanceof NDArray) return ref(v.dtype, v.shape, v.data);
    if (ArrayBuffer.isView(v)) {
      const dtype = dtypeOf(v);
      if (dtype) return ref(dtype, [(v as TypedArray).length], v);
      return ref('uint8', [v.byteLength], v);
    }
    if (Array.isArray(v)) return v.map(walk);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined && typeof x !== 'function') out[k] = walk(x);
    return out;
  };
  const json = JSON.stringify(walk(header));
  return [Buffer.from(json, 'utf8'), ...frames];
}

/** Decodes message frames; array references become NDArrays (with copied, aligned data). */
export function decodeMessage(frames: readonly Buffer[], maxBytes = DEFAULT_MAX_MESSAGE_BYTES): Header {
  const total = frames.reduce((s, f) => s + f.length, 0);
  if (total > maxBytes)
    throw new ProtocolError(`message of ${total} bytes exceeds the limit of ${maxBytes} bytes (max_message_bytes).`);
  if (frames.length === 0) throw new ProtocolError('empty message: expected a JSON header frame.');
  let header: unknown;
  try {
    header = JSON.parse(frames[0].toString('utf8'), (_k, v: unknown) => revive(v, frames));
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`the header frame is not valid JSON (${(e as Error).message}).`);
  }
  if (!isObject(header) || typeof header.type !== 'string')
    throw new ProtocolError('the header must be a JSON object with a string "type" field.');
  return header as Header;
}

function revive(v: unknown, frames: readonly Buffer[]): unknown {
  if (!isObject(v)) return v;
  if ('$f' in v) {
    if (v.$f === 'inf') return Infinity;
    if (v.$f === '-inf') return -Infinity;
    if (v.$f === 'nan') return NaN;
    throw new ProtocolError(`bad non-finite float ${JSON.stringify(v.$f)}: expected "inf", "-inf" or "nan".`);
  }
  if (!('$nd' in v)) return v;
  const { $nd: k, dtype, shape } = v;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k >= frames.length)
    throw new ProtocolError(`array reference $nd=${JSON.stringify(k)} names no frame (message has ${frames.length}).`);
  if (typeof dtype !== 'string' || !(dtype in DTYPES))
    throw new ProtocolError(`unknown dtype ${JSON.stringify(dtype)}; known: ${Object.keys(DTYPES).join(', ')}.`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new ProtocolError(`bad shape ${JSON.stringify(shape)}: expected non-negative integers.`);
  const Ctor = DTYPES[dtype as Dtype];
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  const frame = frames[k];
  if (frame.length !== size * Ctor.BYTES_PER_ELEMENT)
    throw new ProtocolError(
      `frame ${k} has ${frame.length} bytes but a ${dtype} array of shape [${shape.join(', ')}] needs ` +
        `${size * Ctor.BYTES_PER_ELEMENT}.`,
    );
  const bytes = new Uint8Array(frame.length);
  bytes.set(frame); // copy: ZeroMQ frames need not be aligned for the typed array
  return new NDArray(dtype as Dtype, shape as number[], new Ctor(bytes.buffer) as TypedArray);
}

function dtypeOf(v: ArrayBufferView): Dtype | undefined {
  if (v instanceof Uint8ClampedArray) return 'uint8';
  for (const [name, Ctor] of Object.entries(DTYPES)) if (v instanceof Ctor) return name as Dtype;
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof NDArray);
}

// ---- batching per space (its JSON form) ----

/** Packs one value per env into the batched wire form of `space` (see the module comment). */
export function batchValues(space: SpaceJSON, values: readonly unknown[], what = 'value'): unknown {
  const n = values.length;
  switch (space.type) {
    case 'Discrete': {
      const data = new Int32Array(n);
      values.forEach((v, i) => {
        if (typeof v !== 'number' || !Number.isInteger(v)) throw new ProtocolError(`${what} ${i}: expected an integer, got ${show(v)}.`);
        data[i] = v;
      });
      return new NDArray('int32', [n], data);
    }
    case 'Box':
      return packRows(values, leafShape(space), Float32Array, 'float32', what);
    case 'MultiDiscrete':
      return packRows(values, leafShape(space), Int32Array, 'int32', what);
    case 'MultiBinary':
      return packRows(values, leafShape(space), Int8Array, 'int8', what);
    case 'Tuple':
      return subSpaces(space).map(([key, sub]) =>
        batchValues(sub, values.map((v, i) => item(v, key, i, what)), `${what}[${key}]`),
      );
    case 'Dict':
      return Object.fromEntries(
        subSpaces(space).map(([key, sub]) => [
          key,
          batchValues(sub, values.map((v, i) => item(v, key, i, what)), `${what}.${key}`),
        ]),
      );
    default:
      throw new ProtocolError(`unsupported space type '${space.type}'.`);
  }
}

/** Unpacks a batched wire value of `space` into `n` per-env values of our space types (Box -> Float32Array, ...). */
export function unbatchValues(space: SpaceJSON, wire: unknown, n: number, what = 'value'): unknown[] {
  switch (space.type) {
    case 'Discrete': {
      const nd = leaf(wire, [], n, what);
      return Array.from({ length: n }, (_, i) => nd.at(i));
    }
    case 'Box':
      return rows(leaf(wire, leafShape(space), n, what), n, Float32Array);
    case 'MultiDiscrete':
      return rows(leaf(wire, leafShape(space), n, what), n, Int32Array);
    case 'MultiBinary':
      return rows(leaf(wire, leafShape(space), n, what), n, Int8Array);
    case 'Tuple': {
      const subs = subSpaces(space);
      if (!Array.isArray(wire) || wire.length !== subs.length)
        throw new ProtocolError(`${what}: expected a list of ${subs.length} batches for a Tuple space.`);
      const parts = subs.map(([key, sub]) => unbatchValues(sub, wire[key as number], n, `${what}[${key}]`));
      return Array.from({ length: n }, (_, i) => parts.map((p) => p[i]));
    }
    case 'Dict': {
      if (!isObject(wire)) throw new ProtocolError(`${what}: expected an object of batches for a Dict space.`);
      const parts = subSpaces(space).map(
        ([key, sub]) => [key, unbatchValues(sub, wire[key], n, `${what}.${key}`)] as const,
      );
      return Array.from({ length: n }, (_, i) => Object.fromEntries(parts.map(([k, p]) => [k, p[i]])));
    }
    default:
      throw new ProtocolError(`unsupported space type '${space.type}'.`);
  }
}

/** The wire form of a batch (spaces.ts' layout, which is the wire's): typed arrays get their [n, ...shape]. */
export function batchToWire(space: SpaceJSON, batch: Batch, n: number): unknown {
  switch (space.type) {
    case 'Discrete':
      return new NDArray('int32', [n], batch as Int32Array);
    case 'Box':
      return new NDArray('float32', [n, ...leafShape(space)], batch as Float32Array);
    case 'MultiDiscrete':
      return new NDArray('int32', [n, ...leafShape(space)], batch as Int32Array);
    case 'MultiBinary':
      return new NDArray('int8', [n, ...leafShape(space)], batch as Int8Array);
    case 'Tuple':
      return subSpaces(space).map(([key, sub]) => batchToWire(sub, (batch as Batch[])[key as number], n));
    case 'Dict':
      return Object.fromEntries(
        subSpaces(space).map(([key, sub]) => [key, batchToWire(sub, (batch as { [k: string]: Batch })[key], n)]),
      );
    default:
      throw new ProtocolError(`unsupported space type '${space.type}'.`);
  }
}

/**
 * A batched wire value of `space` as a batch in spaces.ts' layout, read straight from the frames; other dtypes
 * (numpy's int64, float64) are converted to the space's. The shapes are checked, the values are not.
 */
export function batchFromWire(space: SpaceJSON, wire: unknown, n: number, what = 'value'): Batch {
  switch (space.type) {
    case 'Discrete':
      return typedData(leaf(wire, [], n, what), Int32Array);
    case 'Box':
      return typedData(leaf(wire, leafShape(space), n, what), Float32Array);
    case 'MultiDiscrete':
      return typedData(leaf(wire, leafShape(space), n, what), Int32Array);
    case 'MultiBinary':
      return typedData(leaf(wire, leafShape(space), n, what), Int8Array);
    case 'Tuple': {
      const subs = subSpaces(space);
      if (!Array.isArray(wire) || wire.length !== subs.length)
        throw new ProtocolError(`${what}: expected a list of ${subs.length} batches for a Tuple space.`);
      return subs.map(([key, sub]) => batchFromWire(sub, wire[key as number], n, `${what}[${key}]`));
    }
    case 'Dict': {
      if (!isObject(wire)) throw new ProtocolError(`${what}: expected an object of batches for a Dict space.`);
      return Object.fromEntries(subSpaces(space).map(([key, sub]) => [key, batchFromWire(sub, wire[key], n, `${what}.${key}`)]));
    }
    default:
      throw new ProtocolError(`unsupported space type '${space.type}'.`);
  }
}

function typedData<C extends RowCtor>(nd: NDArray, Ctor: C): InstanceType<C> {
  if (nd.data instanceof Ctor) return nd.data as InstanceType<C>;
  const out = new Ctor(nd.data.length) as InstanceType<C>;
  for (let i = 0; i < out.length; i++) out[i] = nd.at(i);
  return out;
}

/** The per-env shape of a leaf space's values on the wire. */
function leafShape(space: SpaceJSON): number[] {
  if (space.type === 'Box') return space.shape as number[];
  if (space.type === 'MultiDiscrete') return [(space.nvec as number[]).length];
  const n = space.n as number | number[];
  return typeof n === 'number' ? [n] : n;
}

function subSpaces(space: SpaceJSON): [string | number, SpaceJSON][] {
  return space.type === 'Tuple'
    ? (space.spaces as SpaceJSON[]).map((s, i) => [i, s])
    : (space.spaces as [string, SpaceJSON][]);
}

function item(v: unknown, key: string | number, i: number, what: string): unknown {
  if (typeof key === 'number') {
    if (!Array.isArray(v)) throw new ProtocolError(`${what} ${i}: expected an array for a Tuple space, got ${show(v)}.`);
    return v[key];
  }
  if (!isObject(v)) throw new ProtocolError(`${what} ${i}: expected an object for a Dict space, got ${show(v)}.`);
  return v[key];
}

type RowCtor = Float32ArrayConstructor | Int32ArrayConstructor | Int8ArrayConstructor;

function packRows(values: readonly unknown[], shape: number[], Ctor: RowCtor, dtype: Dtype, what: string): NDArray {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Ctor(values.length * size);
  values.forEach((v, i) => {
    if (!ArrayBuffer.isView(v) || (v as TypedArray).length !== size)
      throw new ProtocolError(`${what} ${i}: expected a typed array of ${size} elements, got ${show(v)}.`);
    data.set(v as unknown as ArrayLike<number>, i * size);
  });
  return new NDArray(dtype, [values.length, ...shape], data);
}

function leaf(wire: unknown, shape: number[], n: number, what: string): NDArray {
  if (!(wire instanceof NDArray)) throw new ProtocolError(`${what}: expected an array reference, got ${show(wire)}.`);
  const want = [n, ...shape];
  if (wire.shape.length !== want.length || wire.shape.some((d, i) => d !== want[i]))
    throw new ProtocolError(`${what}: expected shape [${want.join(', ')}], got [${wire.shape.join(', ')}].`);
  return wire;
}

function rows<C extends RowCtor>(nd: NDArray, n: number, Ctor: C): InstanceType<C>[] {
  const size = n === 0 ? 0 : nd.data.length / n;
  const out: InstanceType<C>[] = [];
  for (let i = 0; i < n; i++) {
    const row = new Ctor(size) as InstanceType<C>;
    if (nd.data instanceof Ctor) row.set(nd.data.subarray(i * size, (i + 1) * size) as ArrayLike<number>);
    else for (let j = 0; j < size; j++) row[j] = nd.at(i * size + j);
    out.push(row);
  }
  return out;
}

function show(v: unknown): string {
  if (v instanceof NDArray) return `${v.dtype} array of shape [${v.shape.join(', ')}]`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as TypedArray).length})`;
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 77) + '...' : s;
  } catch {
    return String(v);
  }
}

/**
 * A received info in its local form: per-env lists (NDArrays inside them become plain typed arrays) and nested
 * objects of per-env lists, as vector.ts's `VectorInfo`.
 */
export function plainInfo(info: unknown, what = 'info'): VectorInfo {
  const plain = (v: unknown): unknown =>
    v instanceof NDArray ? v.data : Array.isArray(v) ? v.map(plain) : isObject(v) ? mapValues(v, plain) : v;
  if (!isObject(info)) throw new ProtocolError(`${what}: expected an object of per-env lists, got ${show(info)}.`);
  const out: VectorInfo = {};
  for (const [k, v] of Object.entries(info)) {
    if (Array.isArray(v)) out[k] = v.map(plain);
    else if (isObject(v)) out[k] = plainInfo(v, `${what}.${k}`);
    else throw new ProtocolError(`${what}.${k}: expected a per-env list or an object of them, got ${show(v)}.`);
  }
  return out;
}

function mapValues(o: Record<string, unknown>, f: (v: unknown) => unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

/** A boolean per env from a `bool` (or any integer) array of shape [n]. */
export function flags(wire: unknown, n: number, what: string): boolean[] {
  const nd = leaf(wire, [], n, what);
  return Array.from({ length: n }, (_, i) => nd.at(i) !== 0);
}

/** A float64 per env from a numeric array of shape [n]. */
export function numbers(wire: unknown, n: number, what: string): Float64Array {
  const nd = leaf(wire, [], n, what);
  return nd.data instanceof Float64Array ? nd.data : Float64Array.from({ length: n }, (_, i) => nd.at(i));
}
