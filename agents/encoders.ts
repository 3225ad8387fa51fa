/**
 * Observation encoders: any observation space → flat float features, via the space's own `flatten` (one-hot
 * for Discrete and MultiDiscrete, raw for Box and MultiBinary, concatenation for Tuple and Dict), done on the host
 * so one upload carries a whole batch. The agent's linear projection then maps the features to the core width.
 */
import type { Space } from '../envs/spaces.js';

export interface ObservationEncoder {
  /** Features per observation. */
  readonly dim: number;
  /** Writes B observations as rows of `dim` floats into `out` (default: a new array). */
  encode(obs: readonly unknown[], out?: Float32Array): Float32Array;
}

/** The encoder for an observation space. */
export function makeObservationEncoder(space: Space): ObservationEncoder {
  const dim = space.flatDim;
  if (!(dim > 0)) throw new Error(`Observation space ${space} flattens to ${dim} features; an agent needs at least one.`);
  return {
    dim,
    encode(obs, out = new Float32Array(obs.length * dim)) {
      obs.forEach((o, i) => {
        if (!space.contains(o)) {
          throw new Error(`Observation ${i} is not in the observation space ${space}: ${String(o)}.`);
        }
        space.flatten(o, out, i * dim);
      });
      return out;
    },
  };
}
