/**
 * Recurrent PPO (clipped surrogate, GAE, truncated BPTT over stored states) for any agent built on a memory core.
 *
 * Memory bookkeeping: the agent's recurrent state is carried across rollouts (never zeroed between them); the
 * state at every sequence boundary (every `seqLen` steps) is stored during the rollout, and each training
 * sequence replays the core's sequence form from that stored state, with `episodeStart` flags resetting streams
 * inside sequences. Reset steps of next-step autoreset are kept in the buffer but masked out of the loss (see
 * `rollout.ts`).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { RecurrentAgent } from '../../agents/agent.js';
import { EpisodeTracker } from '../../envs/episodes.js';
import { valueFromJson, valueToJson, type Json } from '../../envs/snapshot.js';
import { batchOf, type BatchOf, type Space } from '../../envs/spaces.js';
import type { VectorEnv } from '../../envs/vector.js';
import type { State } from '../../memory/core.js';
import { makeRng, type Rng } from '../../util/random.js';
import { cloneState, disposeState } from '../../memory/state.js';
import { yieldToEventLoop } from '../../util/interrupt.js';
import type { PhaseTimer } from '../../util/phase-timer.js';
import { Adam, globalNormScale, type AdamState } from '../optim.js';
import { fusedKernelsActive } from '../../memory/webgpu/index.js';
import { fusedPpoLoss, fusedPpoLossFits, type FusedLossKnobs } from './fused-loss.js';
import {
  checkSequenceSettings,
  computeGae,
  copyRows,
  createBuffer,
  DeviceRollout,
  disposeMinibatch,
  joinBoundaryStates,
  sequenceMinibatches,
  type RolloutBuffer,
} from './rollout.js';

const posInt = z.number().int().positive();
const unit = z.number().min(0).max(1);

/**
 * PPO's knobs, with CleanRL's recurrent-PPO defaults where they fit the small default agent. Each description is the
 * knob's `hqlt train --help` text: the CLI flags, `--print-config` and `PpoSettings` all come from this schema.
 */
export const PpoSchema = z.object({
  numEnvs: posInt.default(16).describe('parallel envs'),
  rollout: posInt.default(64).describe('steps per env per rollout (T)'),
  seqLen: posInt.default(16).describe('BPTT sequence length L; divides --rollout'),
  epochs: posInt.default(4).describe('PPO epochs per rollout'),
  minibatches: posInt.default(4).describe('minibatches per epoch'),
  lr: z.number().positive().default(2e-3).describe('Adam learning rate'),
  annealLr: z.boolean().default(true).describe('anneal the learning rate linearly to 0 over the run'),
  gamma: unit.default(0.99).describe('discount factor'),
  gaeLambda: unit.default(0.95).describe('GAE lambda'),
  clipCoef: z.number().positive().default(0.2).describe('clip range of the policy ratio (and of values, with value clipping)'),
  clipValueLoss: z.boolean().default(true).describe("clip the value loss around the old values (CleanRL's clip_vloss)"),
  entCoef: z.number().nonnegative().default(0.01).describe('entropy bonus coefficient'),
  vfCoef: z.number().nonnegative().default(0.5).describe('value loss coefficient'),
  maxGradNorm: z.number().positive().default(0.5).describe('clip gradients to this global norm'),
  normAdvantages: z.boolean().default(true).describe('normalise advantages per minibatch'),
  adamEps: z.number().positive().default(1e-5).describe('Adam epsilon'),
  targetKl: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe("stop an update's epochs early once the approximate KL passes this"),
});

/** PPO hyperparameters: the schema's fields plus the run's length in updates (for learning-rate annealing). */
export type PpoSettings = z.output<typeof PpoSchema> & { totalUpdates: number };

/** Per-step loss inputs, all [N] tensors except the settings. */
export interface PpoLossInputs {
  newLogProbs: tf.Tensor1D;
  entropy: tf.Tensor1D;
  newValues: tf.Tensor1D;
  oldLogProbs: tf.Tensor1D;
  oldValues: tf.Tensor1D;
  advantages: tf.Tensor1D;
  returns: tf.Tensor1D;
  /** 1 for steps in the loss, 0 for masked ones (reset steps). */
  valid: tf.Tensor1D;
}

