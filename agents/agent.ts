/**
 * A recurrent actor-critic over any memory core:
 *   features = flatten(obs) [+ previous action, is-first-step flag] → ReLU(linear) → core → actor / critic heads.
 *
 * The previous action (POPGym's PreviousAction convention: zeroed at an episode's first step, where the flag is
 * 1) lives in the agent's recurrent state next to the core's, so acting needs nothing from the env beyond
 * observations and episode-start flags, and works on any vector env, local or remote.
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchOf, Space } from '../envs/spaces.js';
import type { MemoryCore, NamedWeight, State } from '../memory/core.js';
import { affine } from '../memory/ops.js';
import { deriveSeed, makeRng } from '../util/random.js';
import type { PhaseTimer } from '../util/phase-timer.js';
import { disposeState, prefixState, subState } from '../memory/state.js';
import { constantVariable, linearWeight, prefixWeights, uniformVariable } from '../memory/weights.js';
import { makeDistribution, type ActionDistribution } from './distributions.js';
import { makeObservationEncoder, type ObservationEncoder } from './encoders.js';

export interface AgentOptions {
  /** Seeds the heads' and projection's initial weights. */
  seed: number | string;
  /** Feed the previous action and an is-first-step flag to the core (default true). */
  previousAction?: boolean;
}

/** The phases `act` charges to `ActOptions.timer`, in order. */
export const ACT_PHASES = {
  encode: 'rollout: encode observations',
  dispatch: 'rollout: act (upload + dispatch)',
  readback: 'rollout: readback (waits for the GPU)',
  sample: 'rollout: sample actions',
} as const;

export interface ActOptions {
  /** Take the most likely action instead of sampling. */
  deterministic?: boolean;
  /** Generator for sampling (default: the agent's own, seeded from its seed). */
  rng?: () => number;
  /** Also read the memory's internals of this step (`ActResult.introspection`); off costs nothing. */
  introspect?: boolean;
  /** Charges the step's phases (encode, dispatch, readback, sampling) to this timer (benchmarks). */
  timer?: PhaseTimer;
}

/** A tensor read back to the host. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export interface ActResult<A = unknown> {
  /** One env action per stream. */
  actions: A[];
  /** The same actions as flat rows [B × actionDim] (unclipped for Box), as the loss replays them. */
  actionData: Float32Array;
  logProbs: Float32Array;
  values: Float32Array;
  /** The encoded observations [B × featureDim], as the loss replays them. */
  features: Float32Array;
  /** The next recurrent state; the caller owns it (and still owns the state it passed in). */
  state: State;
  /** The distribution's host parameters per stream [B × paramDim] (action probabilities for discrete actions). */
  policy: Float32Array;
  /** With `introspect`: the core's internals by name (see `memory/core.ts` `Introspection`), batch first. */
  introspection?: Record<string, HostTensor>;
}

/** B sequences of L steps on the host, row-major [B, L, ...]. */
export interface SequenceBatch {
  batch: number;
  length: number;
  /** [B × L × featureDim] encoded observations. */
  features: Float32Array;
  /** [B × L × actionDim] action rows. */
  actions: Float32Array;
  /** [B × L] 0/1 episode-start flags. */
  episodeStart: Float32Array;
}

/** The same B sequences of L steps already on the device (PPO gathers its minibatches there). */
export interface SequenceTensors {
  /** [B, L, featureDim] encoded observations. */
  features: tf.Tensor3D;
  /** [B·L, actionDim] action rows. */
  actions: tf.Tensor2D;
  /** [B, L] 0/1 episode-start flags. */
  episodeStart: tf.Tensor2D;
}

export interface EvaluateResult {
  /** [B·L] log π(a_t | history). */
  logProbs: tf.Tensor1D;
  /** [B·L] */
  entropy: tf.Tensor1D;
  /** [B·L] V(history). */
  values: tf.Tensor1D;
}

const PREV = 'prev_action';
const CORE = 'core.';

