/**
 * GRU and LSTM mixers with PyTorch's nn.GRU / nn.LSTM equations, gate order and weight names, so weights load
 * from and compare with PyTorch. Hidden width = input width = `dim`.
 *
 * The sequence form projects all inputs at once (one 2-D matMul) and then loops over time in one custom-gradient
 * op with a hand-written backward pass through time: tfjs' per-op autodiff of the loop costs several times the
 * forward (dozens of small kernels per step, ~5-20 µs each on wasm), while the hand-written pass needs a handful
 * per step, since every gate derivative that does not depend on the incoming gradient is computed for all steps
 * at once. The step form runs the plain cell on one step.
 */
import * as tf from '@tensorflow/tfjs';
import type { MixerLayer, NamedWeight, State, StepResult, ForwardResult } from './core.js';
import { linear, matMul2d, recording, transpose2d } from './ops.js';
import { uniformVariable } from './weights.js';
import { fusedKernelsActive } from './webgpu/index.js';
import { fusedGruSequence, gruSequenceFits } from './webgpu/recurrent.js';

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
      const [B, T] = xs.shape;
      const d = this.dim;
      const keep = tf.expandDims(tf.sub(1, episodeStart), 2) as tf.Tensor3D; // [B, T, 1]
      const gi = this.inputProjection(xs);
      if (this.kind === 'gru') {
        // b_hr and b_hz add to the input projection; b_hn stays inside r ⊙ (W_hn h + b_hn).
        const [bRz, bN] = tf.split(this.bHh, [2 * d, d]);
        const giAll = tf.add(gi, tf.concat([bRz!, tf.zerosLike(bN!)])) as tf.Tensor3D;
        // On WebGPU the whole recurrence (and its backward) is one kernel instead of a few ops per step.
        const scan = fusedKernelsActive() && gruSequenceFits(d) ? fusedGruSequence : gruScan;
        const ys = scan(giAll, state.h as tf.Tensor2D, this.wHh as tf.Tensor2D, bN as tf.Tensor1D, keep);
        const next: State = { h: tf.reshape(tf.slice(ys, [0, T - 1, 0], [B, 1, d]), [B, d]) };
        return { ys, state: next };
      }
      const out = lstmScan(tf.add(gi, this.bHh) as tf.Tensor3D, state.h as tf.Tensor2D, state.c as tf.Tensor2D, this.wHh as tf.Tensor2D, keep);
      const last = (i: number) => tf.reshape(tf.slice(out, [0, i, 0], [B, 1, d]), [B, d]);
      const next: State = { h: last(T - 1), c: last(T) };
      return { ys: tf.slice(out, [0, 0, 0], [B, T, d]) as tf.Tensor3D, state: next };
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

type ScanArgs = (tf.Tensor | tf.GradSaveFunc)[];
/** n copies of x [B, D] side by side: [B, n·D]. */
const repeat = (x: tf.Tensor, n: number) => tf.concat(new Array<tf.Tensor>(n).fill(x), 1);

/**
 * GRU over time. gi [B, T, 3D] = W_ih x + b_ih + [b_hr, b_hz, 0], h0 [B, D], whh [D, 3D], bhn [D], keep [B, T, 1]
 * (0 where an episode starts) → hs [B, T, D].
 */
