/**
 * Action distributions, one per action space: Categorical (Discrete), MultiCategorical (MultiDiscrete), diagonal
 * Gaussian with a state-independent log-std (Box) and Bernoulli (MultiBinary).
 *
 * Actions travel as flat float rows of width `actionDim` (an index per categorical component, the raw sample
 * for a Gaussian, 0/1 bits for Bernoulli). Differentiable `logProb`/`entropy` run on tensors for the loss;
 * `sample`/`mode` run on the host from `hostParams` read with one `await data()`, which is cheaper per env step
 * than a second device round trip (they also return the sample's log-probability, checked against `logProb`).
 */
import * as tf from '@tensorflow/tfjs';
import { Box, Discrete, MultiBinary, MultiDiscrete, type Space } from '../envs/spaces.js';
import { randn } from '../util/random.js';
import { fusedKernelsActive } from '../memory/webgpu/index.js';
import { oneHotFloat } from '../memory/ops.js';
import { fusedCategorical, fusedCategoricalFits } from './fused-categorical.js';

/** Host-side samples for a batch: rows of `actionDim` floats and their log-probabilities. */
export interface HostSample {
  actions: Float32Array;
  logProbs: Float32Array;
}

export interface ActionDistribution {
  /** Width of the actor head's output. */
  readonly paramDim: number;
  /** Width of an action row. */
  readonly actionDim: number;
  /** Width of `actionFeatures` (the previous-action input). */
  readonly featureDim: number;
  /** Trainable variables owned by the distribution (the Gaussian's log-std), named as weights. */
  readonly variables: { name: string; variable: tf.Variable }[];
  /** log π(a) per row: params [B, paramDim], actions [B, actionDim] → [B]. */
  logProb(params: tf.Tensor2D, actions: tf.Tensor2D): tf.Tensor1D;
  /** Entropy per row → [B]. */
  entropy(params: tf.Tensor2D): tf.Tensor1D;
  /** What the host needs to sample (probabilities, mean and std), [B, *]. */
  hostParams(params: tf.Tensor2D): tf.Tensor2D;
  /** Samples B actions on the host from `hostParams` data. */
  sample(host: Float32Array, batch: number, rng: () => number): HostSample;
  /** The most likely action per row (argmax, mean, p ≥ 0.5). */
  mode(host: Float32Array, batch: number): HostSample;
  /** Action rows [B, actionDim] → input features [B, featureDim] (one-hot for categorical, clipped for Box). */
  actionFeatures(actions: tf.Tensor2D): tf.Tensor2D;
  /** Row `b` of flat action rows as the env's value (a Box sample is clipped to the bounds, as CleanRL's ClipAction). */
  toEnv(actions: Float32Array, b: number): unknown;
  dispose(): void;
}

const LOG_2PI = Math.log(2 * Math.PI);

/** One dispatch each way for categorical log-probabilities and entropies (WebGPU, fused kernels on). */
const useFusedKernel = () => fusedKernelsActive() && fusedCategoricalFits();

/** Categorical over each of `nvec` components (one component: a Discrete space). */
class MultiCategorical implements ActionDistribution {
  readonly paramDim: number;
  readonly actionDim: number;
  readonly featureDim: number;
  readonly variables = [];

  constructor(
    private readonly nvec: number[],
    /** The env's value of the action row at `offset` (component indices from there). */
    private readonly toEnvValue: (actions: Float32Array, offset: number) => unknown,
  ) {
    this.paramDim = nvec.reduce((a, b) => a + b, 0);
    this.actionDim = nvec.length;
    this.featureDim = this.paramDim;
  }

