/**
 * GRU and LSTM mixers with PyTorch's nn.GRU / nn.LSTM equations, gate order and weight names, so weights load
 * from and compare with PyTorch. Hidden width = input width = `dim`.
 *
 * The sequence form projects all inputs at once (one 2-D matMul) and then loops over time; the step form runs
 * the same cell on one step, so both agree exactly.
 */
import * as tf from '@tensorflow/tfjs';
import type { MixerLayer, NamedWeight, State, StepResult, ForwardResult } from './core.js';
import { linear, matMul2d } from './ops.js';
import { uniformVariable } from './weights.js';

export type RecurrentKind = 'gru' | 'lstm';

/** Gates per kind: GRU r, z, n; LSTM i, f, g, o. */
const GATES: Record<RecurrentKind, number> = { gru: 3, lstm: 4 };

/** A single-layer GRU or LSTM as a `MixerLayer`. State: `h` [B, dim] (and `c` [B, dim] for LSTM). */
export class RecurrentMixer implements MixerLayer {
  /** [in, G·dim] (PyTorch weight_ih_l0 transposed) */
  private readonly wIh: tf.Variable;
  /** [dim, G·dim] (PyTorch weight_hh_l0 transposed) */
  private readonly wHh: tf.Variable;
  private readonly bIh: tf.Variable;
  private readonly bHh: tf.Variable;

  constructor(
    readonly kind: RecurrentKind,
    readonly dim: number,
    rng: () => number,
  ) {
    // PyTorch initialises every weight and bias uniform in ±1/√hidden.
    const g = GATES[kind] * dim;
    const bound = 1 / Math.sqrt(dim);
    this.wIh = uniformVariable([dim, g], bound, rng);
    this.wHh = uniformVariable([dim, g], bound, rng);
    this.bIh = uniformVariable([g], bound, rng);
    this.bHh = uniformVariable([g], bound, rng);
  }

  private stateKeys(): string[] {
    return this.kind === 'lstm' ? ['h', 'c'] : ['h'];
  }

  initialState(batch: number): State {
    const state: State = {};
    for (const key of this.stateKeys()) state[key] = tf.zeros([batch, this.dim]);
    return state;
  }

  /**
   * One cell update from the input projection gi = W_ih x + b_ih [B, G·dim]; streams flagged in `reset` [B, 1]
   * start from zero.
   */
  private cell(gi: tf.Tensor2D, state: State, reset: tf.Tensor2D): State {
    const keep = tf.sub(1, reset);
    const h = tf.mul(state.h, keep) as tf.Tensor2D;
    const gh = tf.add(matMul2d(h, this.wHh as tf.Variable<tf.Rank.R2>), this.bHh) as tf.Tensor2D;
    const d = this.dim;
    if (this.kind === 'gru') {
      // r, z = σ(W_i x + b_i + W_h h + b_h); n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); h' = (1−z) n + z h
      const [giRz, giN] = tf.split(gi, [2 * d, d], 1);
      const [ghRz, ghN] = tf.split(gh, [2 * d, d], 1);
      const [r, z] = tf.split(tf.sigmoid(tf.add(giRz, ghRz)), 2, 1);
      const n = tf.tanh(tf.add(giN, tf.mul(r, ghN)));
      return { h: tf.add(n, tf.mul(z, tf.sub(h, n))) };
    }
    // i, f, o = σ(...), g = tanh(...); c' = f c + i g; h' = o tanh(c')
    const c = tf.mul(state.c, keep);
    const gates = tf.add(gi, gh);
    const [ifg, gg, go] = tf.split(gates, [2 * d, d, d], 1);
    const [i, f] = tf.split(tf.sigmoid(ifg), 2, 1);
    const cNext = tf.add(tf.mul(f, c), tf.mul(i, tf.tanh(gg)));
    return { h: tf.mul(tf.sigmoid(go), tf.tanh(cNext)), c: cNext };
  }

  private inputProjection<R extends tf.Rank>(x: tf.Tensor<R>): tf.Tensor<R> {
    return tf.add(linear(x, this.wIh as tf.Variable<tf.Rank.R2>), this.bIh);
  }

  step(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D): StepResult {
    return tf.tidy(() => {
      const next = this.cell(this.inputProjection(x), state, tf.reshape(episodeStart, [-1, 1]));
      return { y: next.h as tf.Tensor2D, state: next };
    });
  }

  forward(xs: tf.Tensor3D, state: State, episodeStart: tf.Tensor2D): ForwardResult {
    return tf.tidy(() => {
      const gis = tf.unstack(this.inputProjection(xs), 1) as tf.Tensor2D[];
      const resets = tf.unstack(tf.expandDims(episodeStart, 2), 1) as tf.Tensor2D[];
      const hs: tf.Tensor[] = [];
      let s = state;
      for (let t = 0; t < gis.length; t++) {
        s = this.cell(gis[t], s, resets[t]);
        hs.push(s.h);
      }
      return { ys: tf.stack(hs, 1) as tf.Tensor3D, state: s };
    });
  }

  namedWeights(): NamedWeight[] {
    return [
      { name: 'weight_ih_l0', variable: this.wIh, transposed: true },
      { name: 'weight_hh_l0', variable: this.wHh, transposed: true },
      { name: 'bias_ih_l0', variable: this.bIh, transposed: false },
      { name: 'bias_hh_l0', variable: this.bHh, transposed: false },
    ];
  }

  dispose(): void {
    for (const w of this.namedWeights()) w.variable.dispose();
  }
}