/** See the module comment. */
export class RecurrentAgent<O = unknown, A = unknown> {
  readonly encoder: ObservationEncoder<O>;
  readonly distribution: ActionDistribution;
  readonly previousAction: boolean;
  private readonly weights: NamedWeight[];
  private readonly w: Record<'inW' | 'inB' | 'actorW' | 'actorB' | 'criticW' | 'criticB', tf.Variable>;
  private readonly rng: () => number;

  constructor(
    readonly core: MemoryCore,
    readonly observationSpace: Space<O>,
    readonly actionSpace: Space<A>,
    options: AgentOptions,
  ) {
    this.encoder = makeObservationEncoder(observationSpace);
    this.distribution = makeDistribution(actionSpace);
    this.previousAction = options.previousAction ?? true;
    const rng = makeRng(deriveSeed(options.seed, 'agent'));
    this.rng = makeRng(deriveSeed(options.seed, 'agent-sampling'));
    const dim = core.dim;
    const inDim = this.inputDim;
    const pDim = this.distribution.paramDim;
    // A scope frees the initial-value tensors that tf.variable leaves beside each variable (variables survive it).
    tf.engine().startScope();
    const enc = linearWeight('encoder.weight', inDim, dim, rng);
    // Small actor weights start the policy near uniform (as CleanRL's orthogonal init with gain 0.01).
    const actorW = uniformVariable([dim, pDim], 0.01 / Math.sqrt(dim), rng);
    const critic = linearWeight('critic.weight', dim, 1, rng);
    const w = {
      inW: enc.variable,
      inB: constantVariable([dim], 0),
      actorW,
      actorB: constantVariable([pDim], 0),
      criticW: critic.variable,
      criticB: constantVariable([1], 0),
    };
    tf.engine().endScope();
    this.w = w;
    this.weights = [
      enc,
      { name: 'encoder.bias', variable: this.w.inB, transposed: false },
      ...prefixWeights(core.namedWeights(), 'core.'),
      { name: 'actor.weight', variable: actorW, transposed: true },
      { name: 'actor.bias', variable: this.w.actorB, transposed: false },
      ...this.distribution.variables.map((v) => ({ ...v, transposed: false })),
      critic,
      { name: 'critic.bias', variable: this.w.criticB, transposed: false },
    ];
  }

  /** Width of the projection's input: observation features [+ previous-action features + first-step flag]. */
  get inputDim(): number {
    return this.encoder.dim + (this.previousAction ? this.distribution.featureDim + 1 : 0);
  }

  /** Zero state for `batch` streams. */
  initialState(batch: number): State {
    const state = prefixState(this.core.initialState(batch), CORE);
    if (this.previousAction) state[PREV] = tf.zeros([batch, this.distribution.featureDim]);
    return state;
  }

  /** Every trainable variable (projection, core, heads, log-std). */
  trainableVariables(): tf.Variable[] {
    return this.weights.map((w) => w.variable);
  }

  /** The weights with stable names (`encoder.*`, `core.*`, `actor.*`, `critic.*`). */
  namedWeights(): NamedWeight[] {
    return this.weights;
  }

  /** The heads over core outputs y [N, dim]: distribution params [N, P] and values [N]. */
  private heads(y: tf.Tensor2D): { params: tf.Tensor2D; values: tf.Tensor1D } {
    const params = affine(y, this.w.actorW as tf.Tensor2D, this.w.actorB as tf.Tensor1D);
    const values = tf.reshape(affine(y, this.w.criticW as tf.Tensor2D, this.w.criticB as tf.Tensor1D), [-1]) as tf.Tensor1D;
    return { params, values };
  }

  /** Observation features + previous-action features (zeroed at starts) + start flag, projected and rectified. */
  private project(features: tf.Tensor, prev: tf.Tensor | undefined, starts: tf.Tensor): tf.Tensor {
    let x = features;
    if (prev) {
      const flag = tf.expandDims(starts, -1);
      x = tf.concat([features, tf.mul(prev, tf.sub(1, flag)), flag], -1);
    }
    return affine(x, this.w.inW as tf.Tensor2D, this.w.inB as tf.Tensor1D, true);
  }

