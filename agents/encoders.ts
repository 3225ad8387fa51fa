/**
 * Observation encoders: a batch of observations (spaces.ts' layout, as vector envs return it) → rows of flat
 * float features, via the space's `flattenBatch` (one-hot for Discrete and MultiDiscrete, raw for Box and
 * MultiBinary, concatenation for Tuple and Dict: the numbers of `flatten`), done on the host so one upload carries
 * a whole batch. The agent's linear projection then maps the features to the core width.
 */
import { describeValue } from '../envs/env.js';
import type { Batch, BatchOf, Space } from '../envs/spaces.js';

export interface ObservationEncoder<O = unknown> {
  /** Features per observation. */
  readonly dim: number;
  /** Writes a batch of n observations as n rows of `dim` floats into `out` (default: a new array). */
  encode(obs: BatchOf<O>, n: number, out?: Float32Array): Float32Array;
}

/** The encoder for an observation space; it rejects batches that are not n values of the space. */
export function makeObservationEncoder<O>(space: Space<O>): ObservationEncoder<O> {
  const dim = space.flatDim;
  if (!(dim > 0)) throw new Error(`Observation space ${space} flattens to ${dim} features; an agent needs at least one.`);
  return {
    dim,
    encode(obs, n, out = new Float32Array(n * dim)) {
      if (!space.batchContains(obs, n)) throw new Error(whyNotInSpace(space, obs, n));
      return space.flattenBatch(obs, n, out);
    },
  };
}

/** Says the batch is not laid out as the space's, or names its first observation outside the space. */
function whyNotInSpace<O>(space: Space<O>, obs: BatchOf<O>, n: number): string {
  if (sameLayout(obs, space.createBatch(n)))
    for (let i = 0; i < n; i++) {
      const item = space.batchItem(obs, i);
      if (!space.contains(item)) return `Observation ${i} is not in the observation space ${space}: ${describeValue(item)}.`;
    }
  return `Observations are not a batch of ${n} values of the observation space ${space} (see batchOf in envs/spaces.ts): got ${describeValue(obs)}.`;
}

/** Same nesting, keys, typed-array types and lengths. */
function sameLayout(a: unknown, b: Batch): boolean {
  if (ArrayBuffer.isView(b)) return ArrayBuffer.isView(a) && a.constructor === b.constructor && (a as typeof b).length === b.length;
  if (Array.isArray(b)) return Array.isArray(a) && a.length === b.length && b.every((x, k) => sameLayout(a[k], x));
  if (typeof a !== 'object' || a === null || Array.isArray(a) || ArrayBuffer.isView(a)) return false;
  const keys = Object.keys(b);
  return Object.keys(a).length === keys.length && keys.every((k) => sameLayout((a as Record<string, unknown>)[k], b[k]));
}
