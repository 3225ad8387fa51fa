/**
 * Small stand-ins for the PPO tests: a one-bit memory env, a tiny next-step-autoreset vector env, and a tiny
 * Elman core, so these tests depend only on the contracts (core.ts, env.ts, vector.ts, spaces.ts).
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { Env, type ResetResult, type StepResult as EnvStep } from '../envs/env.js';
import { batchOf, Box, Discrete, type Space } from '../envs/spaces.js';
import type { VectorEnv, VectorResetOptions, VectorResetResult, VectorStepResult } from '../envs/vector.js';
import type { CoreConfig, ForwardResult, MemoryCore, NamedWeight, State, StepResult } from '../memory/core.js';
import { makeRng } from '../util/random.js';
import { linearWeight } from '../memory/weights.js';

/**
 * Cue at step 0 (obs 0 or 1), blanks (obs 2) after; on the last of `length` steps the action must name the cue
 * (reward 1, else 0). Random play scores 0.5. With `truncateAt` < length the episode is truncated instead.
 */
export class CueEnv extends Env<number, number> {
  readonly observationSpace = new Discrete(3);
  readonly actionSpace = new Discrete(2);
  private cue = 0;
  private t = 0;
  constructor(
    readonly length = 3,
    readonly truncateAt = Infinity,
  ) {
    super();
  }
  protected resetEnv(): ResetResult<number> {
    this.cue = this.rng() < 0.5 ? 0 : 1;
    this.t = 0;
    return { obs: this.cue, info: {} };
  }
  protected stepEnv(action: number): EnvStep<number> {
    this.t++;
    const terminated = this.t >= this.length;
    const reward = terminated && action === this.cue ? 1 : 0;
    return { obs: 2, reward, terminated, truncated: !terminated && this.t >= this.truncateAt, info: {} };
  }
}

/**
 * The cue task with a continuous action: cue ±1 (obs [cue]) at step 0, obs [0] after; at the last step reward
 * 1 − |a − cue| / 2 for the action a ∈ [−1, 1]. Memoryless play scores at most 0.5 (a = 0), as does random play.
 */
export class CueReachEnv extends Env<Float32Array, Float32Array> {
  readonly observationSpace = new Box(-1, 1, [1]);
  readonly actionSpace = new Box(-1, 1, [1]);
  readonly returnBounds = { optimal: 1, random: 0.5 };
  private cue = 1;
  private t = 0;
  constructor(readonly length = 3) {
    super();
  }
  protected resetEnv(): ResetResult<Float32Array> {
    this.cue = this.rng() < 0.5 ? -1 : 1;
    this.t = 0;
    return { obs: Float32Array.of(this.cue), info: {} };
  }
  protected stepEnv(action: Float32Array): EnvStep<Float32Array> {
    this.t++;
    const terminated = this.t >= this.length;
    const reward = terminated ? 1 - Math.abs(action[0] - this.cue) / 2 : 0;
    return { obs: Float32Array.of(0), reward, terminated, truncated: false, info: {} };
  }
}

/** A synchronous vector env with Gymnasium's next-step autoreset. */
export class TinyVectorEnv<O, A> implements VectorEnv<O, A> {
  readonly autoresetMode = 'next-step' as const;
  readonly metadata = { renderModes: [] };
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  private done: boolean[];
  constructor(readonly envs: Env<O, A>[]) {
    this.singleObservationSpace = envs[0].observationSpace;
    this.singleActionSpace = envs[0].actionSpace;
    this.done = envs.map(() => false);
  }
  get numEnvs(): number {
    return this.envs.length;
  }
  async reset(opts: VectorResetOptions = {}): Promise<VectorResetResult<O>> {
    const seed = opts.seed;
    this.done = this.envs.map(() => false);
    const obs = this.envs.map((e, i) => e.reset({ seed: typeof seed === 'number' ? seed + i : seed?.[i] }).obs);
    return { obs: batchOf(this.singleObservationSpace, obs), info: {} };
  }
  async step(actions: A[]): Promise<VectorStepResult<O>> {
    const n = this.envs.length;
    const obs: O[] = [];
    const out: Omit<VectorStepResult<O>, 'obs'> = {
      rewards: new Float64Array(n),
      terminated: new Array<boolean>(n).fill(false),
      truncated: new Array<boolean>(n).fill(false),
      info: {},
    };
    this.envs.forEach((e, i) => {
      if (this.done[i]) {
        obs.push(e.reset().obs);
        this.done[i] = false;
        return;
      }
      const r = e.step(actions[i]);
      obs.push(r.obs);
      out.rewards[i] = r.reward;
      out.terminated[i] = r.terminated;
      out.truncated[i] = r.truncated;
      this.done[i] = r.terminated || r.truncated;
    });
    return { ...out, obs: batchOf(this.singleObservationSpace, obs) };
  }
  async close(): Promise<void> {}
}

/** h' = tanh(x·Wx + (1 − start)·h·Wh): the smallest core with memory, with step and sequence forms. */
export class ElmanCore implements MemoryCore {
  readonly config: CoreConfig;
  private readonly wx: NamedWeight;
  private readonly wh: NamedWeight;
  constructor(
    readonly dim: number,
    seed: string,
  ) {
    this.config = { type: 'elman-test', dim };
    const rng = makeRng(seed);
    this.wx = linearWeight('wx.weight', dim, dim, rng);
    this.wh = linearWeight('wh.weight', dim, dim, rng);
  }
  initialState(batch: number): State {
    return { h: tf.zeros([batch, this.dim]) };
  }
  step(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D): StepResult {
    return tf.tidy(() => {
      const h = tf.mul(state.h, tf.sub(1, tf.expandDims(episodeStart, 1)));
      const y = tf.tanh(tf.add(tf.matMul(x, this.wx.variable), tf.matMul(h as tf.Tensor2D, this.wh.variable))) as tf.Tensor2D;
      return { y, state: { h: y.clone() } };
    });
  }
  forward(xs: tf.Tensor3D, state: State, episodeStart: tf.Tensor2D): ForwardResult {
    return tf.tidy(() => {
      const [, T] = xs.shape;
      let h = state.h;
      const ys: tf.Tensor[] = [];
      for (let t = 0; t < T; t++) {
        const x = tf.squeeze(tf.slice(xs, [0, t, 0], [-1, 1, -1]), [1]) as tf.Tensor2D;
        const s = tf.reshape(tf.slice(episodeStart, [0, t], [-1, 1]), [-1]) as tf.Tensor1D;
        h = this.step(x, { h }, s).y;
        ys.push(h);
      }
      return { ys: tf.stack(ys, 1) as tf.Tensor3D, state: { h } };
    });
  }
  trainableVariables(): tf.Variable[] {
    return [this.wx.variable, this.wh.variable];
  }
  namedWeights(): NamedWeight[] {
    return [this.wx, this.wh];
  }
  dispose(): void {
    tf.dispose(this.trainableVariables());
  }
}

/** N CueEnvs in a TinyVectorEnv. */
export function cueVectorEnv(n: number, length = 3, truncateAt = Infinity): TinyVectorEnv<number, number> {
  return new TinyVectorEnv(Array.from({ length: n }, () => new CueEnv(length, truncateAt)));
}

/** A fresh seeded float generator (for tests that need one outside the toolkit's). */
export function testRng(seed: string): () => number {
  return seedrandom(seed);
}