/** The loss statistics `ppoLoss` returns, in the order of `PpoLossResult.stats`. */
export const LOSS_STATS = ['policyLoss', 'valueLoss', 'entropy', 'approxKl', 'clipFraction'] as const;

export interface PpoLossResult {
  /** policyLoss − entCoef·entropy + vfCoef·valueLoss; the only differentiable output. */
  loss: tf.Scalar;
  /**
   * [5] in `LOSS_STATS` order: the policy loss, the value loss, the mean entropy, the approximate KL
   * mean((r − 1) − log r) that CleanRL reports, and the fraction of steps whose ratio left [1 − clip, 1 + clip].
   */
  stats: tf.Tensor1D;
}

/**
 * The PPO loss, averaged over valid steps (as CleanRL's, with a mask). Its gradient with respect to the new
 * log-probabilities, entropies and values is written out: autodiff through the maxima and clips launches about 50
 * small kernels (26 of them casts), a fifth of a minibatch's dispatches on the GPU. On WebGPU with the fused kernels
 * on, the loss and its gradient are one dispatch each (`fused-loss.ts`).
 */
export function ppoLoss(
  x: PpoLossInputs,
  s: Pick<PpoSettings, 'clipCoef' | 'clipValueLoss' | 'vfCoef' | 'entCoef'>,
): PpoLossResult {
  return tf.tidy(() => {
    const all = fusedKernelsActive() && fusedPpoLossFits() ? fusedPpoLoss(x, s) : opsLoss(x, s);
    return { loss: tf.reshape(tf.slice(all, [0], [1]), []) as tf.Scalar, stats: tf.slice(all, [1], [LOSS_STATS.length]) as tf.Tensor1D };
  });
}

/** [loss, ...stats] in tfjs ops, with the gradient written out (one output, so the statistics leave the custom-gradient op). */
function opsLoss(x: PpoLossInputs, s: FusedLossKnobs): tf.Tensor1D {
  const lossOf = tf.customGrad((newLogProbs, entropies, newValues, save) => {
    const [lp, ent, v] = [newLogProbs, entropies, newValues] as tf.Tensor1D[];
    const count = tf.maximum(tf.sum(x.valid), 1);
    const mean = (t: tf.Tensor) => tf.div(tf.sum(tf.mul(t, x.valid)), count) as tf.Scalar;
    const logRatio = tf.sub(lp, x.oldLogProbs);
    const ratio = tf.exp(logRatio);
    const negAdvantages = tf.neg(x.advantages);
    const pg1 = tf.mul(negAdvantages, ratio);
    const pg2 = tf.mul(negAdvantages, tf.clipByValue(ratio, 1 - s.clipCoef, 1 + s.clipCoef));
    // Where the clipped term is the larger one, the policy term is flat in the ratio.
    const unclippedPolicy = tf.greaterEqual(pg1, pg2);
    const policyLoss = mean(tf.maximum(pg1, pg2));
    const error = tf.sub(v, x.returns);
    const unclipped = tf.square(error);
    // d(value term)/dv per step, up to the factor 2: the error, or the clipped error where that one is larger.
    let valueSlope: tf.Tensor = error;
    let vTerm: tf.Tensor = unclipped;
    if (s.clipValueLoss) {
      const delta = tf.sub(v, x.oldValues);
      const clippedError = tf.sub(tf.add(x.oldValues, tf.clipByValue(delta, -s.clipCoef, s.clipCoef)), x.returns);
      const clipped = tf.square(clippedError);
      vTerm = tf.maximum(unclipped, clipped);
      const inside = tf.logicalAnd(tf.greaterEqual(delta, -s.clipCoef), tf.lessEqual(delta, s.clipCoef));
      valueSlope = tf.where(tf.greaterEqual(unclipped, clipped), error, tf.where(inside, clippedError, tf.zerosLike(error)));
    }
    const valueLoss = tf.mul(0.5, mean(vTerm)) as tf.Scalar;
    const entropy = mean(ent);
    const loss = tf.add(tf.sub(policyLoss, tf.mul(s.entCoef, entropy)), tf.mul(s.vfCoef, valueLoss)) as tf.Scalar;
    const approxKl = mean(tf.sub(tf.sub(ratio, 1), logRatio));
    const clipFraction = mean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), s.clipCoef), 'float32'));
    const policySlope = tf.where(unclippedPolicy, pg1, tf.zerosLike(pg1)); // d pg1 / d log-prob = pg1
    (save as tf.GradSaveFunc)([count, policySlope, valueSlope]);
    return {
      value: tf.stack([loss, policyLoss, valueLoss, entropy, approxKl, clipFraction]) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor, [n, pSlope, vSlope]: tf.Tensor[]) => {
        const w = tf.mul(x.valid, tf.div(tf.slice(dy, [0], [1]), n)); // d mean(t) / d t_i, times d(loss)
        return [tf.mul(pSlope, w), tf.mul(w, -s.entCoef), tf.mul(vSlope, tf.mul(w, s.vfCoef))];
      },
    };
  });
  return lossOf(x.newLogProbs, x.entropy, x.newValues) as tf.Tensor1D;
}

