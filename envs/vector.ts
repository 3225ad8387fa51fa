/**
 * Vector environments: N copies of an env stepped as a batch, as Gymnasium 1.x's VectorEnv.
 * (Contract only here; SyncVectorEnv and AsyncVectorEnv land with the Environments issue.)
 *
 * Autoreset follows Gymnasium: in `next-step` mode (default) the step after an episode ended resets that env
 * (its action is ignored, reward 0, terminated/truncated false) and returns the first obs of the new episode;
 * in `same-step` mode the env resets in the step it ended and the final obs/info are in `info.final_obs` /
 * `info.final_info` (masked by `info._final_obs`).
 */
import type { EnvMetadata } from './env.js';
import type { Space } from './spaces.js';

export type AutoresetMode = 'next-step' | 'same-step';

/** Batched infos: `info[key][i]` is env i's value and `info['_' + key][i]` says whether env i has it. */
export type VectorInfo = Record<string, unknown[]>;

export interface VectorResetOptions {
  /** One seed (env i gets seed + i) or one per env. */
  seed?: number | number[];
  options?: Record<string, unknown>;
}

export interface VectorResetResult<O> {
  obs: O[];
  info: VectorInfo;
}

export interface VectorStepResult<O> {
  obs: O[];
  rewards: Float64Array;
  terminated: boolean[];
  truncated: boolean[];
  info: VectorInfo;
}

/** What agents and trainers act through: local (sync, async) and remote vector envs alike. */
export interface VectorEnv<O = unknown, A = unknown> {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  readonly autoresetMode: AutoresetMode;
  readonly metadata: EnvMetadata;
  reset(opts?: VectorResetOptions): Promise<VectorResetResult<O>>;
  step(actions: A[]): Promise<VectorStepResult<O>>;
  close(): Promise<void>;
}
