/** Helpers shared by the POPGym control envs: observation noise (the Noisy* variants) and parameter checks. */
import type { EnvRng } from '../env.js';

/** A standard normal draw from `rng` (Box-Muller; `1 - u` keeps the log argument in (0, 1]). */
export function gaussian(rng: EnvRng): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * Adds N(0, sigma²) noise to each entry of `obs` in place and clips to [low[i], high[i]], as POPGym's
 * `add_noise_to_obs` does (clipping to the observation space keeps noisy observations inside it).
 */
export function addClippedNoise(
  obs: Float32Array,
  sigma: number,
  low: ArrayLike<number>,
  high: ArrayLike<number>,
  rng: EnvRng,
): Float32Array {
  if (sigma === 0) return obs;
  for (let i = 0; i < obs.length; i++) {
    obs[i] = Math.min(high[i], Math.max(low[i], obs[i] + sigma * gaussian(rng)));
  }
  return obs;
}

/** Checks a difficulty parameter, with a message that names it. */
export function checkPositive(name: string, value: number, integer: boolean, allowZero = false): number {
  const ok = Number.isFinite(value) && (allowZero ? value >= 0 : value > 0) && (!integer || Number.isInteger(value));
  if (!ok)
    throw new Error(
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}, got ${value}.`,
    );
  return value;
}

/** Checks a boolean option, with a message that names it. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new Error(`${name} must be true or false, got ${JSON.stringify(value) ?? String(value)}.`);
  return value;
}