/** Metrics of one update (one rollout and its optimisation). */
export interface UpdateMetrics {
  update: number;
  globalStep: number;
  /** Episodes that finished during the rollout. */
  episodes: number;
  /** null when no episode finished in this rollout. */
  returnMean: number | null;
  /** Share of the finished episodes whose last step reported `info.success` true; null when none reported it. */
  successRate: number | null;
  returnMax: number | null;
  lengthMean: number | null;
  lengthMax: number | null;
  learningRate: number;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  clipFraction: number;
  explainedVariance: number;
  gradNorm: number;
  /** Env steps per second over rollout + update (wall clock; the only non-reproducible field). */
  stepsPerSecond: number;
}

/** Loss statistics of an update, averaged over its minibatches. */
export type LossStats = Pick<UpdateMetrics, 'policyLoss' | 'valueLoss' | 'entropy' | 'approxKl' | 'clipFraction' | 'gradNorm'>;

/** Everything needed to continue training exactly (weights are saved separately from the agent). */
export interface TrainerSnapshot {
  update: number;
  globalStep: number;
  rngState: object;
  adam: AdamState;
  /** The carried agent state, key → values and shape. */
  agentState: Record<string, { shape: number[]; data: Float32Array }>;
  episodeStart: number[];
  pendingReset: number[];
  episodeReturn: number[];
  episodeLength: number[];
  /** The seed of the vector env's first reset (a resumed remote env is reset from it and the update count). */
  envSeed: number;
  /** Every env's state (`VectorEnv.getState`), or null for envs that cannot be saved (remote ones). */
  envState: Json;
  /** The current observations (`valueToJson`). */
  obs: Json;
}

/** Runs rollouts on a vector env and PPO updates on an agent. */
export class PpoTrainer<O = unknown, A = unknown> {
  update = 0;
  globalStep = 0;
  private readonly adam: Adam;
  private readonly maxNorm: tf.Scalar;
  private rng: Rng;
  /** The current batch of observations (set by `start` and `restore`). */
  private obs?: BatchOf<O>;
  private state: State = {};
  private episodes: EpisodeTracker;
  private envSeed = 0;
  private started = false;
  /** When set, every update charges its phases to this timer (`bench/gpu.js`'s PPO breakdown). */
  timer?: PhaseTimer;

