/**
 * The environment API, faithful to Gymnasium 1.x: `reset({seed, options}) -> {obs, info}` and
 * `step(action) -> {obs, reward, terminated, truncated, info}`.
 *
 * Subclasses implement `resetEnv` and `stepEnv`; the public `reset` seeds the env's generator first. Input checks
 * (step before reset or after the episode ended, actions outside the action space) live in one place, the
 * `OrderEnforcing` wrapper that `make` puts around every env, as Gymnasium's `make` adds OrderEnforcing and
 * PassiveEnvChecker; vector envs check a batch once instead.
 */
import seedrandom from 'seedrandom';
import { restoreFields, snapshotFields, type FieldsState, type Json } from './snapshot.js';
import { Space } from './spaces.js';

export type Info = Record<string, unknown>;

export interface ResetOptions {
  /** Reseeds the env's generator, as Gymnasium's `reset(seed=...)`. */
  seed?: number;
  /** Env-specific options. */
  options?: Record<string, unknown>;
}

export interface ResetResult<O> {
  obs: O;
  info: Info;
}

export interface StepResult<O> {
  obs: O;
  reward: number;
  terminated: boolean;
  truncated: boolean;
  info: Info;
}

export interface EnvMetadata {
  renderModes: string[];
  renderFps?: number;
  [key: string]: unknown;
}

/** The env's random generator: floats in [0, 1). */
export type EnvRng = seedrandom.PRNG;

export abstract class Env<O = unknown, A = unknown> {
  abstract readonly observationSpace: Space<O>;
  abstract readonly actionSpace: Space<A>;
  readonly metadata: EnvMetadata = { renderModes: [] };
  /** The render mode chosen at construction (`ansi`, `rgb_array`, ...), if any. */
  renderMode?: string;
  /** Set by `make` to the registered id. */
  specId?: string;

  private generator?: seedrandom.StatefulPRNG<seedrandom.State.Arc4>;

  /** The env's seeded generator; seeded from entropy on first use if `reset` had no seed, as Gymnasium does. */
  protected get rng(): EnvRng {
    if (!this.generator) this.generator = seedrandom(undefined, { entropy: true, state: true });
    return this.generator;
  }

  /**
   * The env's full state as JSON (its fields, RNG included; wrappers include the env they wrap). `setState` on an
   * env made with the same id and kwargs continues exactly where this one is, so checkpoints need no replay.
   */
  getState(): Json {
    const rng = this.generator ? (this.generator.state() as unknown as Json) : null;
    return { fields: snapshotFields(this, (v) => v instanceof Space), rng };
  }

  /** Restores a state from `getState` (of an env with the same id and kwargs). */
  setState(state: Json): void {
    const s = state as { fields?: FieldsState; rng?: Json } | null;
    if (!s || typeof s !== 'object' || typeof s.fields !== 'object' || s.fields === null)
      throw new Error(`${this.name}: setState expects an object from getState(), got ${describeValue(state)}.`);
    restoreFields(this, s.fields, this.name);
    this.generator = s.rng ? seedrandom('', { state: s.rng as unknown as seedrandom.State.Arc4 }) : undefined;
  }

  /** Starts an episode; `seed` reseeds the env's generator first. */
  reset(opts: ResetOptions = {}): ResetResult<O> {
    if (opts.seed !== undefined) {
      if (!Number.isInteger(opts.seed)) throw new Error(`${this.name}: seed must be an integer, got ${opts.seed}.`);
      this.generator = seedrandom(String(opts.seed), { state: true });
    }
    return this.resetEnv(opts.options ?? {}, opts.seed);
  }

  /** One step. Unchecked here: `OrderEnforcing` (applied by `make`) or the vector env checks the input. */
  step(action: A): StepResult<O> {
    return this.stepEnv(action);
  }

  /** Renders per `renderMode`: a string for `ansi`, an RGB byte image for `rgb_array`. */
  render(): string | RgbImage | undefined {
    return undefined;
  }

  close(): void {}

  /** The env's name in messages. */
  get name(): string {
    return this.specId ?? this.constructor.name;
  }

  /** The innermost env under any wrappers (this env itself when unwrapped). */
  get unwrapped(): Env {
    return this;
  }

  /**
   * Starts an episode. `seed` is the seed given to `reset` (already applied to `rng`); plain envs ignore it, and
   * wrappers forward it to the env they wrap.
   */
  protected abstract resetEnv(options: Record<string, unknown>, seed?: number): ResetResult<O>;
  protected abstract stepEnv(action: A): StepResult<O>;
}

/**
 * Reference episode returns, on the env's own scale (POPGym's: about [-1, 1]). Suites report raw returns and
 * normalise as (return - random) / (optimal - random) only where `reachable`: an oracle's optimum would make a
 * perfect memory agent look weak.
 */
export interface ReturnBounds {
  /**
   * The best expected return: a memory agent's when `reachable`, otherwise an upper bound that only privileged
   * knowledge reaches (hidden state no memory can reveal).
   */
  optimal: number;
  /** The expected return of the uniform random policy (every action drawn from the action space). */
  random: number;
  /** Whether an agent that sees only observations and its own actions can reach `optimal` in expectation. */
  reachable: boolean;
  /** Where each number comes from: 'analytic: …', 'measured: …', 'oracle: …' or 'upper bound: …'. */
  source: { optimal: string; random: string };
}

/**
 * The reference returns an env states (as a `returnBounds` property), seen through any wrappers. Bounds without
 * `reachable: true` count as unreachable, and without a source as 'unstated'.
 */
export function returnBoundsOf(env: Env): ReturnBounds | undefined {
  const b = (env.unwrapped as { returnBounds?: Partial<ReturnBounds> }).returnBounds;
  if (!b || typeof b.optimal !== 'number' || typeof b.random !== 'number') return undefined;
  return {
    optimal: b.optimal,
    random: b.random,
    reachable: b.reachable === true,
    source: { optimal: b.source?.optimal ?? 'unstated', random: b.source?.random ?? 'unstated' },
  };
}

/** An RGB image, row-major [height, width, 3]. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A short printable form of a value (typed arrays as lists), for error messages. */
export function describeValue(x: unknown): string {
  if (ArrayBuffer.isView(x)) return `[${Array.from(x as unknown as ArrayLike<number>).join(', ')}]`;
  if (typeof x === 'number') return String(x); // JSON would print NaN and Infinity as null
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}