  private stepForward(features: Float32Array, state: State, episodeStart: ArrayLike<number>, introspect = false) {
    const batch = episodeStart.length;
    return tf.tidy(() => {
      const starts = tf.tensor1d(Float32Array.from(episodeStart));
      const x = tf.tensor2d(features, [batch, this.encoder.dim]);
      const h = this.project(x, state[PREV], starts) as tf.Tensor2D;
      const out = this.core.step(h, subState(state, CORE), starts, introspect ? { introspect } : undefined);
      const { params, values } = this.heads(out.y);
      const host = tf.concat([this.distribution.hostParams(params), tf.expandDims(values, 1)], 1) as tf.Tensor2D;
      return { host, coreState: out.state, introspection: out.introspection ?? {} };
    });
  }

  /**
   * One step for B streams (B = `episodeStart.length`): samples (or picks, when deterministic) an action per
   * stream. `obs` is the batch of B observations, as a vector env returns it (`batchOf` packs single ones);
   * `episodeStart[i]` is 1 when observation i is the first of an episode (that stream's state is reset first).
   */
  async act(obs: BatchOf<O>, state: State, episodeStart: ArrayLike<number>, opts: ActOptions = {}): Promise<ActResult<A>> {
    const batch = episodeStart.length;
    const timer = opts.timer;
    const features = this.encoder.encode(obs, batch);
    timer?.mark(ACT_PHASES.encode);
    const { host, coreState, introspection } = this.stepForward(features, state, episodeStart, opts.introspect);
    timer?.mark(ACT_PHASES.dispatch);
    const data = (await host.data()) as Float32Array;
    host.dispose();
    timer?.mark(ACT_PHASES.readback);
    const internals = opts.introspect ? await readHost(introspection) : undefined;
    const width = host.shape[1];
    const pWidth = width - 1;
    const params = new Float32Array(batch * pWidth);
    const values = new Float32Array(batch);
    // Plain loops: a subarray view per stream showed in PPO profiles at 4,096 envs.
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < pWidth; j++) params[b * pWidth + j] = data[b * width + j]!;
      values[b] = data[b * width + pWidth]!;
    }
    const d = this.distribution;
    const pick = opts.deterministic ? d.mode(params, batch) : d.sample(params, batch, opts.rng ?? this.rng);
    const next = prefixState(coreState, CORE);
    if (this.previousAction) {
      next[PREV] = tf.tidy(() => d.actionFeatures(tf.tensor2d(pick.actions, [batch, d.actionDim])));
    }
    const actions: A[] = [];
    for (let b = 0; b < batch; b++) {
      actions.push(d.toEnv(pick.actions, b) as A);
    }
    timer?.mark(ACT_PHASES.sample);
    const result: ActResult<A> = { actions, actionData: pick.actions, logProbs: pick.logProbs, values, features, state: next, policy: params };
    if (internals) result.introspection = internals;
    return result;
  }

  /** V(history) for B streams at one step, without advancing the state (e.g. to bootstrap a rollout). */
  async value(obs: BatchOf<O>, state: State, episodeStart: ArrayLike<number>): Promise<Float32Array> {
    const { host, coreState } = this.stepForward(this.encoder.encode(obs, episodeStart.length), state, episodeStart);
    disposeState(coreState);
    const data = (await host.data()) as Float32Array;
    const width = host.shape[1];
    host.dispose();
    return Float32Array.from({ length: episodeStart.length }, (_, b) => data[b * width + width - 1]);
  }

  /**
   * The sequence form for the loss: log-probabilities, entropies and values of B sequences of L steps (on the host
   * or the device), starting from `state` (one row per sequence). Differentiable with respect to every trainable
   * variable.
   */
  evaluate(batch: SequenceBatch | SequenceTensors, state: State): EvaluateResult {
    return tf.tidy(() => {
      const { logProbs, entropy, values } = this.evaluateTensors('batch' in batch ? this.toDevice(batch) : batch, state);
      return { logProbs, entropy, values };
    });
  }

  /**
   * Saliency of step `t` of sequence 0: for each step j ≤ t, the L2 norm of ∂ log π(a_t | history) / ∂ features_j
   * through the sequence form ([L], zero after t).
   */
  async saliency(batch: SequenceBatch, state: State, t: number): Promise<Float32Array> {
    const { length: L } = batch;
    if (batch.batch !== 1 || !(t >= 0 && t < L)) throw new Error(`saliency: needs one sequence and 0 ≤ t < ${L}, got t = ${t}.`);
    const F = this.encoder.dim;
    const d = this.distribution;
    const norms = tf.tidy(() => {
      // Later steps cannot influence step t: differentiate the prefix only.
      const prefix = this.toDevice({
        batch: 1,
        length: t + 1,
        features: batch.features.subarray(0, (t + 1) * F),
        actions: batch.actions.subarray(0, (t + 1) * d.actionDim),
        episodeStart: batch.episodeStart.subarray(0, t + 1),
      });
      const logProb = (f: tf.Tensor) => tf.slice(this.evaluateTensors({ ...prefix, features: f as tf.Tensor3D }, state).logProbs, [t], [1]);
      const g = tf.grad(logProb)(prefix.features);
      return tf.sqrt(tf.sum(tf.square(g), [0, 2]));
    });
    const out = new Float32Array(L);
    out.set((await norms.data()) as Float32Array);
    norms.dispose();
    return out;
  }

  private toDevice(batch: SequenceBatch): SequenceTensors {
    const { batch: B, length: L } = batch;
    return {
      features: tf.tensor3d(batch.features, [B, L, this.encoder.dim]),
      actions: tf.tensor2d(batch.actions, [B * L, this.distribution.actionDim]),
      episodeStart: tf.tensor2d(batch.episodeStart, [B, L]),
    };
  }

  /** `evaluate` on device sequences (differentiable with respect to the features too). */
  private evaluateTensors(seq: SequenceTensors, state: State): EvaluateResult {
    const [B, L] = seq.episodeStart.shape;
    const d = this.distribution;
    return tf.tidy(() => {
      let prev: tf.Tensor | undefined;
      if (this.previousAction) {
        const feats = tf.reshape(d.actionFeatures(seq.actions), [B, L, d.featureDim]);
        const first = tf.expandDims(state[PREV], 1);
        prev = L > 1 ? tf.concat([first, tf.slice(feats, [0, 0, 0], [B, L - 1, d.featureDim])], 1) : first;
      }
      const h = this.project(seq.features, prev, seq.episodeStart) as tf.Tensor3D;
      const { ys } = this.core.forward(h, subState(state, CORE), seq.episodeStart);
      const { params, values } = this.heads(tf.reshape(ys, [B * L, this.core.dim]) as tf.Tensor2D);
      return { logProbs: d.logProb(params, seq.actions), entropy: d.entropy(params), values };
    });
  }

  /** Frees the agent's variables, the core's and the distribution's. */
  dispose(): void {
    tf.dispose([this.w.inW, this.w.inB, this.w.actorW, this.w.actorB, this.w.criticW, this.w.criticB]);
    this.core.dispose();
    this.distribution.dispose();
  }
}

/** Reads named tensors to the host (in parallel) and disposes them. */
async function readHost(tensors: Record<string, tf.Tensor>): Promise<Record<string, HostTensor>> {
  const entries = await Promise.all(
    Object.entries(tensors).map(async ([key, t]) => {
      const data = (await t.data()) as Float32Array;
      const shape = [...t.shape];
      t.dispose();
      return [key, { shape, data }] as const;
    }),
  );
  return Object.fromEntries(entries);
}