  constructor(
    readonly agent: RecurrentAgent<O, A>,
    readonly env: VectorEnv<O, A>,
    readonly settings: PpoSettings,
    seed: number | string,
  ) {
    if (env.autoresetMode !== 'next-step') {
      throw new Error(`PPO needs a vector env in 'next-step' autoreset mode (Gymnasium's default); got '${env.autoresetMode}'.`);
    }
    if (env.numEnvs !== settings.numEnvs) {
      throw new Error(`The vector env has ${env.numEnvs} envs but settings.numEnvs is ${settings.numEnvs}.`);
    }
    checkSequenceSettings(settings.numEnvs, settings.rollout, settings.seqLen, settings.minibatches);
    this.rng = makeRng(`${seed}/ppo`);
    this.adam = new Adam(agent.trainableVariables(), { learningRate: settings.lr, epsilon: settings.adamEps });
    this.maxNorm = tf.keep(tf.scalar(settings.maxGradNorm));
    this.episodes = new EpisodeTracker(settings.numEnvs);
  }

  /** Resets the envs with `envSeed` (env i gets envSeed + i) and zeroes the agent's state. */
  async start(envSeed: number): Promise<void> {
    const { obs } = await this.env.reset({ seed: envSeed });
    this.obs = obs;
    this.envSeed = envSeed;
    disposeState(this.state);
    this.state = this.agent.initialState(this.settings.numEnvs);
    this.episodes = new EpisodeTracker(this.settings.numEnvs);
    this.started = true;
  }

  /** Collects one rollout; returns the buffer (with GAE filled in), the boundary states and finished episodes. */
  async collect(): Promise<{ buffer: RolloutBuffer; states: State; returns: number[]; lengths: number[]; successes: boolean[] }> {
    if (!this.started || !this.obs) throw new Error('PpoTrainer: call start(seed) or restore(snapshot) before training.');
    const { numEnvs: N, rollout: T, seqLen: L } = this.settings;
    const d = this.agent.distribution;
    const buf = createBuffer(N, T, this.agent.encoder.dim, d.actionDim);
    const boundary: State[] = [];
    const returns: number[] = [];
    const lengths: number[] = [];
    const successes: boolean[] = [];
    const F = buf.featureDim;
    const Ad = buf.actionDim;
    const timer = this.timer;
    timer?.restart();
    for (let t = 0; t < T; t++) {
      await yieldToEventLoop(); // lets Ctrl-C / SIGTERM handlers run mid-rollout (see interrupt.ts)
      if (t % L === 0) boundary.push(cloneState(this.state));
      const ep = this.episodes;
      timer?.mark('rollout: other');
      const res = await this.agent.act(this.obs, this.state, ep.episodeStart, { rng: this.rng, timer });
      for (let n = 0; n < N; n++) {
        const i = n * T + t;
        copyRows(res.features, n, buf.features, i, 1, F);
        copyRows(res.actionData, n, buf.actions, i, 1, Ad);
        buf.logProbs[i] = res.logProbs[n];
        buf.values[i] = res.values[n];
        buf.episodeStart[i] = ep.episodeStart[n];
        buf.valid[i] = ep.pendingReset[n] ? 0 : 1;
      }
      timer?.mark('rollout: fill buffer');
      const step = await this.env.step(res.actions);
      timer?.mark('rollout: env step');
      disposeState(this.state);
      this.state = res.state;
      for (let n = 0; n < N; n++) {
        if (!buf.valid[n * T + t]) continue; // a reset step: reward 0, no episode end
        const i = n * T + t;
        buf.rewards[i] = step.rewards[n];
        buf.terminated[i] = step.terminated[n] ? 1 : 0;
        buf.truncated[i] = step.truncated[n] ? 1 : 0;
      }
      const success = step.info.success;
      const hasSuccess = step.info._success;
      for (const e of this.episodes.observe(step.rewards, step.terminated, step.truncated)) {
        returns.push(e.r);
        lengths.push(e.l);
        if (Array.isArray(success) && Array.isArray(hasSuccess) && hasSuccess[e.env]) successes.push(success[e.env] === true);
      }
      this.obs = step.obs;
      this.globalStep += N;
    }
    timer?.mark('rollout: other');
    buf.lastValues.set(await this.agent.value(this.obs, this.state, this.episodes.episodeStart));
    const gae = computeGae(buf, this.settings.gamma, this.settings.gaeLambda);
    buf.advantages.set(gae.advantages);
    buf.returns.set(gae.returns);
    timer?.mark('rollout: bootstrap value + GAE');
    return { buffer: buf, states: joinBoundaryStates(boundary), returns, lengths, successes };
  }

