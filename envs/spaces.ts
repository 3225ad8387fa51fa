/**
 * Spaces, as Gymnasium's: Discrete, Box, MultiDiscrete, MultiBinary, Tuple, Dict.
 * (Contract only; the concrete spaces land with the Environments issue.)
 *
 * Value types: Discrete -> number; Box -> Float32Array (row-major, `shape` on the space);
 * MultiDiscrete -> Int32Array; MultiBinary -> Int8Array; Tuple -> unknown[]; Dict -> Record<string, unknown>.
 */
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
  abstract unflatten(flat: Float32Array, offset?: number): T;
  abstract toJSON(): SpaceJSON;
  abstract toString(): string;
}
