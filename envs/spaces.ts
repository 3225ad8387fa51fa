/**
 * Spaces, as Gymnasium 1.x's: Discrete, Box, MultiDiscrete, MultiBinary, Tuple, Dict.
 *
 * Value types: Discrete -> number; Box -> Float32Array (row-major, `shape` on the space);
 * MultiDiscrete -> Int32Array; MultiBinary -> Int8Array; Tuple -> unknown[]; Dict -> Record<string, unknown>.
 *
 * `flatten`/`unflatten` follow `gymnasium.spaces.utils`: Discrete is one-hot, MultiDiscrete concatenated one-hots,
 * Box raveled, MultiBinary as 0/1, Tuple and Dict the concatenation of their parts (Dict in key order).
 *
 * Batches (N values of a space, what a vector env returns) follow Gymnasium's `batch_space`: one typed array per
 * leaf, env index first: Discrete -> Int32Array [N]; Box -> Float32Array [N * size]; MultiDiscrete -> Int32Array
 * [N * nvec.length]; MultiBinary -> Int8Array [N * size]; Tuple -> an array of its parts' batches; Dict -> an
 * object of its parts' batches. It is also the remote protocol's wire layout, so nothing is reshaped in between.
 */

/** N values of a space, laid out as the module comment says. */
export type Batch = Int32Array | Float32Array | Int8Array | Batch[] | { [key: string]: Batch };

/** The batch type of a space's value type (non-distributive, so `unknown` maps to `Batch`). */
export type BatchOf<T> = [T] extends [number]
  ? Int32Array
  : [T] extends [Float32Array]
    ? Float32Array
    : [T] extends [Int32Array]
      ? Int32Array
      : [T] extends [Int8Array]
        ? Int8Array
        : [T] extends [readonly unknown[]]
          ? Batch[]
          : [T] extends [Record<string, unknown>]
            ? { [key: string]: Batch }
            : Batch;

/** A space's JSON form, e.g. `{type: 'Discrete', n: 3, start: 0}`; `spaceFromJSON` reverses `toJSON`. */
export type SpaceJSON = { type: string; [key: string]: unknown };

export abstract class Space<T = unknown> {
  /** A random element, drawn from `rng` (floats in [0, 1)). */
  abstract sample(rng: () => number): T;
  /** Whether x is an element of the space. */
  abstract contains(x: unknown): x is T;
  /** Length of the flat Float32Array form. */
  abstract get flatDim(): number;
  /** Writes x into `out` at `offset` (default: a new array); one-hot for Discrete, as Gymnasium's flatten. */
  abstract flatten(x: T, out?: Float32Array, offset?: number): Float32Array;
  /** Reads an element back from its flat form at `offset`. */
  abstract unflatten(flat: Float32Array, offset?: number): T;
  abstract toJSON(): SpaceJSON;
  /** Gymnasium's repr, e.g. `Box(0.0, 1.0, (3,), float32)`. */
  abstract toString(): string;

  /** A batch of n zero values (Gymnasium's `create_empty_array`). */
  abstract createBatch(n: number): BatchOf<T>;
  /** Writes x as value i of a batch. */
  abstract setBatchItem(batch: BatchOf<T>, i: number, x: T): void;
  /** Value i of a batch, as a fresh value. */
  abstract batchItem(batch: BatchOf<T>, i: number): T;
  /** Whether `batch` holds n values of the space, laid out as `createBatch(n)`'s. */
  abstract batchContains(batch: unknown, n: number): batch is BatchOf<T>;
  /**
   * Writes the flat forms of a batch's n values as rows: value i at `out[i * stride + offset ...]` (default: a new
   * array of rows of `flatDim`). The same numbers as `flatten` of each value, without unpacking the batch.
   */
  abstract flattenBatch(batch: BatchOf<T>, n: number, out?: Float32Array, stride?: number, offset?: number): Float32Array;

  /** Structural equality (same type, bounds and sub-spaces). */
  equals(other: Space): boolean {
    return other instanceof Space && JSON.stringify(this.toJSON()) === JSON.stringify(other.toJSON());
  }
}