  private parts(params: tf.Tensor2D): tf.Tensor2D[] {
    return this.nvec.length === 1 ? [params] : (tf.split(params, this.nvec, 1) as tf.Tensor2D[]);
  }
  private oneHots(actions: tf.Tensor2D): tf.Tensor2D[] {
    const idx = tf.cast(actions, 'int32');
    const cols = this.nvec.length === 1 ? [idx] : tf.split(idx, this.nvec.length, 1);
    // Float once here rather than cast in every product with them.
    return cols.map((c, i) => oneHotFloat(tf.reshape(c, [-1]) as tf.Tensor1D, this.nvec[i]));
  }
  logProb(params: tf.Tensor2D, actions: tf.Tensor2D): tf.Tensor1D {
    if (useFusedKernel()) return fusedCategorical(params, this.nvec, 'logProb', actions);
    return tf.tidy(() => {
      const hots = this.oneHots(actions);
      const terms = this.parts(params).map((l, i) => tf.sum(tf.mul(tf.logSoftmax(l), hots[i]), 1));
      return (terms.length === 1 ? terms[0] : tf.addN(terms)) as tf.Tensor1D;
    });
  }
  entropy(params: tf.Tensor2D): tf.Tensor1D {
    if (useFusedKernel()) return fusedCategorical(params, this.nvec, 'entropy');
    return tf.tidy(() => {
      const terms = this.parts(params).map((l) => {
        const logp = tf.logSoftmax(l);
        return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
      });
      return (terms.length === 1 ? terms[0] : tf.addN(terms)) as tf.Tensor1D;
    });
  }
  hostParams(params: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.concat(this.parts(params).map((l) => tf.softmax(l)), 1) as tf.Tensor2D);
  }
  private pick(host: Float32Array, batch: number, choose: (p: Float32Array, base: number, n: number) => number) {
    const actions = new Float32Array(batch * this.actionDim);
    const logProbs = new Float32Array(batch);
    const { nvec, paramDim, actionDim } = this;
    for (let b = 0; b < batch; b++) {
      let base = b * paramDim;
      let lp = 0;
      for (let i = 0; i < nvec.length; i++) {
        const n = nvec[i]!;
        const k = choose(host, base, n);
        actions[b * actionDim + i] = k;
        lp += Math.log(Math.max(host[base + k]!, 1e-30));
        base += n;
      }
      logProbs[b] = lp;
    }
    return { actions, logProbs };
  }
  sample(host: Float32Array, batch: number, rng: () => number): HostSample {
    return this.pick(host, batch, (p, base, n) => {
      let u = rng();
      for (let k = 0; k < n - 1; k++) {
        u -= p[base + k];
        if (u < 0) return k;
      }
      return n - 1;
    });
  }
  mode(host: Float32Array, batch: number): HostSample {
    return this.pick(host, batch, (p, base, n) => {
      let best = 0;
      for (let k = 1; k < n; k++) if (p[base + k] > p[base + best]) best = k;
      return best;
    });
  }
  actionFeatures(actions: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const hots = this.oneHots(actions);
      return (hots.length === 1 ? hots[0] : tf.concat(hots, 1)) as tf.Tensor2D;
    });
  }
  toEnv(actions: Float32Array, b: number): unknown {
    // No row views or index arrays: PPO converts thousands of actions per step, and those showed in its profiles.
    return this.toEnvValue(actions, b * this.actionDim);
  }
  dispose(): void {}
}

/** Diagonal Gaussian with a learned, state-independent log-std (initialised to 0). */
class DiagGaussian implements ActionDistribution {
  readonly paramDim: number;
  readonly actionDim: number;
  readonly featureDim: number;
  readonly variables: { name: string; variable: tf.Variable }[];
  private readonly logStd: tf.Variable;
  private readonly low: tf.Tensor1D;
  private readonly high: tf.Tensor1D;

  constructor(private readonly box: Box) {
    this.paramDim = this.actionDim = this.featureDim = box.size;
    this.logStd = tf.tidy(() => tf.variable(tf.zeros([box.size]), true));
    this.variables = [{ name: 'actor.log_std', variable: this.logStd }];
    // Infinite bounds would give inf features; clip features to a generous finite range instead.
    const finite = (v: Float32Array, fallback: number) => v.map((x) => (Number.isFinite(x) ? x : fallback));
    this.low = tf.keep(tf.tensor1d(finite(box.low, -1e6)));
    this.high = tf.keep(tf.tensor1d(finite(box.high, 1e6)));
  }