const gruScan = tf.customGrad(((...args: ScanArgs) => {
  const [gi, h0, whh, bhn, keep, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor3D, tf.GradSaveFunc];
  const d = h0.shape[1];
  const [giRz, giN] = tf.split(gi, [2 * d, d], 2).map((t) => tf.unstack(t, 1));
  const keeps = tf.unstack(keep, 1);
  let h: tf.Tensor = h0;
  const steps: tf.Tensor[][] = [[], [], [], [], [], []]; // h, hk, r, z, n, W_hn h + b_hn
  for (let t = 0; t < giRz!.length; t++) {
    const out = tf.tidy(() => {
      const hk = tf.mul(h, keeps[t]!);
      const [ghRz, ghN] = tf.split(tf.matMul(hk, whh), [2 * d, d], 1);
      const [r, z] = tf.split(tf.sigmoid(tf.add(giRz![t]!, ghRz!)), 2, 1);
      const g = tf.add(ghN!, bhn);
      const n = tf.tanh(tf.add(giN![t]!, tf.mul(r!, g)));
      return [tf.add(n, tf.mul(z!, tf.sub(hk, n))), hk, r!, z!, n, g];
    });
    out.forEach((x, i) => steps[i]!.push(x));
    h = out[0]!;
  }
  const hs = tf.stack(steps[0]!, 1) as tf.Tensor3D;
  save(recording() ? [whh, keep, ...steps.slice(1).map((l) => tf.stack(l, 1))] : []);
  return {
    value: hs,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [w, kp, hkS, rS, zS, nS, gS] = saved as tf.Tensor3D[];
      const [B, T] = kp!.shape;
      // h' = (1 − z) n + z hk: per unit of dh', the pre-activation gradients are dh' times these coefficients.
      const cN = tf.mul(tf.sub(1, zS!), tf.sub(1, tf.square(nS!)));
      const cZ = tf.mul(tf.sub(hkS!, nS!), tf.mul(zS!, tf.sub(1, zS!)));
      const cR = tf.mul(tf.mul(cN, gS!), tf.mul(rS!, tf.sub(1, rS!)));
      const cGh = tf.concat([cR, cZ, tf.mul(cN, rS!)], 2); // d(W_hh hk + b_hh) = dh' ⊙ cGh (dh' repeated)
      // dh_prev = keep ⊙ (dh' ⊙ z + (dh' ⊙ cGh) W_hhᵀ): one matMul against [W_hhᵀ; I].
      const coef = tf.unstack(tf.mul(tf.concat([cGh, zS!], 2), kp!), 1);
      const back = tf.concat([transpose2d(w!), tf.eye(d)], 0);
      const dys = tf.unstack(dy, 1);
      const dhs: tf.Tensor[] = new Array<tf.Tensor>(T);
      let carry: tf.Tensor = tf.zeros([B, d]);
      for (let t = T - 1; t >= 0; t--) {
        const dh = tf.add(dys[t]!, carry);
        dhs[t] = dh;
        carry = tf.matMul(tf.mul(repeat(dh, 4), coef[t]!), back);
      }
      const dh3 = tf.concat(new Array<tf.Tensor>(3).fill(tf.stack(dhs, 1)), 2);
      const dgh = tf.reshape(tf.mul(dh3, cGh), [B * T, 3 * d]);
      const dgi = tf.mul(dh3, tf.concat([cR, cZ, cN], 2));
      const dw = tf.matMul(transpose2d(tf.reshape(hkS!, [B * T, d])), dgh);
      const dbhn = tf.sum(tf.slice(dgh, [0, 2 * d], [B * T, d]), 0);
      return [dgi, carry, dw, dbhn, tf.zerosLike(kp!)];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]) as (gi: tf.Tensor3D, h0: tf.Tensor2D, whh: tf.Tensor2D, bhn: tf.Tensor1D, keep: tf.Tensor3D) => tf.Tensor3D;

/**
 * LSTM over time. gi [B, T, 4D] = W_ih x + b_ih + b_hh, h0, c0 [B, D], whh [D, 4D], keep [B, T, 1]
 * → [B, T + 1, D]: the T outputs h, then the final cell state c.
 */
const lstmScan = tf.customGrad(((...args: ScanArgs) => {
  const [gi, h0, c0, whh, keep, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor3D, tf.GradSaveFunc];
  const d = h0.shape[1];
  const gis = tf.unstack(gi, 1);
  const keeps = tf.unstack(keep, 1);
  let h: tf.Tensor = h0;
  let c: tf.Tensor = c0;
  const steps: tf.Tensor[][] = [[], [], [], [], [], [], []]; // h, c, hk, ck, σ(i, f), tanh(g), σ(o)
  for (let t = 0; t < gis.length; t++) {
    const out = tf.tidy(() => {
      const hk = tf.mul(h, keeps[t]!);
      const ck = tf.mul(c, keeps[t]!);
      const [ifg, gg, go] = tf.split(tf.add(gis[t]!, tf.matMul(hk, whh)), [2 * d, d, d], 1);
      const sif = tf.sigmoid(ifg!);
      const [i, f] = tf.split(sif, 2, 1);
      const g = tf.tanh(gg!);
      const o = tf.sigmoid(go!);
      const cNext = tf.add(tf.mul(f!, ck), tf.mul(i!, g));
      return [tf.mul(o, tf.tanh(cNext)), cNext, hk, ck, sif, g, o];
    });
    out.forEach((x, k) => steps[k]!.push(x));
    [h, c] = out as [tf.Tensor, tf.Tensor];
  }
  const value = tf.stack([...steps[0]!, c], 1) as tf.Tensor3D;
  save(recording() ? [whh, keep, ...steps.slice(1).map((l) => tf.stack(l, 1))] : []);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [w, kp, cS, hkS, ckS, sifS, gS, oS] = saved as tf.Tensor3D[];
      const [B, T] = kp!.shape;
      const [iS, fS] = tf.split(sifS!, 2, 2);
      const tc = tf.tanh(cS!);
      // Per unit of dc' (cell) and dh' (output): dc' += dh' o (1 − tanh²c'); pre-activation gradients of the
      // gates [i, f, g, o] are [dc', dc', dc', dh'] ⊙ cGates.
      const a = tf.unstack(tf.mul(oS!, tf.sub(1, tf.square(tc))), 1);
      const cGates = tf.concat(
        [
          tf.mul(gS!, tf.mul(iS!, tf.sub(1, iS!))),
          tf.mul(ckS!, tf.mul(fS!, tf.sub(1, fS!))),
          tf.mul(iS!, tf.sub(1, tf.square(gS!))),
          tf.mul(tc, tf.mul(oS!, tf.sub(1, oS!))),
        ],
        2,
      );
      const coef = tf.unstack(tf.mul(cGates, kp!), 1);
      const fk = tf.unstack(tf.mul(fS!, kp!), 1);
      const wT = transpose2d(w!);
      const dys = tf.unstack(tf.slice(dy, [0, 0, 0], [B, T, d]), 1);
      const dhs: tf.Tensor[] = new Array<tf.Tensor>(T);
      const dcs: tf.Tensor[] = new Array<tf.Tensor>(T);
      let carryH: tf.Tensor = tf.zeros([B, d]);
      let carryC: tf.Tensor = tf.reshape(tf.slice(dy, [0, T, 0], [B, 1, d]), [B, d]);
      for (let t = T - 1; t >= 0; t--) {
        const dh = tf.add(dys[t]!, carryH);
        const dc = tf.add(carryC, tf.mul(dh, a[t]!));
        dhs[t] = dh;
        dcs[t] = dc;
        carryH = tf.matMul(tf.mul(tf.concat([dc, dc, dc, dh], 1), coef[t]!), wT);
        carryC = tf.mul(dc, fk[t]!);
      }
      const dcS = tf.stack(dcs, 1);
      const dgates = tf.mul(tf.concat([dcS, dcS, dcS, tf.stack(dhs, 1)], 2), cGates);
      const dw = tf.matMul(transpose2d(tf.reshape(hkS!, [B * T, d])), tf.reshape(dgates, [B * T, 4 * d]));
      return [dgates, carryH, carryC, dw, tf.zerosLike(kp!)];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]) as (gi: tf.Tensor3D, h0: tf.Tensor2D, c0: tf.Tensor2D, whh: tf.Tensor2D, keep: tf.Tensor3D) => tf.Tensor3D;
