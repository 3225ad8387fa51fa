/**
 * Adam with the maths of `tf.train.adam`, but with its scalar constants kept as cached tensors (tfjs' own
 * optimizer uploads `beta1`, `1 - beta1`, ... as fresh scalars for every variable on every step) and with its
 * state exposed for checkpoints. The learning rate lives in a scalar variable so annealing costs one assign.
 */
import * as tf from '@tensorflow/tfjs';
import { fusedAdamFits, fusedAdamStep } from '../memory/webgpu/adam.js';
import { fusedKernelsActive } from '../memory/webgpu/index.js';

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

/** The optimizer state as plain numbers, keyed by the variable's position in `variables`. */
export interface AdamState {
  /** Running products beta1^t and beta2^t, as tf.train.adam keeps them (they start at beta, not 1). */
  accBeta1: number;
  accBeta2: number;
  /** First and second moments, one array per variable in order. */
  m: Float32Array[];
  v: Float32Array[];
}

export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  private readonly lr: tf.Variable;
  private readonly consts: Record<'beta1' | 'beta2' | 'oneMinusBeta1' | 'oneMinusBeta2' | 'epsilon' | 'one', tf.Scalar>;
  private readonly accBeta1: tf.Variable;
  private readonly accBeta2: tf.Variable;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  constructor(readonly variables: tf.Variable[], opts: AdamOptions) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-8;
    if (!(opts.learningRate >= 0)) throw new Error(`Adam: learningRate must be >= 0, got ${opts.learningRate}.`);
    // tf.variable(x) leaves x alive beside the variable; tidy frees it.
    const variable = (make: () => tf.Tensor) => tf.tidy(() => tf.variable(make(), false));
    this.lr = variable(() => tf.scalar(opts.learningRate));
    this.consts = {
      beta1: tf.keep(tf.scalar(this.beta1)),
      beta2: tf.keep(tf.scalar(this.beta2)),
      oneMinusBeta1: tf.keep(tf.scalar(1 - this.beta1)),
      oneMinusBeta2: tf.keep(tf.scalar(1 - this.beta2)),
      epsilon: tf.keep(tf.scalar(this.epsilon)),
      one: tf.keep(tf.scalar(1)),
    };
    this.accBeta1 = variable(() => tf.scalar(this.beta1));
    this.accBeta2 = variable(() => tf.scalar(this.beta2));
    this.m = variables.map((w) => variable(() => tf.zerosLike(w)));
    this.v = variables.map((w) => variable(() => tf.zerosLike(w)));
  }

  /** Sets the learning rate (one small upload; call it once per update, not per minibatch). */
  setLearningRate(lr: number): void {
    tf.tidy(() => this.lr.assign(tf.scalar(lr)));
  }

  /**
   * Applies one step; `grads[i]` belongs to `variables[i]` (a missing gradient skips that variable). With `scale`
   * (e.g. `globalNormScale`'s clip factor) every gradient is multiplied by it first. On WebGPU each variable's step
   * is one fused kernel (memory/webgpu/adam.ts) instead of a dozen element-wise ones.
   */
  applyGradients(grads: (tf.Tensor | undefined)[], scale?: tf.Scalar): void {
    const c = this.consts;
    tf.tidy(() => {
      const bc1 = tf.sub(c.one, this.accBeta1);
      const bc2 = tf.sub(c.one, this.accBeta2);
      const negLr = tf.neg(this.lr);
      const fused = fusedKernelsActive() && fusedAdamFits();
      const k = fused ? (tf.concat([scale ?? c.one, bc1, bc2, negLr].map((x) => tf.reshape(x, [1]))) as tf.Tensor1D) : undefined;
      this.variables.forEach((w, i) => {
        const raw = grads[i];
        if (!raw) return;
        if (k) {
          const [nw, m, v] = fusedAdamStep(w, this.m[i], this.v[i], raw, k, this);
          for (const [dst, src] of [[this.m[i], m], [this.v[i], v], [w, nw]] as const) dst.assign(tf.reshape(src!, w.shape));
          return;
        }
        const g = scale ? tf.mul(raw, scale) : raw;
        const m = tf.add(tf.mul(this.m[i], c.beta1), tf.mul(g, c.oneMinusBeta1));
        const v = tf.add(tf.mul(this.v[i], c.beta2), tf.mul(tf.square(g), c.oneMinusBeta2));
        const mHat = tf.div(m, bc1);
        const vHat = tf.div(v, bc2);
        this.m[i].assign(m);
        this.v[i].assign(v);
        w.assign(tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), c.epsilon)), negLr), w));
      });
      this.accBeta1.assign(tf.mul(this.accBeta1, c.beta1));
      this.accBeta2.assign(tf.mul(this.accBeta2, c.beta2));
    });
  }

  /** Reads the state (for checkpoints). */
  async getState(): Promise<AdamState> {
    const [a1, a2] = await Promise.all([this.accBeta1.data(), this.accBeta2.data()]);
    return {
      accBeta1: a1[0],
      accBeta2: a2[0],
      m: (await Promise.all(this.m.map((t) => t.data()))) as Float32Array[],
      v: (await Promise.all(this.v.map((t) => t.data()))) as Float32Array[],
    };
  }

  /** Restores a state read by `getState` (shapes must match the variables). */
  setState(state: AdamState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) {
      throw new Error(`Adam state has ${state.m.length} moments but the optimizer has ${this.m.length} variables.`);
    }
    tf.tidy(() => {
      this.accBeta1.assign(tf.scalar(state.accBeta1));
      this.accBeta2.assign(tf.scalar(state.accBeta2));
      this.variables.forEach((w, i) => {
        for (const [dst, src, label] of [
          [this.m[i], state.m[i], 'm'],
          [this.v[i], state.v[i], 'v'],
        ] as const) {
          if (src.length !== w.size) throw new Error(`Adam state ${label}[${i}] has ${src.length} values, expected ${w.size}.`);
          dst.assign(tf.tensor(src, w.shape));
        }
      });
    });
  }

  dispose(): void {
    tf.dispose([this.lr, this.accBeta1, this.accBeta2, ...this.m, ...this.v, ...Object.values(this.consts)]);
  }
}

/**
 * The factor that scales gradients to a global L2 norm of at most `maxNorm` (as torch.nn.utils.clip_grad_norm_),
 * min(1, maxNorm / norm), and the norm before clipping; pass the factor to `Adam.applyGradients`.
 */
export function globalNormScale(grads: tf.Tensor[], maxNorm: tf.Scalar): { scale: tf.Scalar; norm: tf.Scalar } {
  return tf.tidy(() => {
    // On WebGPU one concat and one reduction instead of two kernels per tensor (host dispatch dominates there);
    // elsewhere the per-tensor sums keep the summation order, and so the bits, of earlier runs.
    const squares = fusedKernelsActive()
      ? [tf.sum(tf.square(tf.concat(grads.map((g) => tf.reshape(g, [-1])))))]
      : grads.map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(squares.length === 1 ? squares[0]! : tf.addN(squares)) as tf.Scalar;
    // min(1, maxNorm / norm) without uploading constants (torch adds 1e-6 to the norm; immaterial here).
    return { scale: tf.div(maxNorm, tf.maximum(norm, maxNorm)) as tf.Scalar, norm };
  });
}