  logProb(params: tf.Tensor2D, actions: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const z = tf.mul(tf.sub(actions, params), tf.exp(tf.neg(this.logStd)));
      const per = tf.add(tf.mul(tf.square(z), -0.5), tf.sub(-0.5 * LOG_2PI, this.logStd));
      return tf.sum(per, 1) as tf.Tensor1D;
    });
  }
  entropy(params: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const h = tf.sum(tf.add(this.logStd, 0.5 + 0.5 * LOG_2PI));
      return tf.mul(tf.ones([params.shape[0]]), h) as tf.Tensor1D;
    });
  }
  hostParams(params: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const std = tf.mul(tf.ones([params.shape[0], 1]), tf.reshape(tf.exp(this.logStd), [1, -1]));
      return tf.concat([params, std], 1) as tf.Tensor2D;
    });
  }
  private draw(host: Float32Array, batch: number, noise: () => number): HostSample {
    const d = this.actionDim;
    const actions = new Float32Array(batch * d);
    const logProbs = new Float32Array(batch);
    for (let b = 0; b < batch; b++) {
      let lp = 0;
      for (let i = 0; i < d; i++) {
        const mean = host[b * 2 * d + i];
        const std = host[b * 2 * d + d + i];
        const z = noise();
        actions[b * d + i] = mean + std * z;
        lp += -0.5 * z * z - Math.log(std) - 0.5 * LOG_2PI;
      }
      logProbs[b] = lp;
    }
    return { actions, logProbs };
  }
  sample(host: Float32Array, batch: number, rng: () => number): HostSample {
    return this.draw(host, batch, () => randn(rng));
  }
  mode(host: Float32Array, batch: number): HostSample {
    return this.draw(host, batch, () => 0);
  }
  actionFeatures(actions: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.minimum(tf.maximum(actions, this.low), this.high));
  }
  toEnv(actions: Float32Array, b: number): unknown {
    const out = new Float32Array(this.actionDim);
    for (let i = 0; i < out.length; i++) out[i] = Math.min(Math.max(actions[b * out.length + i]!, this.box.low[i]), this.box.high[i]);
    return out;
  }
  dispose(): void {
    tf.dispose([this.logStd, this.low, this.high]);
  }
}

/** Independent Bernoulli per bit, parameterised by logits. */
class Bernoulli implements ActionDistribution {
  readonly paramDim: number;
  readonly actionDim: number;
  readonly featureDim: number;
  readonly variables = [];

  constructor(n: number) {
    this.paramDim = this.actionDim = this.featureDim = n;
  }
  logProb(params: tf.Tensor2D, actions: tf.Tensor2D): tf.Tensor1D {
    // a·log σ(l) + (1−a)·log σ(−l) = a·l − softplus(l)
    return tf.tidy(() => tf.sum(tf.sub(tf.mul(actions, params), tf.softplus(params)), 1) as tf.Tensor1D);
  }
  entropy(params: tf.Tensor2D): tf.Tensor1D {
    // H = softplus(l) − σ(l)·l
    return tf.tidy(() => tf.sum(tf.sub(tf.softplus(params), tf.mul(tf.sigmoid(params), params)), 1) as tf.Tensor1D);
  }
  hostParams(params: tf.Tensor2D): tf.Tensor2D {
    return tf.sigmoid(params);
  }
  private pick(host: Float32Array, batch: number, bit: (p: number) => number): HostSample {
    const actions = new Float32Array(batch * this.actionDim);
    const logProbs = new Float32Array(batch);
    for (let b = 0; b < batch; b++) {
      let lp = 0;
      for (let i = 0; i < this.actionDim; i++) {
        const p = host[b * this.actionDim + i];
        const a = bit(p);
        actions[b * this.actionDim + i] = a;
        lp += Math.log(Math.max(a ? p : 1 - p, 1e-30));
      }
      logProbs[b] = lp;
    }
    return { actions, logProbs };
  }
  sample(host: Float32Array, batch: number, rng: () => number): HostSample {
    return this.pick(host, batch, (p) => (rng() < p ? 1 : 0));
  }
  mode(host: Float32Array, batch: number): HostSample {
    return this.pick(host, batch, (p) => (p >= 0.5 ? 1 : 0));
  }
  actionFeatures(actions: tf.Tensor2D): tf.Tensor2D {
    return tf.clone(actions);
  }
  toEnv(actions: Float32Array, b: number): unknown {
    return Int8Array.from(actions.subarray(b * this.actionDim, (b + 1) * this.actionDim));
  }
  dispose(): void {}
}

/** The distribution for an action space; unsupported spaces get an error that names the supported ones. */
export function makeDistribution(space: Space): ActionDistribution {
  if (space instanceof Discrete) return new MultiCategorical([space.n], (a, o) => space.start + a[o]!);
  if (space instanceof MultiDiscrete)
    return new MultiCategorical(Array.from(space.nvec), (a, o) => Int32Array.from(space.nvec, (_, i) => a[o + i]! + space.start[i]!));
  if (space instanceof Box) return new DiagGaussian(space);
  if (space instanceof MultiBinary) return new Bernoulli(space.size);
  throw new Error(
    `Unsupported action space ${space}: agents support Discrete, MultiDiscrete, Box and MultiBinary actions.`,
  );
}