/** The integers `start, ..., start + n - 1`. */
export class Discrete extends Space<number> {
  constructor(
    readonly n: number,
    readonly start = 0,
  ) {
    super();
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Discrete: n must be a positive integer, got ${n}.`);
    if (!Number.isInteger(start)) throw new Error(`Discrete: start must be an integer, got ${start}.`);
  }
  sample(rng: () => number): number {
    return this.start + Math.floor(rng() * this.n);
  }
  contains(x: unknown): x is number {
    return typeof x === 'number' && Number.isInteger(x) && x >= this.start && x < this.start + this.n;
  }
  get flatDim(): number {
    return this.n;
  }
  flatten(x: number, out = new Float32Array(this.n), offset = 0): Float32Array {
    out.fill(0, offset, offset + this.n);
    out[offset + x - this.start] = 1;
    return out;
  }
  unflatten(flat: Float32Array, offset = 0): number {
    return this.start + firstNonzero(flat, offset, this.n, this);
  }
  toJSON(): SpaceJSON {
    return { type: 'Discrete', n: this.n, start: this.start };
  }
  createBatch(n: number): Int32Array {
    return new Int32Array(n);
  }
  setBatchItem(batch: Int32Array, i: number, x: number): void {
    batch[i] = x;
  }
  batchItem(batch: Int32Array, i: number): number {
    return batch[i];
  }
  batchContains(batch: unknown, n: number): batch is Int32Array {
    return batch instanceof Int32Array && batch.length === n && batch.every((x) => x >= this.start && x < this.start + this.n);
  }
  flattenBatch(batch: Int32Array, n: number, out = new Float32Array(n * this.n), stride = this.n, offset = 0): Float32Array {
    for (let i = 0; i < n; i++) this.flatten(batch[i], out, i * stride + offset);
    return out;
  }
  toString(): string {
    return this.start === 0 ? `Discrete(${this.n})` : `Discrete(${this.n}, start=${this.start})`;
  }
}

/**
 * A float32 box with per-element bounds (infinite bounds allowed). `low`/`high` are scalars or row-major arrays;
 * the shape defaults to the arrays' length, or `[1]` for scalar bounds, as Gymnasium's.
 */
export class Box extends Space<Float32Array> {
  readonly low: Float32Array;
  readonly high: Float32Array;
  readonly shape: readonly number[];
  readonly size: number;

  constructor(low: number | ArrayLike<number>, high: number | ArrayLike<number>, shape?: readonly number[]) {
    super();
    const inferred =
      shape ?? (typeof low !== 'number' ? [low.length] : typeof high !== 'number' ? [high.length] : [1]);
    if (!inferred.every((d) => Number.isInteger(d) && d >= 0))
      throw new Error(`Box: shape must be non-negative integers, got [${inferred.join(', ')}].`);
    this.shape = [...inferred];
    this.size = inferred.reduce((a, b) => a * b, 1);
    this.low = bounds('low', low, this.size);
    this.high = bounds('high', high, this.size);
    for (let i = 0; i < this.size; i++) {
      if (Number.isNaN(this.low[i]) || Number.isNaN(this.high[i]))
        throw new Error(`Box: bounds must not be NaN (element ${i}).`);
      if (this.low[i] > this.high[i])
        throw new Error(`Box: low[${i}] = ${this.low[i]} is greater than high[${i}] = ${this.high[i]}.`);
      if (this.low[i] === Infinity || this.high[i] === -Infinity)
        throw new Error(`Box: element ${i} has an empty range [${this.low[i]}, ${this.high[i]}].`);
    }
  }

  /** Uniform where bounded, exponential where half-bounded, normal where unbounded (Gymnasium's `Box.sample`). */
  sample(rng: () => number): Float32Array {
    const out = new Float32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const lo = this.low[i];
      const hi = this.high[i];
      const below = lo > -Infinity;
      const above = hi < Infinity;
      if (below && above) out[i] = lo + (hi - lo) * rng();
      else if (below) out[i] = lo + exponential(rng);
      else if (above) out[i] = hi - exponential(rng);
      else out[i] = normal(rng);
    }
    return out;
  }
  contains(x: unknown): x is Float32Array {
    if (!(x instanceof Float32Array) || x.length !== this.size) return false;
    for (let i = 0; i < x.length; i++) if (!(x[i] >= this.low[i] && x[i] <= this.high[i])) return false;
    return true;
  }
  get flatDim(): number {
    return this.size;
  }
  flatten(x: Float32Array, out = new Float32Array(this.size), offset = 0): Float32Array {
    out.set(x, offset);
    return out;
  }
  unflatten(flat: Float32Array, offset = 0): Float32Array {
    return flat.slice(offset, offset + this.size);
  }
  createBatch(n: number): Float32Array {
    return new Float32Array(n * this.size);
  }
  setBatchItem(batch: Float32Array, i: number, x: Float32Array): void {
    batch.set(x, i * this.size);
  }
  batchItem(batch: Float32Array, i: number): Float32Array {
    return batch.slice(i * this.size, (i + 1) * this.size);
  }
  batchContains(batch: unknown, n: number): batch is Float32Array {
    if (!(batch instanceof Float32Array) || batch.length !== n * this.size) return false;
    for (let j = 0; j < batch.length; j++) {
      const k = j % this.size;
      if (!(batch[j] >= this.low[k] && batch[j] <= this.high[k])) return false;
    }
    return true;
  }
  flattenBatch(batch: Float32Array, n: number, out = new Float32Array(n * this.size), stride = this.size, offset = 0): Float32Array {
    return copyRows(batch, n, this.size, out, stride, offset);
  }
  /** Whether every element is bounded below and above. */
  isBounded(): boolean {
    return this.low.every((v) => v > -Infinity) && this.high.every((v) => v < Infinity);
  }
  toJSON(): SpaceJSON {
    return { type: 'Box', shape: [...this.shape], low: boundsToJSON(this.low), high: boundsToJSON(this.high) };
  }
  toString(): string {
    return `Box(${shortRepr(this.low)}, ${shortRepr(this.high)}, ${pyTuple(this.shape)}, float32)`;
  }
}

/** A vector of discrete values, element i in `start[i], ..., start[i] + nvec[i] - 1`. */
export class MultiDiscrete extends Space<Int32Array> {
  readonly nvec: Int32Array;
  readonly start: Int32Array;

  constructor(nvec: ArrayLike<number>, start?: ArrayLike<number>) {
    super();
    if (nvec.length === 0) throw new Error('MultiDiscrete: nvec must not be empty.');
    if (!Array.from(nvec).every((n) => Number.isInteger(n) && n > 0))
      throw new Error(`MultiDiscrete: nvec must be positive integers, got [${Array.from(nvec).join(', ')}].`);
    if (start && (start.length !== nvec.length || !Array.from(start).every(Number.isInteger)))
      throw new Error(`MultiDiscrete: start must be ${nvec.length} integers, got [${Array.from(start).join(', ')}].`);
    this.nvec = Int32Array.from(nvec);
    this.start = start ? Int32Array.from(start) : new Int32Array(nvec.length);
  }
  get shape(): readonly number[] {
    return [this.nvec.length];
  }
  sample(rng: () => number): Int32Array {
    return this.nvec.map((n, i) => this.start[i] + Math.floor(rng() * n));
  }
  contains(x: unknown): x is Int32Array {
    if (!(x instanceof Int32Array) || x.length !== this.nvec.length) return false;
    return x.every((v, i) => v >= this.start[i] && v < this.start[i] + this.nvec[i]);
  }
  get flatDim(): number {
    return this.nvec.reduce((a, b) => a + b, 0);
  }
  flatten(x: Int32Array, out = new Float32Array(this.flatDim), offset = 0): Float32Array {
    out.fill(0, offset, offset + this.flatDim);
    for (let i = 0, o = offset; i < this.nvec.length; o += this.nvec[i], i++) out[o + x[i] - this.start[i]] = 1;
    return out;
  }
  unflatten(flat: Float32Array, offset = 0): Int32Array {
    const x = new Int32Array(this.nvec.length);
    for (let i = 0, o = offset; i < this.nvec.length; o += this.nvec[i], i++)
      x[i] = this.start[i] + firstNonzero(flat, o, this.nvec[i], this);
    return x;
  }
  toJSON(): SpaceJSON {
    return { type: 'MultiDiscrete', nvec: Array.from(this.nvec), start: Array.from(this.start) };
  }
  createBatch(n: number): Int32Array {
    return new Int32Array(n * this.nvec.length);
  }
  setBatchItem(batch: Int32Array, i: number, x: Int32Array): void {
    batch.set(x, i * this.nvec.length);
  }
  batchItem(batch: Int32Array, i: number): Int32Array {
    return batch.slice(i * this.nvec.length, (i + 1) * this.nvec.length);
  }
  batchContains(batch: unknown, n: number): batch is Int32Array {
    const k = this.nvec.length;
    if (!(batch instanceof Int32Array) || batch.length !== n * k) return false;
    return batch.every((v, j) => v >= this.start[j % k] && v < this.start[j % k] + this.nvec[j % k]);
  }
  flattenBatch(batch: Int32Array, n: number, out = new Float32Array(n * this.flatDim), stride = this.flatDim, offset = 0): Float32Array {
    const k = this.nvec.length;
    for (let i = 0; i < n; i++) this.flatten(batch.subarray(i * k, (i + 1) * k), out, i * stride + offset);
    return out;
  }
  toString(): string {
    const nvec = `[${this.nvec.join(' ')}]`;
    return this.start.some((s) => s !== 0)
      ? `MultiDiscrete(${nvec}, start=[${this.start.join(' ')}])`
      : `MultiDiscrete(${nvec})`;
  }
}

/** Binary vectors (or arrays, row-major) of 0/1. */
export class MultiBinary extends Space<Int8Array> {
  readonly shape: readonly number[];
  readonly size: number;

  constructor(readonly n: number | readonly number[]) {
    super();
    const shape = typeof n === 'number' ? [n] : [...n];
    if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0))
      throw new Error(`MultiBinary: n must be a positive integer or shape, got ${JSON.stringify(n)}.`);
    this.shape = shape;
    this.size = shape.reduce((a, b) => a * b, 1);
  }
  sample(rng: () => number): Int8Array {
    const out = new Int8Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = rng() < 0.5 ? 0 : 1;
    return out;
  }
  contains(x: unknown): x is Int8Array {
    return x instanceof Int8Array && x.length === this.size && x.every((v) => v === 0 || v === 1);
  }
  get flatDim(): number {
    return this.size;
  }
  flatten(x: Int8Array, out = new Float32Array(this.size), offset = 0): Float32Array {
    out.set(x, offset);
    return out;
  }
  unflatten(flat: Float32Array, offset = 0): Int8Array {
    const x = new Int8Array(this.size);
    for (let i = 0; i < this.size; i++) x[i] = flat[offset + i] !== 0 ? 1 : 0;
    return x;
  }
  toJSON(): SpaceJSON {
    return { type: 'MultiBinary', n: typeof this.n === 'number' ? this.n : [...this.n] };
  }
  createBatch(n: number): Int8Array {
    return new Int8Array(n * this.size);
  }
  setBatchItem(batch: Int8Array, i: number, x: Int8Array): void {
    batch.set(x, i * this.size);
  }
  batchItem(batch: Int8Array, i: number): Int8Array {
    return batch.slice(i * this.size, (i + 1) * this.size);
  }
  batchContains(batch: unknown, n: number): batch is Int8Array {
    return batch instanceof Int8Array && batch.length === n * this.size && batch.every((v) => v === 0 || v === 1);
  }
  flattenBatch(batch: Int8Array, n: number, out = new Float32Array(n * this.size), stride = this.size, offset = 0): Float32Array {
    return copyRows(batch, n, this.size, out, stride, offset);
  }
  toString(): string {
    return `MultiBinary(${typeof this.n === 'number' ? this.n : pyTuple(this.n)})`;
  }
}

/** A fixed-length sequence of elements of the given spaces. */
export class Tuple extends Space<unknown[]> {
  readonly spaces: readonly Space[];

  constructor(spaces: readonly Space[]) {
    super();
    spaces.forEach((s, i) => {
      if (!(s instanceof Space)) throw new Error(`Tuple: element ${i} is not a Space (got ${String(s)}).`);
    });
    this.spaces = [...spaces];
  }
  sample(rng: () => number): unknown[] {
    return this.spaces.map((s) => s.sample(rng));
  }
  contains(x: unknown): x is unknown[] {
    return Array.isArray(x) && x.length === this.spaces.length && this.spaces.every((s, i) => s.contains(x[i]));
  }
  get flatDim(): number {
    return this.spaces.reduce((a, s) => a + s.flatDim, 0);
  }
  flatten(x: unknown[], out = new Float32Array(this.flatDim), offset = 0): Float32Array {
    let o = offset;
    this.spaces.forEach((s, i) => {
      s.flatten(x[i], out, o);
      o += s.flatDim;
    });
    return out;
  }
  unflatten(flat: Float32Array, offset = 0): unknown[] {
    let o = offset;
    return this.spaces.map((s) => {
      const v = s.unflatten(flat, o);
      o += s.flatDim;
      return v;
    });
  }
  toJSON(): SpaceJSON {
    return { type: 'Tuple', spaces: this.spaces.map((s) => s.toJSON()) };
  }
  createBatch(n: number): Batch[] {
    return this.spaces.map((s) => s.createBatch(n));
  }
  setBatchItem(batch: Batch[], i: number, x: unknown[]): void {
    this.spaces.forEach((s, k) => s.setBatchItem(batch[k], i, x[k]));
  }
  batchItem(batch: Batch[], i: number): unknown[] {
    return this.spaces.map((s, k) => s.batchItem(batch[k], i));
  }
  batchContains(batch: unknown, n: number): batch is Batch[] {
    return Array.isArray(batch) && batch.length === this.spaces.length && this.spaces.every((s, k) => s.batchContains(batch[k], n));
  }
  flattenBatch(batch: Batch[], n: number, out = new Float32Array(n * this.flatDim), stride = this.flatDim, offset = 0): Float32Array {
    let o = offset;
    this.spaces.forEach((s, k) => {
      s.flattenBatch(batch[k], n, out, stride, o);
      o += s.flatDim;
    });
    return out;
  }
  toString(): string {
    return `Tuple(${this.spaces.join(', ')})`;
  }
}

/**
 * Named sub-spaces. From a plain object the keys are sorted, as Gymnasium sorts a plain `dict`; from an array of
 * `[key, space]` pairs the given order is kept (Gymnasium's sequence-of-pairs form).
 */
export class Dict extends Space<Record<string, unknown>> {
  readonly spaces: ReadonlyMap<string, Space>;

  constructor(spaces: Readonly<Record<string, Space>> | ReadonlyArray<readonly [string, Space]>) {
    super();
    const entries: [string, Space][] = Array.isArray(spaces)
      ? spaces.map(([k, s]) => [k, s] as [string, Space])
      : Object.entries(spaces).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const map = new Map<string, Space>();
    for (const [k, s] of entries) {
      if (typeof k !== 'string') throw new Error(`Dict: keys must be strings, got ${String(k)}.`);
      if (!(s instanceof Space)) throw new Error(`Dict: value for key '${k}' is not a Space (got ${String(s)}).`);
      if (map.has(k)) throw new Error(`Dict: duplicate key '${k}'.`);
      map.set(k, s);
    }
    this.spaces = map;
  }
  keys(): string[] {
    return [...this.spaces.keys()];
  }
  sample(rng: () => number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, s] of this.spaces) out[k] = s.sample(rng);
    return out;
  }
  contains(x: unknown): x is Record<string, unknown> {
    if (!isPlainObject(x)) return false;
    const keys = Object.keys(x);
    if (keys.length !== this.spaces.size) return false;
    for (const [k, s] of this.spaces) if (!(k in x) || !s.contains(x[k])) return false;
    return true;
  }
  get flatDim(): number {
    let d = 0;
    for (const s of this.spaces.values()) d += s.flatDim;
    return d;
  }
  flatten(x: Record<string, unknown>, out = new Float32Array(this.flatDim), offset = 0): Float32Array {
    let o = offset;
    for (const [k, s] of this.spaces) {
      s.flatten(x[k], out, o);
      o += s.flatDim;
    }
    return out;
  }
  unflatten(flat: Float32Array, offset = 0): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let o = offset;
    for (const [k, s] of this.spaces) {
      out[k] = s.unflatten(flat, o);
      o += s.flatDim;
    }
    return out;
  }
  createBatch(n: number): { [key: string]: Batch } {
    const out: { [key: string]: Batch } = {};
    for (const [k, s] of this.spaces) out[k] = s.createBatch(n);
    return out;
  }
  setBatchItem(batch: { [key: string]: Batch }, i: number, x: Record<string, unknown>): void {
    for (const [k, s] of this.spaces) s.setBatchItem(batch[k], i, x[k]);
  }
  batchItem(batch: { [key: string]: Batch }, i: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, s] of this.spaces) out[k] = s.batchItem(batch[k], i);
    return out;
  }
  batchContains(batch: unknown, n: number): batch is { [key: string]: Batch } {
    if (!isPlainObject(batch) || Object.keys(batch).length !== this.spaces.size) return false;
    for (const [k, s] of this.spaces) if (!(k in batch) || !s.batchContains(batch[k], n)) return false;
    return true;
  }
  flattenBatch(
    batch: { [key: string]: Batch },
    n: number,
    out = new Float32Array(n * this.flatDim),
    stride = this.flatDim,
    offset = 0,
  ): Float32Array {
    let o = offset;
    for (const [k, s] of this.spaces) {
      s.flattenBatch(batch[k], n, out, stride, o);
      o += s.flatDim;
    }
    return out;
  }
  toJSON(): SpaceJSON {
    // Pairs, not an object: JS objects reorder integer-like keys, which would change the flatten order.
    return { type: 'Dict', spaces: [...this.spaces].map(([k, s]) => [k, s.toJSON()]) };
  }
  toString(): string {
    return `Dict(${[...this.spaces].map(([k, s]) => `'${k}': ${s}`).join(', ')})`;
  }
}

/** Rebuilds a space from its `toJSON()` form (used to describe envs across threads and processes). */
export function spaceFromJSON(json: unknown): Space {
  if (!isPlainObject(json) || typeof json.type !== 'string')
    throw new Error(`spaceFromJSON: expected an object with a 'type' field, got ${JSON.stringify(json)}.`);
  const j = json as Record<string, unknown>;
  switch (j.type) {
    case 'Discrete':
      return new Discrete(j.n as number, (j.start as number | undefined) ?? 0);
    case 'Box':
      return new Box(boundsFromJSON(j.low), boundsFromJSON(j.high), j.shape as number[]);
    case 'MultiDiscrete':
      return new MultiDiscrete(j.nvec as number[], j.start as number[] | undefined);
    case 'MultiBinary':
      return new MultiBinary(j.n as number | number[]);
    case 'Tuple':
      return new Tuple((j.spaces as unknown[]).map(spaceFromJSON));
    case 'Dict':
      return new Dict((j.spaces as [string, unknown][]).map(([k, s]) => [k, spaceFromJSON(s)] as [string, Space]));
    default:
      throw new Error(
        `spaceFromJSON: unknown space type '${j.type}'. Known: Discrete, Box, MultiDiscrete, MultiBinary, Tuple, Dict.`,
      );
  }
}

/**
 * The Box that `flatten` maps a space into, as Gymnasium's `flatten_space`: Box bounds raveled, one-hot parts in
 * [0, 1], Tuple/Dict the concatenation of their parts' bounds.
 */
export function flattenSpace(space: Space): Box {
  const low = new Float32Array(space.flatDim);
  const high = new Float32Array(space.flatDim);
  const fill = (s: Space, o: number): void => {
    if (s instanceof Box) {
      low.set(s.low, o);
      high.set(s.high, o);
    } else if (s instanceof Discrete || s instanceof MultiDiscrete || s instanceof MultiBinary) {
      high.fill(1, o, o + s.flatDim);
    } else if (s instanceof Tuple || s instanceof Dict) {
      for (const sub of s instanceof Tuple ? s.spaces : s.spaces.values()) {
        fill(sub, o);
        o += sub.flatDim;
      }
    } else throw new Error(`flattenSpace: unsupported space ${s}.`);
  };
  fill(space, 0);
  return new Box(low, high, [space.flatDim]);
}

/** Packs one value per env into a batch of the space (Gymnasium's `concatenate`). */
export function batchOf<T>(space: Space<T>, values: readonly T[]): BatchOf<T> {
  const batch = space.createBatch(values.length);
  values.forEach((x, i) => space.setBatchItem(batch, i, x));
  return batch;
}

/**
 * The per-env values of a batch (Gymnasium's `iterate`): the one way back from batches, for tests, evaluation
 * and viewers that look at one env at a time.
 */
export function unbatch<T>(space: Space<T>, batch: BatchOf<T>): T[] {
  return Array.from({ length: batchLength(space, batch) }, (_, i) => space.batchItem(batch, i));
}

/** How many values a batch of the space holds. */
export function batchLength(space: Space, batch: Batch): number {
  if (space instanceof Tuple) return space.spaces.length ? batchLength(space.spaces[0], (batch as Batch[])[0]) : 0;
  if (space instanceof Dict) {
    const [first] = space.spaces;
    return first ? batchLength(first[1], (batch as { [key: string]: Batch })[first[0]]) : 0;
  }
  const width = space instanceof MultiDiscrete ? space.nvec.length : space instanceof Discrete ? 1 : space.flatDim;
  return width === 0 ? 0 : (batch as Int32Array | Float32Array | Int8Array).length / width;
}

/** Copies the n values of `src` into `dst` from value `at` on (same space), to join the batches of workers or servers. */
export function copyBatch(src: Batch, n: number, dst: Batch, at: number): void {
  if (ArrayBuffer.isView(src)) {
    const width = n === 0 ? 0 : src.length / n;
    (dst as typeof src).set(src, at * width);
  } else if (Array.isArray(src)) src.forEach((part, k) => copyBatch(part, n, (dst as Batch[])[k], at));
  else for (const [k, part] of Object.entries(src)) copyBatch(part, n, (dst as { [key: string]: Batch })[k], at);
}

/** True for `{...}` objects (not arrays, typed arrays, class instances). */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Copies n rows of `width` numbers into `out`, row i at `i * stride + offset`. */
function copyRows(src: Float32Array | Int8Array, n: number, width: number, out: Float32Array, stride: number, offset: number): Float32Array {
  if (stride === width && offset === 0) out.set(src.subarray(0, n * width));
  else for (let i = 0; i < n; i++) out.set(src.subarray(i * width, (i + 1) * width), i * stride + offset);
  return out;
}

function bounds(name: string, v: number | ArrayLike<number>, size: number): Float32Array {
  if (typeof v === 'number') return new Float32Array(size).fill(v);
  if (v.length !== size)
    throw new Error(`Box: ${name} has ${v.length} elements but the shape holds ${size}; give one per element.`);
  return Float32Array.from(v);
}

type BoundJSON = number | string | (number | string)[];

function boundsToJSON(a: Float32Array): BoundJSON {
  const enc = (v: number): number | string => (v === Infinity ? 'inf' : v === -Infinity ? '-inf' : v);
  return a.length > 0 && a.every((v) => v === a[0]) ? enc(a[0]) : Array.from(a, enc);
}

function boundsFromJSON(j: unknown): number | number[] {
  const dec = (v: unknown): number => (v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v));
  return Array.isArray(j) ? j.map(dec) : dec(j);
}

function firstNonzero(flat: Float32Array, offset: number, n: number, space: Space): number {
  for (let i = 0; i < n; i++) if (flat[offset + i] !== 0) return i;
  throw new Error(
    `Cannot unflatten to ${space}: [${Array.from(flat.subarray(offset, offset + n)).join(', ')}] is not one-hot.`,
  );
}

function exponential(rng: () => number): number {
  return -Math.log(1 - rng());
}

function normal(rng: () => number): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** numpy's float32 `str`: shortest digits that round-trip, `1.0` for integers, `inf`/`-inf`. */
function pyFloat(v: number): string {
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Number.isInteger(v) && Math.abs(v) < 1e16) return `${v}.0`;
  for (let p = 1; p < 10; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}

function shortRepr(a: Float32Array): string {
  if (a.length > 0 && a.every((v) => v === a[0])) return pyFloat(a[0]);
  return `[${Array.from(a, (v) => pyFloat(v).replace(/\.0$/, '.')).join(' ')}]`;
}

function pyTuple(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}