  /** K epochs of PPO over shuffled minibatches of sequences; disposes `states`. Returns mean loss statistics. */
  async learn(buf: RolloutBuffer, states: State): Promise<LossStats> {
    const s = this.settings;
    const vars = this.agent.trainableVariables();
    let sums: tf.Tensor | undefined;
    let lastKl: tf.Tensor | undefined;
    let count = 0;
    const timer = this.timer;
    timer?.restart();
    const rollout = new DeviceRollout(buf, s.seqLen, states);
    timer?.mark('update: upload rollout');
    for (let epoch = 0; epoch < s.epochs; epoch++) {
      const groups = sequenceMinibatches(s.numEnvs, s.rollout, s.seqLen, s.minibatches, this.rng);
      rollout.setEpoch(groups, s.normAdvantages);
      for (const ids of groups) {
        await yieldToEventLoop();
        const mb = rollout.minibatch(ids);
        timer?.mark('update: gather minibatch');
        let stats: tf.Tensor | undefined;
        const { value: lossValue, grads } = tf.variableGrads(() => {
          const ev = this.agent.evaluate(mb.sequences, mb.state);
          const out = ppoLoss({ newLogProbs: ev.logProbs, entropy: ev.entropy, newValues: ev.values, ...mb }, s);
          stats = tf.keep(out.stats);
          return out.loss;
        }, vars);
        disposeMinibatch(mb);
        await timer?.settle(lossValue);
        timer?.mark('update: forward + backward');
        const ordered = vars.map((v) => grads[v.name]);
        const clip = globalNormScale(ordered, this.maxNorm);
        this.adam.applyGradients(ordered, clip.scale);
        await timer?.settle(vars[vars.length - 1]);
        timer?.mark('update: clip + Adam');
        const next = tf.tidy(() => {
          const row = tf.concat([stats!, tf.reshape(clip.norm, [1])]);
          return sums ? tf.add(sums, row) : row;
        });
        if (s.targetKl !== null) {
          lastKl?.dispose();
          lastKl = tf.keep(tf.slice(stats!, [LOSS_STATS.indexOf('approxKl')], [1]));
        }
        tf.dispose([lossValue, sums, stats, clip.norm, clip.scale, ...ordered]);
        sums = next;
        count++;
        timer?.mark('update: other');
      }
      // CleanRL's early stop: once the last minibatch's approximate KL passes the target, skip the remaining epochs.
      if (s.targetKl !== null && (await lastKl!.data())[0] > s.targetKl) break;
    }
    lastKl?.dispose();
    rollout.dispose();
    disposeState(states);
    const v = (await sums!.data()) as Float32Array;
    sums!.dispose();
    timer?.mark('update: other');
    const [policyLoss, valueLoss, entropy, approxKl, clipFraction, gradNorm] = Array.from(v, (x) => x / count);
    return { policyLoss, valueLoss, entropy, approxKl, clipFraction, gradNorm };
  }

