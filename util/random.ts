/** Seeded randomness: every random number in the toolkit flows from a user-given seed through seedrandom. */
import seedrandom from 'seedrandom';

/** A seeded generator of uniform floats in [0, 1) whose state can be saved and restored. */
export interface Rng {
  (): number;
  /** The generator's internal state, for checkpoints. */
  state(): object;
}

/** Creates a generator from a seed (any number or string); `state` restores a saved generator instead. */
export function makeRng(seed: number | string, state?: object): Rng {
  return seedrandom(String(seed), { state: (state as seedrandom.State.Arc4 | undefined) ?? true }) as unknown as Rng;
}

/** A standard normal sample (Box-Muller). */
export function randn(rng: () => number): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** A seed for a sub-generator, so components get independent streams from one user seed. */
export function deriveSeed(seed: number | string, label: string): string {
  return `${seed}/${label}`;
}