  /** One update: anneal the learning rate, collect a rollout, learn from it; returns its metrics. */
  async iterate(): Promise<UpdateMetrics> {
    const s = this.settings;
    const t0 = performance.now();
    this.update += 1;
    const frac = s.annealLr ? Math.max(0, 1 - (this.update - 1) / s.totalUpdates) : 1;
    const learningRate = s.lr * frac;
    this.adam.setLearningRate(learningRate);
    const { buffer, states, returns, lengths, successes } = await this.collect();
    const losses = await this.learn(buffer, states);
    const seconds = (performance.now() - t0) / 1000;
    const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : null);
    const max = (a: number[]) => (a.length ? Math.max(...a) : null);
    return {
      update: this.update,
      globalStep: this.globalStep,
      episodes: returns.length,
      returnMean: mean(returns),
      successRate: mean(successes.map(Number)),
      returnMax: max(returns),
      lengthMean: mean(lengths),
      lengthMax: max(lengths),
      learningRate,
      ...losses,
      explainedVariance: explainedVariance(buffer.values, buffer.returns, buffer.valid),
      stepsPerSecond: (s.numEnvs * s.rollout) / seconds,
    };
  }

  /** The trainer's state at an update boundary, for a checkpoint. */
  async snapshot(): Promise<TrainerSnapshot> {
    const agentState: TrainerSnapshot['agentState'] = {};
    for (const [key, t] of Object.entries(this.state)) {
      agentState[key] = { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) };
    }
    return {
      update: this.update,
      globalStep: this.globalStep,
      rngState: this.rng.state(),
      adam: await this.adam.getState(),
      agentState,
      episodeStart: Array.from(this.episodes.episodeStart),
      pendingReset: Array.from(this.episodes.pendingReset),
      episodeReturn: Array.from(this.episodes.episodeReturn),
      episodeLength: Array.from(this.episodes.episodeLength),
      envSeed: this.envSeed,
      envState: this.env.getState ? await this.env.getState() : null,
      obs: valueToJson(this.obs),
    };
  }

  /**
   * Restores a snapshot. Envs that were saved (local ones) continue exactly where they were, at a cost that does
   * not grow with the run. Envs that cannot be saved (remote ones) are reset instead, with the agent's memory and
   * episode bookkeeping: the run continues, not bit for bit. Returns whether the envs were restored.
   */
  async restore(snap: TrainerSnapshot): Promise<{ envRestored: boolean }> {
    const envRestored = snap.envState !== null && this.env.setState !== undefined;
    if (envRestored) {
      await this.env.setState!(snap.envState);
      this.obs = restoredObs(this.env.singleObservationSpace, valueFromJson(snap.obs), this.settings.numEnvs);
      disposeState(this.state);
      this.state = {};
      for (const [key, { shape, data }] of Object.entries(snap.agentState)) this.state[key] = tf.tensor(data, shape);
      this.episodes.episodeStart.set(snap.episodeStart);
      this.episodes.pendingReset.set(snap.pendingReset);
      this.episodes.episodeReturn.set(snap.episodeReturn);
      this.episodes.episodeLength.set(snap.episodeLength);
    } else {
      await this.start(snap.envSeed + snap.update * this.settings.numEnvs);
    }
    this.envSeed = snap.envSeed;
    this.started = true;
    this.update = snap.update;
    this.globalStep = snap.globalStep;
    this.rng = makeRng('restored', snap.rngState);
    this.adam.setState(snap.adam);
    return { envRestored };
  }

  /** Frees the optimizer and carried state (not the agent or env, which the caller owns). */
  dispose(): void {
    disposeState(this.state);
    this.state = {};
    this.adam.dispose();
    this.maxNorm.dispose();
  }
}

/**
 * The observations of a snapshot as a batch of the space: saved as one (this version), or as a list of per-env
 * values (checkpoints from before observations were batched), which is packed.
 */
function restoredObs<O>(space: Space<O>, saved: unknown, n: number): BatchOf<O> {
  if (space.batchContains(saved, n)) return saved;
  if (Array.isArray(saved) && saved.length === n && saved.every((x) => space.contains(x))) return batchOf(space, saved);
  throw new Error(`The checkpoint's observations are not ${n} observations of ${space}; was it saved for another env?`);
}

/** 1 − Var[returns − values] / Var[returns] over valid steps (NaN when the returns have no variance). */
export function explainedVariance(values: Float32Array, returns: Float32Array, valid: Float32Array): number {
  let n = 0;
  let sy = 0;
  let sd = 0;
  for (let i = 0; i < values.length; i++) if (valid[i]) (n++, (sy += returns[i]), (sd += returns[i] - values[i]));
  if (n === 0) return NaN;
  let vy = 0;
  let vd = 0;
  for (let i = 0; i < values.length; i++) {
    if (!valid[i]) continue;
    vy += (returns[i] - sy / n) ** 2;
    vd += (returns[i] - values[i] - sd / n) ** 2;
  }
  return vy === 0 ? NaN : 1 - vd / vy;
}
