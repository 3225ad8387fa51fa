/**
 * The HQLT memory layer (Irie, Yau & Gershman, 2025) as specified in `HQLT-SPEC.md`: a sliding-window softmax
 * KV-memory and a DeltaNet fast-weight (FW) memory sharing one set of projections, blended synchronously, with a
 * delay (streaming or chunked), or with linear attention as FW-memory; `memories` keeps only one branch for the
 * DeltaNet / linear-attention / window-attention baselines.
 *
 * Two forms that agree (see the tests): `step` (acting, one step for B streams) and `forward` (training, parallel
 * over time: windowed attention over query blocks, chunkwise DeltaNet with the UT transform). Positions and
 * episode masks are computed from the `episodeStart` flags with tensor ops, never read back to JS.
 */
import * as tf from '@tensorflow/tfjs';
import type { ForwardResult, Introspection, MixerLayer, NamedWeight, State, StepOptions, StepResult } from './core.js';
import { bmm, checkpoint, linear, matMul2d, recording, rmsNorm, shiftAppend, type TensorRecord } from './ops.js';

/** `checkpoint`'s signature without rematerialisation: just the block. */
function runBlock(inputs: TensorRecord, constants: TensorRecord, f: (xs: TensorRecord) => TensorRecord): TensorRecord {
  return f({ ...constants, ...inputs });
}
import { randn } from '../util/random.js';
import { fusedKernelsActive } from './webgpu/index.js';
import { deltaRuleFits, fusedDeltaRule } from './webgpu/delta.js';
import { fusedMixNorm, fusedSilu } from './webgpu/rowwise.js';
import { fusedBufferTail, fusedTimeInfo } from './webgpu/sequence.js';
import { fusedStep, stepKernelFits, type StepKernelConfig } from './webgpu/step.js';
import { fusedWindowAttention, windowAttentionFits } from './webgpu/window.js';

export type Blend = 'synchronous' | 'delayed-streaming' | 'delayed-chunk' | 'synchronous-linear';
export type Mixing = 'sum' | 'scalar' | 'vector';

export interface HqltLayerOptions {
  /** Model width D (input and output). */
  dim: number;
  /** Number of heads H. */
  heads: number;
  /** S: KV window (and chunk size of the delayed-chunk blend). */
  window: number;
  blend: Blend;
  mixing: Mixing;
  /** RoPE on the KV branch's queries and keys. */
  rope: boolean;
  /** Causal depthwise convolution (kernel 4) on the q/k/v projections. */
  shortConv: boolean;
  /** β ∈ (0, 2) instead of (0, 1). */
  allowNegativeEigenvalues: boolean;
  /** D_key (default dim). */
  keyDim?: number;
  /** D_value (default dim). */
  valueDim?: number;
  /** 'fw': FW-memory only (DeltaNet / linear attention), 'kv': window attention only. Default 'both'. */
  memories?: 'both' | 'fw' | 'kv';
}

export const BLENDS: readonly Blend[] = ['synchronous', 'delayed-streaming', 'delayed-chunk', 'synchronous-linear'];
export const MIXINGS: readonly Mixing[] = ['sum', 'scalar', 'vector'];

const CONV_SIZE = 4;
const ROPE_THETA = 10000;
const NEG_INF = -1e9;
/** Chunk length of the chunkwise DeltaNet (power of two: the UT transform squares log2(C) times). */
const FW_CHUNK = 16;

/** Per-step time information of a sequence, all [B, T] float tensors (constants, no gradient). */
interface TimeInfo {
  /** Number of episode starts up to and including t: steps i ≤ t share t's episode iff seg_i = seg_t. */
  seg: tf.Tensor2D;
  /** Steps since the episode start (the step form's position counter). */
  pos: tf.Tensor2D;
  /** seg of the last step, [B, 1]. */
  segLast: tf.Tensor2D;
}

/** Query-side projections of x for all heads. Shapes [..., H, K] / [..., H, V] / [..., H]. */
interface Projected {
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  beta: tf.Tensor | null;
  mix: tf.Tensor | null;
}

/** Constants of the step form. */
interface StepConstants {
  /** Key distance of each buffer slot minus 0.5, [1, S]. */
  distHalf: tf.Tensor2D;
  /** RoPE tables by slot distance (cos, signed sin), scaled by 1/√K, [S, K]. */
  rope: [tf.Tensor2D, tf.Tensor2D] | null;
  /** The rotate-half permutation [Dk, Dk] (swaps each head's halves). */
  swap: tf.Tensor2D | null;
}

export class HqltLayer implements MixerLayer {
  /**
   * Batch × time × width from which `forward` rematerialises its memories under gradient recording: 2.4–4.7× less
   * memory, 20–35% more time. The default (B=32, T=256, D=128) is where the wasm heap would otherwise run out.
   */
  static rematMinElements = 32 * 256 * 128;

  readonly options: Required<HqltLayerOptions>;
  readonly dim: number;
  private readonly H: number;
  private readonly K: number;
  private readonly V: number;
  private readonly S: number;
  private readonly hasKv: boolean;
  private readonly hasFw: boolean;
  /** Whether the state keeps a buffer of the last S keys/values (KV-memory or the delayed-streaming writes). */
  private readonly hasBuffer: boolean;
  private readonly weights = new Map<string, { variable: tf.Variable; transposed: boolean }>();
  /** Constants of the step form (see `StepConstants`), disposed with the layer. */
  private readonly stepConst: StepConstants;
  /** The fused input weight of the step form, kept while no weight variable is reassigned (see `inputWeight`). */
  private fusedCache: { ids: object[]; weight: tf.Tensor2D } | null = null;

  constructor(options: HqltLayerOptions, rng: () => number) {
    this.options = validate(options);
    const o = this.options;
    this.dim = o.dim;
    this.H = o.heads;
    this.K = o.keyDim / o.heads;
    this.V = o.valueDim / o.heads;
    this.S = o.window;
    this.hasKv = o.memories !== 'fw';
    this.hasFw = o.memories !== 'kv';
    this.hasBuffer = this.hasKv || (this.hasFw && o.blend === 'delayed-streaming');

    const normal = (shape: number[], std: number) =>
      tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => randn(rng) * std), shape);
    const add = (name: string, init: tf.Tensor, transposed: boolean) => {
      this.weights.set(name, { variable: tf.variable(init, true, `hqlt_${name}_${nextId++}`), transposed });
      init.dispose();
    };
    const inStd = 1 / Math.sqrt(o.dim);
    add('q_proj.weight', normal([o.dim, o.keyDim], inStd), true);
    add('k_proj.weight', normal([o.dim, o.keyDim], inStd), true);
    add('v_proj.weight', normal([o.dim, o.valueDim], inStd), true);
    if (this.usesBeta) add('b_proj.weight', normal([o.dim, o.heads], inStd), true);
    if (this.hasKv && this.hasFw && o.mixing === 'vector')
      add('memory_gate_proj.weight', normal([o.dim, o.valueDim], inStd), true);
    if (this.hasKv && this.hasFw && o.mixing === 'scalar')
      add('memory_mixer.weight', normal([o.dim, 2 * o.heads], inStd), true);
    if (o.shortConv) {
      // PyTorch's Conv1d default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = kernel size.
      const conv = (c: number) =>
        tf.tensor(Float32Array.from({ length: c * CONV_SIZE }, () => rng() - 0.5), [c, 1, CONV_SIZE]);
      add('q_conv1d.weight', conv(o.keyDim), false);
      add('k_conv1d.weight', conv(o.keyDim), false);
      add('v_conv1d.weight', conv(o.valueDim), false);
    }
    add('o_norm.weight', tf.ones([this.V]), false);
    add('o_proj.weight', normal([o.valueDim, o.dim], 1 / Math.sqrt(o.valueDim)), true);

    this.stepConst = tf.tidy(() => {
      const { S, K, H } = this;
      // Slot i of the buffer holds the key at distance S - 1 - i; 1/√K is folded into the RoPE tables.
      const dist = tf.sub(S - 1, tf.range(0, S));
      const rope = o.rope && this.hasKv ? ropeTables(dist, K).map((t) => tf.mul(t, 1 / Math.sqrt(K))) : null;
      // swap[i, j] = 1 where i = j ± K/2 in the same head: q @ swap swaps each head's halves (rotate-half).
      const swap = new Float32Array(H * K * H * K);
      for (let j = 0; j < H * K; j++) swap[(j % K < K / 2 ? j + K / 2 : j - K / 2) * H * K + j] = 1;
      const consts: StepConstants = {
        distHalf: tf.expandDims(tf.sub(dist, 0.5), 0) as tf.Tensor2D,
        rope: rope as [tf.Tensor2D, tf.Tensor2D] | null,
        swap: rope ? tf.tensor2d(swap, [H * K, H * K]) : null,
      };
      return consts as unknown as tf.TensorContainer;
    }) as unknown as StepConstants;
    // Built now rather than at the first step, so tensor counts stay flat from construction on.
    if (!recording()) this.inputWeight();
  }

  private get usesBeta(): boolean {
    return this.hasFw && this.options.blend !== 'synchronous-linear';
  }

  private w(name: string): tf.Variable {
    const entry = this.weights.get(name);
    if (!entry) throw new Error(`HqltLayer has no weight '${name}'`);
    return entry.variable;
  }

  private has(name: string): boolean {
    return this.weights.has(name);
  }

  namedWeights(): NamedWeight[] {
    return [...this.weights].map(([name, { variable, transposed }]) => ({ name, variable, transposed }));
  }

  dispose(): void {
    for (const { variable } of this.weights.values()) variable.dispose();
    this.weights.clear();
    tf.dispose([this.stepConst.distHalf, ...(this.stepConst.rope ?? []), ...(this.stepConst.swap ? [this.stepConst.swap] : [])]);
    this.fusedCache?.weight.dispose();
    this.fusedCache = null;
  }

  /** Zero state for `batch` streams (see the class doc for the names). */
  initialState(batch: number): State {
    const { H, K, V, S } = this;
    const o = this.options;
    const state: State = { pos: tf.zeros([batch]) };
    if (o.shortConv) state.conv = tf.zeros([batch, CONV_SIZE - 1, 2 * o.keyDim + o.valueDim]);
    if (this.hasBuffer) {
      state.keys = tf.zeros([batch, H, S, K]);
      state.values = tf.zeros([batch, H, S, V]);
    }
    if (this.hasFw) {
      state.fw = tf.zeros([batch, H, V, K]);
      if (o.blend === 'delayed-chunk') state.fwPending = tf.zeros([batch, H, V, K]);
      if (o.blend === 'synchronous-linear') state.z = tf.zeros([batch, H, K]);
    }
    return state;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Shared pieces

  /**
   * The fused input projection [D, 2 Dk + Dv (+ H) (+ mixing)]: one matMul for all projections. Outside gradient
   * recording (acting) it is cached until a weight variable is reassigned (assign gives a variable a new dataId).
   */
  private inputWeight(): tf.Tensor2D {
    const names = ['q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'b_proj.weight', 'memory_gate_proj.weight', 'memory_mixer.weight'];
    const vars = names.filter((n) => this.has(n)).map((n) => this.w(n));
    const fuse = () => tf.concat(vars, 1) as tf.Tensor2D;
    if (recording()) return fuse();
    const ids = vars.map((v) => v.dataId);
    const cached = this.fusedCache;
    if (cached && cached.ids.every((id, i) => id === ids[i])) return cached.weight;
    cached?.weight.dispose();
    this.fusedCache = { ids, weight: tf.keep(fuse()) };
    return this.fusedCache.weight;
  }

  /** Conv taps [4, 2 Dk + Dv]; tap i multiplies the input 3 - i steps back. */
  private convTaps(): tf.Tensor2D {
    const ws = ['q_conv1d.weight', 'k_conv1d.weight', 'v_conv1d.weight'].map((n) =>
      tf.reshape(this.w(n), [-1, CONV_SIZE]),
    );
    return tf.transpose(tf.concat(ws, 0)) as tf.Tensor2D;
  }

  /**
   * Splits the projection output into activated heads: `qkv` is the whole projection [..., P], or, with the short
   * convolution, its convolved q/k/v part, the gates' columns then apart in `extra`.
   */
  private split(qkv: tf.Tensor, extra: tf.Tensor | null = null): Projected {
    const o = this.options;
    const lead = qkv.shape.slice(0, -1);
    const width = qkv.shape[qkv.rank - 1]!;
    const nBeta = this.usesBeta ? o.heads : 0;
    const nMix = (extra ? extra.shape[extra.rank - 1]! : width - 2 * o.keyDim - o.valueDim) - nBeta;
    // Splits of 2-D views: the wasm backend splits rank-3 tensors slowly.
    let parts: tf.Tensor[];
    if (extra) {
      // β and the mixing gates are all sigmoids: one for both, then a split.
      const gates = tf.sigmoid(tf.reshape(extra, [-1, nBeta + nMix]));
      parts = [...tf.split(tf.reshape(qkv, [-1, width]), [o.keyDim, o.keyDim, o.valueDim], 1), ...(nBeta && nMix ? tf.split(gates, [nBeta, nMix], 1) : [gates])];
    } else {
      // The whole projection in one split, its gradient one concat: nested splits copied it twice each way.
      const sizes = [o.keyDim, o.keyDim, o.valueDim, ...[nBeta, nMix].filter((n) => n > 0)];
      parts = tf.split(tf.reshape(qkv, [-1, width]), sizes, 1).map((t, i) => (i < 3 ? t : tf.sigmoid(t)));
    }
    const [q, k, v, ...gates] = parts;
    const b = nBeta ? gates[0]! : null;
    const m = nMix ? gates[nBeta ? 1 : 0]! : null;
    const beta = b && tf.reshape(o.allowNegativeEigenvalues ? tf.mul(b, 2) : b, [...lead, nBeta]);
    const mix = m && tf.reshape(m, [...lead, nMix]);
    return {
      q: tf.reshape(q!, [...lead, this.H, this.K]),
      k: tf.reshape(k!, [...lead, this.H, this.K]),
      v: tf.reshape(fusedKernelsActive() ? fusedSilu(v!) : tf.mul(v!, tf.sigmoid(v!)), [...lead, this.H, this.V]),
      beta,
      mix,
    };
  }

  /** Feature map of FW-memory reads and writes, over the last axis. */
  private phi(x: tf.Tensor): tf.Tensor {
    if (this.options.blend === 'synchronous-linear') return tf.add(tf.elu(x), 1);
    const s = tf.mul(x, tf.sigmoid(x));
    return tf.mul(s, tf.rsqrt(tf.add(tf.sum(tf.square(s), -1, true), 1e-6)));
  }

  /** Mixing, per-head RMSNorm and output projection. oFw/oKv [..., H, V] (either may be null); mix [..., cols]. */
  private output(oFw: tf.Tensor | null, oKv: tf.Tensor | null, mix: tf.Tensor | null): tf.Tensor {
    const o = this.options;
    let out: tf.Tensor;
    if (oFw && oKv && fusedKernelsActive()) {
      // Mixing and norm in one kernel (WebGPU).
      const normed = fusedMixNorm(oFw, oKv, mix, this.w('o_norm.weight') as tf.Tensor1D, o.mixing, 1e-5);
      return linear(tf.reshape(normed, [...oFw.shape.slice(0, -2), o.valueDim]), this.w('o_proj.weight') as tf.Tensor2D);
    }
    if (oFw && oKv) {
      if (o.mixing === 'sum') out = tf.add(oFw, oKv);
      else if (o.mixing === 'vector') {
        // γ oFw + (1 − γ) oKv, in three ops.
        out = tf.add(oKv, tf.mul(tf.reshape(mix!, oFw.shape), tf.sub(oFw, oKv)));
      } else {
        const [aFw, aKv] = tf.split(tf.expandDims(mix!, -1), 2, -2);
        out = tf.add(tf.mul(aFw!, oFw), tf.mul(aKv!, oKv));
      }
    } else out = (oFw ?? oKv)!;
    const normed = rmsNorm(out, this.w('o_norm.weight') as tf.Tensor1D, 1e-5);
    const flat = tf.reshape(normed, [...out.shape.slice(0, -2), o.valueDim]);
    return linear(flat, this.w('o_proj.weight') as tf.Tensor2D);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Step form

  /** The fused step kernel's configuration when it can run this step (WebGPU, acting, supported blend), else null. */
  private fusedStepConfig(): StepKernelConfig | null {
    const o = this.options;
    if (!fusedKernelsActive() || recording() || (o.blend !== 'synchronous' && o.blend !== 'delayed-streaming')) return null;
    const config: StepKernelConfig = {
      heads: this.H, K: this.K, V: this.V, S: this.S, blend: o.blend, mixing: o.mixing, kv: this.hasKv, fw: this.hasFw,
      rope: o.rope, negativeEigenvalues: o.allowNegativeEigenvalues, width: this.inputWeight().shape[1],
    };
    return stepKernelFits(config) ? config : null;
  }

  /** The step form in one fused kernel (plus the projections): same results as the tfjs-ops step below. */
  private fusedStepForm(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D, config: StepKernelConfig): StepResult {
    return tf.tidy(() => {
      const o = this.options;
      const next: State = {};
      let proj = matMul2d(x, this.inputWeight());
      if (o.shortConv) {
        const B = x.shape[0];
        const qkvWidth = 2 * o.keyDim + o.valueDim;
        const [qkv, extra] = tf.split(proj, [qkvWidth, proj.shape[1] - qkvWidth], 1);
        const keep = tf.reshape(tf.sub(1, episodeStart), [B, 1, 1]);
        const win = tf.concat([tf.mul(state.conv!, keep), tf.expandDims(qkv!, 1)], 1);
        next.conv = tf.slice(win, [0, 1, 0], [-1, -1, -1]);
        proj = tf.concat([tf.sum(tf.mul(win, this.convTaps()), 1), extra!], 1) as tf.Tensor2D;
      }
      const rope = this.stepConst.rope;
      const r = fusedStep(config, {
        proj, pos: state.pos as tf.Tensor1D, start: episodeStart, norm: this.w('o_norm.weight') as tf.Tensor1D,
        keys: state.keys, values: state.values, fw: state.fw, ropeCos: rope?.[0], ropeSin: rope?.[1],
      });
      next.pos = r.pos;
      for (const key of ['keys', 'values', 'fw'] as const) if (r[key]) next[key] = r[key]!;
      return { y: linear(r.y, this.w('o_proj.weight') as tf.Tensor2D), state: next };
    });
  }

  step(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D, options: StepOptions = {}): StepResult {
    // Introspection reads intermediates of the tfjs-ops form; the fused kernel keeps them on chip.
    const fused = options.introspect ? null : this.fusedStepConfig();
    if (fused) return this.fusedStepForm(x, state, episodeStart, fused);
    return tf.tidy(() => {
      const seen: Introspection | null = options.introspect ? {} : null;
      const o = this.options;
      const { S, H, K, V } = this;
      const B = x.shape[0];
      const c = this.stepConst;
      // Episode starts zero the state (the KV buffers inside `shiftAppend`).
      const keep = tf.sub(1, episodeStart);
      const kept = (t: tf.Tensor) => tf.mul(t, tf.reshape(keep, [B, ...t.shape.slice(1).map(() => 1)]));
      const next: State = {};
      const pos = tf.mul(state.pos!, keep);
      next.pos = tf.add(pos, 1);

      const proj = matMul2d(x, this.inputWeight());
      let projected: Projected;
      if (o.shortConv) {
        const qkvWidth = 2 * o.keyDim + o.valueDim;
        const qkv = tf.slice(proj, [0, 0], [B, qkvWidth]);
        const extra = proj.shape[1] > qkvWidth ? tf.slice(proj, [0, qkvWidth], [B, -1]) : null;
        const win = tf.concat([kept(state.conv!), tf.expandDims(qkv, 1)], 1);
        next.conv = tf.slice(win, [0, 1, 0], [-1, -1, -1]);
        projected = this.split(tf.sum(tf.mul(win, this.convTaps()), 1), extra);
      } else projected = this.split(proj);
      const { q, k, v, beta, mix } = projected; // [B, H, K|V], beta [B, H]
      if (seen) {
        if (beta) seen.beta = beta;
        // Vector gates are per value channel; scalar ones are laid out [α^FW for each head, α^KV for each head].
        if (mix && o.mixing === 'vector') seen.gate = tf.reshape(mix, [B, H, V]);
        else if (mix) seen.alpha = tf.transpose(tf.reshape(mix, [B, 2, H]), [0, 2, 1]);
      }
      // φ of queries and keys in one pass (the synchronous-style blends write the current key).
      const writesCurrent = this.hasFw && o.blend !== 'delayed-streaming';
      const phis = this.hasFw ? tf.unstack(this.phi(writesCurrent ? tf.stack([q, k], 1) : tf.expandDims(q, 1)), 1) : [];

      let kvRead: tf.Tensor | null = null;
      let oldKey: tf.Tensor | null = null;
      let oldValue: tf.Tensor | null = null;
      if (this.hasBuffer) {
        // Shift the buffer by one slot: slot i holds the step at distance S - 1 - i.
        next.keys = shiftAppend(state.keys!, k, keep);
        next.values = shiftAppend(state.values!, v, keep);
        if (this.hasFw && o.blend === 'delayed-streaming') {
          // The pair leaving the window (zero until S steps of the episode have passed).
          const leaving = (buf: tf.Tensor) => tf.reshape(kept(tf.slice(buf, [0, 0, 0, 0], [B, H, 1, buf.shape[3]!])), [B, H, -1]);
          oldKey = leaving(state.keys!);
          oldValue = leaving(state.values!);
        }
        if (this.hasKv) {
          // Scores against every slot; RoPE by relative distance: (R(t) q)·(R(j) k) = (R(t - j) q)·k.
          let qs: tf.Tensor;
          if (c.rope) {
            const swapped = tf.reshape(tf.matMul(tf.reshape(q, [B, H * K]), c.swap!), [B, H, 1, K]);
            qs = tf.add(tf.mul(tf.expandDims(q, 2), c.rope[0]), tf.mul(swapped, c.rope[1])); // [B, H, S, K]
          } else qs = tf.expandDims(tf.mul(q, 1 / Math.sqrt(K)), 2);
          const scores = tf.sum(tf.mul(qs, next.keys), -1); // [B, H, S]
          // Slot i is visible when its distance S - 1 - i ≤ the limit (mask from the position counter).
          const hidden = tf.step(tf.sub(c.distHalf, tf.reshape(this.kvLimit(pos), [B, 1]))); // [B, S]
          const masked = tf.add(scores, tf.reshape(tf.mul(hidden, NEG_INF), [B, 1, S]));
          const probs = tf.reshape(tf.softmax(masked), [B * H, 1, S]);
          if (seen) seen.attention = tf.reshape(probs, [B, H, S]);
          kvRead = tf.reshape(tf.matMul(probs, tf.reshape(next.values, [B * H, S, V])), [B, H, V]);
        }
      }

      let fwRead: tf.Tensor | null = null;
      if (this.hasFw) {
        const fq = phis[0]!; // [B, H, K]
        if (o.blend === 'synchronous-linear') {
          const fk = phis[1]!;
          const w = tf.add(kept(state.fw!), tf.mul(tf.expandDims(v, 3), tf.expandDims(fk, 2)));
          const z = tf.add(kept(state.z!), fk);
          next.fw = w;
          next.z = z;
          const den = tf.add(tf.sum(tf.mul(z, fq), -1, true), 1e-6);
          fwRead = tf.div(tf.sum(tf.mul(w, tf.expandDims(fq, 2)), -1), den);
        } else {
          // Products of W [BH, V, K] with stacked key columns in one batched matMul.
          // (Rows [BH, n, K] against Wᵀ: stacking or unstacking a last axis of 1 is slow on wasm.)
          const times = (w: tf.Tensor, cols: tf.Tensor[]) => {
            const rows = tf.reshape(tf.stack(cols, 2), [B * H, cols.length, K]);
            return tf.unstack(tf.reshape(tf.matMul(rows, tf.reshape(w, [B * H, V, K]), false, true), [B, H, cols.length, V]), 2);
          };
          // Delta-rule write of (key, value) into w, and the read of fq from the written state:
          // W' = W + δ φ(k)ᵀ with δ = β (v − W φ(k)), so W' φ(q) = W φ(q) + δ (φ(k)·φ(q)).
          const writeRead = (w: tf.Tensor, key: tf.Tensor, value: tf.Tensor, read: boolean) => {
            const fk = key === k ? phis[1]! : this.phi(key);
            const prods = times(w, read ? [fk, fq] : [fk]);
            const delta = tf.mul(tf.expandDims(beta!, 2), tf.sub(value, prods[0]!));
            const written = tf.add(w, tf.mul(tf.expandDims(delta, 3), tf.expandDims(fk, 2)));
            const out = read ? tf.add(prods[1]!, tf.mul(delta, tf.sum(tf.mul(fk, fq), -1, true))) : null;
            return { written, out };
          };
          let raw: tf.Tensor;
          if (o.blend === 'delayed-chunk') {
            // `fwPending` accumulates the current chunk's writes; it becomes the read state when the next chunk
            // starts.
            const fw = kept(state.fw!);
            const pending = kept(state.fwPending!);
            const chunkStart = tf.reshape(eq(tf.mod(pos, S), 0), [B, 1, 1, 1]);
            const readFrom = (next.fw = tf.add(fw, tf.mul(chunkStart, tf.sub(pending, fw))));
            next.fwPending = writeRead(pending, k, v, false).written;
            raw = times(readFrom, [fq])[0]!;
          } else {
            const r = o.blend === 'synchronous' ? writeRead(kept(state.fw!), k, v, true) : writeRead(kept(state.fw!), oldKey!, oldValue!, true);
            next.fw = r.written;
            raw = r.out!;
          }
          fwRead = tf.mul(raw, 1 / Math.sqrt(K));
        }
      }
      if (seen && this.hasFw) {
        // The write of this step: into the pending chunk state for delayed-chunk, else into W itself.
        const key = o.blend === 'delayed-chunk' ? 'fwPending' : 'fw';
        seen.fwUpdate = tf.sqrt(tf.sum(tf.square(tf.sub(next[key]!, kept(state[key]!))), [2, 3]));
      }
      const y = this.output(fwRead, kvRead, mix) as tf.Tensor2D;
      return seen ? { y, state: next, introspection: seen } : { y, state: next };
    });
  }

  /** Whether `forward` runs the FW-memory as one fused kernel (WebGPU; synchronous and delayed-streaming blends). */
  private fusedFw(): boolean {
    const blend = this.options.blend;
    return fusedKernelsActive() && (blend === 'synchronous' || blend === 'delayed-streaming') && deltaRuleFits(this.K, this.V);
  }

  /** Whether `forward` runs the KV-memory as fused kernels (WebGPU; every blend). */
  private fusedKv(): boolean {
    return fusedKernelsActive() && windowAttentionFits(this.K, this.V, this.S, this.options.rope);
  }

  /** The largest visible key distance at position pos (window, or within the current chunk). */
  private kvLimit(pos: tf.Tensor): tf.Tensor {
    return this.options.blend === 'delayed-chunk' ? tf.mod(pos, this.S) : tf.minimum(pos, this.S - 1);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Sequence form

  forward(xs: tf.Tensor3D, state: State, episodeStart: tf.Tensor2D): ForwardResult {
    return tf.tidy(() => {
      const o = this.options;
      const [B, T] = xs.shape;
      if (episodeStart.shape[0] !== B || episodeStart.shape[1] !== T)
        throw new Error(`episodeStart must be [${B}, ${T}] to match xs, got [${episodeStart.shape}]`);
      const fused = fusedKernelsActive();
      const next: State = {};
      let time: TimeInfo;
      if (fused) {
        const { next: counter, ...info } = fusedTimeInfo(episodeStart, state.pos as tf.Tensor1D);
        time = info;
        next.pos = counter;
      } else {
        time = timeInfo(episodeStart, state.pos as tf.Tensor1D);
        next.pos = tf.add(tf.squeeze(tf.slice(time.pos, [0, T - 1], [B, 1]), [1]), 1);
      }

      const proj = linear(xs, this.inputWeight());
      let p: Projected; // q, k [B, T, H, K], v [B, T, H, V], beta [B, T, H]
      if (o.shortConv) {
        // The convolution runs over q, k, v only. One split rather than two slices: its gradient is one concat, the
        // slices' two zero-pads and an add.
        const qkvWidth = 2 * o.keyDim + o.valueDim;
        const [qkv, extra = null] = proj.shape[2] > qkvWidth ? tf.split(proj, [qkvWidth, proj.shape[2] - qkvWidth], 2) : [proj];
        let convolved: tf.Tensor;
        [convolved, next.conv] = this.convSequence(qkv!, state.conv!, time);
        p = this.split(convolved, extra);
      } else p = this.split(proj);

      let buffer: { keys: tf.Tensor; values: tf.Tensor } | null = null;
      // The state's buffer followed by the sequence, [B, S + T, H, *]: the fused kernels need it only for the
      // delayed-streaming write stream.
      const concatenated = () => ({
        keys: tf.concat([tf.transpose(state.keys!, [0, 2, 1, 3]), p.k], 1),
        values: tf.concat([tf.transpose(state.values!, [0, 2, 1, 3]), p.v], 1),
      });
      if (this.hasBuffer && fused) {
        next.keys = fusedBufferTail(state.keys!, p.k, time.seg);
        next.values = fusedBufferTail(state.values!, p.v, time.seg);
        if ((this.hasKv && !this.fusedKv()) || (this.hasFw && o.blend === 'delayed-streaming')) buffer = concatenated();
      } else if (this.hasBuffer) {
        buffer = concatenated();
        const valid = eq(tf.concat([tf.zeros([B, this.S]), time.seg], 1), time.segLast);
        const lastValid = tf.reshape(tf.slice(valid, [0, T], [B, this.S]), [B, this.S, 1, 1]);
        const tail = (t: tf.Tensor) => tf.transpose(tf.mul(tf.slice(t, [0, T, 0, 0], [B, this.S, -1, -1]), lastValid), [0, 2, 1, 3]);
        next.keys = tail(buffer.keys);
        next.values = tail(buffer.values);
      }
      // Large batches rematerialise both memories in the backward pass (see `checkpoint`): their attention scores
      // and chunk intermediates would otherwise stay alive from the forward to the backward, and the wasm heap ends
      // at a few GB. Small ones (PPO minibatches) keep them: rematerialising costs 20–35% more time.
      const block = B * T * this.dim >= HqltLayer.rematMinElements ? checkpoint : runBlock;
      const rope = this.stepConst.rope;
      const kvRead = !this.hasKv
        ? null
        : this.fusedKv()
          ? fusedWindowAttention(
              { q: p.q, k: p.k, v: p.v, ks: state.keys!, vs: state.values!, pos: time.pos, cos: rope?.[0], sin: rope?.[1] },
              o.blend === 'delayed-chunk',
            )
          : block({ q: p.q, keys: buffer!.keys, values: buffer!.values }, { pos: time.pos }, (r) => ({
            read: this.kvSequence(r.q!, r.keys!, r.values!, r.pos!),
          })).read!;
      let fwRead: tf.Tensor | null = null;
      if (this.hasFw && this.fusedFw()) {
        // The fused recurrent kernel (WebGPU): the write stream is the current step's pair, or the pair leaving
        // the window (delayed-streaming, written once pos ≥ S).
        let keys = p.k;
        let values = p.v;
        let beta = p.beta!;
        if (o.blend === 'delayed-streaming') {
          keys = tf.slice(buffer!.keys, [0, 0, 0, 0], [B, T, this.H, this.K]);
          values = tf.slice(buffer!.values, [0, 0, 0, 0], [B, T, this.H, this.V]);
          beta = tf.mul(beta, tf.expandDims(le(this.S, time.pos), 2));
        }
        const r = fusedDeltaRule({ q: p.q, k: keys, v: values, beta, w0: state.fw!, keep: tf.sub(1, episodeStart) });
        fwRead = r.o;
        next.fw = r.wT;
      } else if (this.hasFw) {
        const inputs: TensorRecord = { q: p.q, k: p.k, v: p.v };
        if (p.beta) inputs.beta = p.beta;
        if (buffer) Object.assign(inputs, { bufferKeys: buffer.keys, bufferValues: buffer.values });
        for (const key of ['fw', 'fwPending', 'z']) if (state[key]) inputs[key] = state[key]!;
        const constants = { seg: time.seg, pos: time.pos, segLast: time.segLast };
        const { read, ...fwState } = block(inputs, constants, (r) => {
          const projected: Projected = { q: r.q!, k: r.k!, v: r.v!, beta: r.beta ?? null, mix: null };
          const buf = r.bufferKeys ? { keys: r.bufferKeys, values: r.bufferValues! } : null;
          const fw = this.fwSequence(projected, buf, r, { seg: r.seg!, pos: r.pos!, segLast: r.segLast! } as TimeInfo);
          return { read: fw.read, ...fw.state };
        });
        fwRead = read!;
        Object.assign(next, fwState);
      }
      return { ys: this.output(fwRead, kvRead, p.mix) as tf.Tensor3D, state: next };
    });
  }

  /** Causal depthwise conv over time, [B, T, C], masked so no tap reaches across an episode start. */
  private convSequence(x: tf.Tensor, convState: tf.Tensor, time: TimeInfo): [tf.Tensor, tf.Tensor] {
    const [B, T, C] = x.shape as [number, number, number];
    const lag = CONV_SIZE - 1;
    const ext = tf.concat([convState, x], 1); // [B, 3 + T, C]
    const segExt = tf.concat([tf.zeros([B, lag]), time.seg], 1);
    const taps = this.convTaps();
    let y: tf.Tensor = tf.mul(x, tf.slice(taps, [lag, 0], [1, C]));
    for (let s = 1; s <= lag; s++) {
      const same = eq(tf.slice(segExt, [0, lag - s], [B, T]), time.seg);
      const shifted = tf.mul(tf.slice(ext, [0, lag - s, 0], [B, T, C]), tf.expandDims(same, 2));
      y = tf.add(y, tf.mul(shifted, tf.slice(taps, [lag - s, 0], [1, C])));
    }
    const tailValid = eq(tf.slice(segExt, [0, T], [B, lag]), time.segLast);
    return [y, tf.mul(tf.slice(ext, [0, T, 0], [B, lag, C]), tf.expandDims(tailValid, 2))];
  }

  /**
   * Windowed (or chunk-local) softmax attention, parallel over query blocks of Q steps: block b attends to a
   * window of (m + 1) Q keys ending with itself. keys/values [B, S + T, H, *] start with the state's buffer; pos
   * [B, T] is `TimeInfo.pos`.
   */
  private kvSequence(q: tf.Tensor, keys: tf.Tensor, values: tf.Tensor, pos: tf.Tensor): tf.Tensor {
    const { S, H, K, V } = this;
    const [B, T] = q.shape as [number, number];
    const Q = S <= 16 ? S : S >= 256 ? 64 : 16;
    const m = Math.ceil(S / Q);
    const front = m * Q - S;
    const nb = Math.ceil(T / Q);
    const back = nb * Q - T;
    const Wn = (m + 1) * Q;
    const pad = (t: tf.Tensor, before: number, after: number) => tf.pad(t, [[0, 0], [before, after], [0, 0], [0, 0]]);
    let kExt = pad(keys, front, back); // [B, (nb + m) Q, H, K]
    let qp = pad(q, 0, back);
    if (this.options.rope) {
      // Absolute angles by index in the padded sequence: only differences matter within an episode.
      const [cos, sin] = ropeTables(tf.range(0, (nb + m) * Q), K);
      const at = (t: tf.Tensor) => tf.expandDims(t, 1);
      kExt = applyRope(kExt, at(cos), at(sin));
      qp = applyRope(qp, at(tf.slice(cos, [m * Q, 0], [nb * Q, K])), at(tf.slice(sin, [m * Q, 0], [nb * Q, K])));
    }
    const vExt = pad(values, front, back);
    const kWin = blockWindows(tf.reshape(kExt, [B, nb + m, Q, H, K]), nb, m); // [B, nb, Wn, H, K]
    const vWin = blockWindows(tf.reshape(vExt, [B, nb + m, Q, H, V]), nb, m);
    const kT = tf.reshape(tf.transpose(kWin, [0, 3, 1, 4, 2]), [B * H * nb, K, Wn]);
    const vB = tf.reshape(tf.transpose(vWin, [0, 3, 1, 2, 4]), [B * H * nb, Wn, V]);
    const qB = tf.reshape(tf.transpose(tf.reshape(qp, [B, nb, Q, H, K]), [0, 3, 1, 2, 4]), [B * H * nb, Q, K]);
    const scores = tf.reshape(tf.mul(bmm(qB, kT), 1 / Math.sqrt(K)), [B, H, nb, Q, Wn]);

    // Key w of block b is at distance m Q + i - w from query i.
    const dist = tf.sub(tf.add(tf.expandDims(tf.range(0, Q), 1), m * Q), tf.expandDims(tf.range(0, Wn), 0));
    const limit = tf.reshape(tf.pad(this.kvLimit(pos), [[0, 0], [0, back]]), [B * nb, Q, 1]);
    const visible = tf.mul(le(0, dist), le(tf.expandDims(dist, 0), limit));
    const penalty = tf.reshape(tf.mul(tf.sub(1, visible), NEG_INF), [B, 1, nb, Q, Wn]);
    const masked = tf.add(scores, penalty);
    const probs = tf.reshape(tf.softmax(masked), [B * H * nb, Q, Wn]);
    const out = tf.reshape(bmm(probs, vB), [B, H, nb * Q, V]);
    return tf.slice(tf.transpose(out, [0, 2, 1, 3]), [0, 0, 0, 0], [B, T, H, V]);
  }

  /**
   * Chunkwise FW-memory over the write stream (k_i, v_i, β_i written at step i; delayed-streaming shifts the pairs
   * by S). Chunks of C writes: U = T (β ⊙ (V − g K Wᵀ)) with T = (I + strictly_lower(diag(β) K Kᵀ))⁻¹ restricted
   * to pairs of one episode; states are carried chunk to chunk; reads see the chunk's state plus masked intra-chunk
   * terms. Delayed-chunk reads may look back up to S − 1 writes, so each query chunk reads a window of m + 1
   * chunks and the state before that window.
   */
  private fwSequence(
    p: Projected,
    buffer: { keys: tf.Tensor; values: tf.Tensor } | null,
    state: State,
    time: TimeInfo,
  ): { read: tf.Tensor; state: State } {
    const o = this.options;
    const { S, H, K } = this;
    const [B, T] = p.q.shape as [number, number];
    const linearAttn = o.blend === 'synchronous-linear';
    const chunked = o.blend === 'delayed-chunk';
    const C = FW_CHUNK;
    const m = chunked ? Math.ceil((S - 1) / C) : 0;
    const nb = Math.ceil(T / C);
    const nE = nb + m;
    const back = nb * C - T;
    const BH = B * H;

    // Write stream [B, T, H, *].
    let keys = p.k;
    let values = p.v;
    let beta = p.beta;
    if (o.blend === 'delayed-streaming') {
      keys = tf.slice(buffer!.keys, [0, 0, 0, 0], [B, T, H, K]);
      values = tf.slice(buffer!.values, [0, 0, 0, 0], [B, T, H, this.V]);
      beta = tf.mul(beta!, tf.expandDims(le(S, time.pos), 2));
    }
    if (linearAttn) values = tf.concat([values, tf.ones([B, T, H, 1])], 3); // last row of W carries z
    const Vw = values.shape[3]!;
    const fk = this.phi(keys);
    const fq = this.phi(p.q);

    // Head-major chunks [BH, nE, C, *] of the stream, with m zero chunks in front and zero padding behind.
    const chunks = (t: tf.Tensor, front: number) => {
      const d = t.shape[3]!;
      const padded = tf.pad(t, [[0, 0], [front * C, back], [0, 0], [0, 0]]);
      return tf.reshape(tf.transpose(tf.reshape(padded, [B, (nb + front) * C, H, d]), [0, 2, 1, 3]), [BH, nb + front, C, d]);
    };
    const kC = chunks(fk, m);
    let vC = chunks(values, m);
    // Episode bookkeeping per chunk: seg of the padding behind equals the last step's, so states pass through.
    const segE = tf.concat([tf.zeros([B, m * C]), time.seg, tf.mul(time.segLast, tf.ones([1, back]))], 1);
    const segC = tf.reshape(segE, [B, 1, nE, C]);
    const segEnd = tf.slice(segC, [0, 0, 0, C - 1], [B, 1, nE, 1]); // [B, 1, nE, 1]
    const segBefore = tf.concat([tf.zeros([B, 1, 1, 1]), tf.slice(segEnd, [0, 0, 0, 0], [B, 1, nE - 1, 1])], 2);
    // [B, 1, ...] masks → [BH, ...tail], repeated over heads.
    const headed = (t: tf.Tensor, tail: number[]) =>
      tf.reshape(tf.mul(t, tf.ones([1, H, ...t.shape.slice(2).map(() => 1)])), [BH, ...tail]);
    const lastMask = headed(eq(segC, segEnd), [nE, C, 1]); // writes that reach the chunk's end state
    const carry = headed(eq(segEnd, segBefore), [nE, 1, 1]); // the incoming state survives the chunk

    let U: tf.Tensor; // [BH, nE, C, Vw]
    let Y: tf.Tensor | null = null; // U = X − Y Wᵀ for the delta rule
    if (linearAttn) U = vC;
    else {
      const bCol = chunks(tf.expandDims(beta!, 3), m); // [BH, nE, C, 1]
      const same = headed(eq(tf.expandDims(segC, 4), tf.expandDims(segC, 3)), [nE, C, C]);
      const g = headed(eq(segC, segBefore), [nE, C, 1]);
      const kFlat = tf.reshape(kC, [BH * nE, C, K]);
      const kk = tf.reshape(bmm(kFlat, tf.transpose(kFlat, [0, 2, 1])), [BH, nE, C, C]);
      const strictLower = tf.linalg.bandPart(tf.ones([C, C]), -1, 0).sub(tf.eye(C));
      const A = tf.mul(tf.mul(tf.mul(kk, bCol), same), strictLower);
      const Tm = unitLowerInverse(tf.reshape(A, [BH * nE, C, C]));
      const rhs = tf.concat([tf.mul(bCol, vC), tf.mul(tf.mul(bCol, g), kC)], 3);
      const xy = tf.reshape(bmm(Tm, tf.reshape(rhs, [BH * nE, C, Vw + K])), [BH, nE, C, Vw + K]);
      U = tf.slice(xy, [0, 0, 0, 0], [BH, nE, C, Vw]);
      Y = tf.slice(xy, [0, 0, 0, Vw], [BH, nE, C, K]);
    }

    // Sequential pass over chunks: Wᵀ [BH, K, Vw] before each chunk.
    const stateW = (w: tf.Tensor, z?: tf.Tensor) => {
      const wt = tf.transpose(tf.reshape(w, [BH, -1, K]), [0, 2, 1]);
      return z ? tf.concat([wt, tf.reshape(z, [BH, K, 1])], 2) : wt;
    };
    let wt = stateW(chunked ? state.fwPending! : state.fw!, linearAttn ? state.z : undefined);
    const kmT = tf.transpose(tf.mul(kC, lastMask), [0, 1, 3, 2]); // [BH, nE, K, C]
    const before: tf.Tensor[] = [];
    const uChunks: tf.Tensor[] = [];
    // Unstacked once rather than sliced per chunk: each slice's gradient would be a zero-padded copy of the whole.
    // (Unpack's gradient fails for a single piece.)
    const chunkList = (t: tf.Tensor | null) => (!t ? null : nE === 1 ? [tf.squeeze(t, [1])] : tf.unstack(t, 1));
    const [uList, yList, carryList, kmList] = [U, Y, carry, kmT].map(chunkList);
    for (let i = 0; i < nE; i++) {
      before.push(wt);
      let u = uList![i]!;
      if (yList) u = tf.sub(u, bmm(yList[i]!, wt));
      uChunks.push(u);
      wt = tf.add(tf.mul(wt, carryList![i]!), bmm(kmList![i]!, u));
    }
    const finalWt = wt;
    const Uall = tf.stack(uChunks, 1); // [BH, nE, C, Vw]

    // Reads of query chunk b: state before window chunk b, plus masked writes of chunks b..b+m.
    const qC = tf.reshape(chunks(fq, 0), [BH * nb, C, K]);
    const kWin = tf.reshape(blockWindows(kC, nb, m), [BH * nb, (m + 1) * C, K]);
    const uWin = tf.reshape(blockWindows(Uall, nb, m), [BH * nb, (m + 1) * C, Vw]);
    const segQ = tf.reshape(tf.slice(segC, [0, 0, m, 0], [B, 1, nb, C]), [B, 1, nb, C, 1]);
    const segWin = tf.reshape(blockWindows(tf.reshape(segE, [B, nE, C]), nb, m), [B, 1, nb, 1, (m + 1) * C]);
    const posQ = tf.reshape(tf.pad(time.pos, [[0, 0], [0, back]]), [B, 1, nb, C, 1]);
    const qi = tf.reshape(tf.range(0, C), [C, 1]);
    const dist = tf.sub(tf.add(qi, m * C), tf.reshape(tf.range(0, (m + 1) * C), [1, -1]));
    // Delayed-chunk reads see writes before the current chunk's start (distance > pos mod S); the others j ≤ t.
    const minDist = chunked ? tf.add(tf.mod(posQ, S), 1) : tf.scalar(0);
    const visible = tf.mul(eq(segQ, segWin), le(minDist, dist)); // [B,1,nb,C,W]
    const vis = headed(visible, [nb, C, (m + 1) * C]);
    const scores = tf.mul(tf.reshape(bmm(qC, tf.transpose(kWin, [0, 2, 1])), [BH, nb, C, (m + 1) * C]), vis);
    const intra = bmm(tf.reshape(scores, [BH * nb, C, (m + 1) * C]), uWin);
    const windowStart = tf.reshape(tf.stack(before.slice(0, nb), 1), [BH * nb, K, Vw]);
    let useState = eq(segQ, tf.reshape(tf.slice(segBefore, [0, 0, 0, 0], [B, 1, nb, 1]), [B, 1, nb, 1, 1]));
    let readState: tf.Tensor | null = null; // delayed-chunk: reads in a chunk begun before this call
    if (chunked) {
      const startsBefore = lt(tf.sub(tf.reshape(tf.range(0, nb * C), [1, 1, nb, C, 1]), tf.mod(posQ, S)), 0);
      useState = tf.mul(useState, tf.sub(1, startsBefore));
      readState = headed(startsBefore, [nb, C, 1]);
    }
    let out = tf.add(intra, tf.mul(bmm(qC, windowStart), tf.reshape(headed(useState, [nb, C, 1]), [BH * nb, C, 1])));
    const wRead0 = chunked ? stateW(state.fw!) : null;
    if (readState) {
      const old = bmm(tf.reshape(qC, [BH, nb * C, K]), wRead0!);
      out = tf.add(out, tf.mul(tf.reshape(old, [BH * nb, C, Vw]), tf.reshape(readState, [BH * nb, C, 1])));
    }
    let read = tf.reshape(out, [B, H, nb * C, Vw]);
    read = tf.slice(tf.transpose(read, [0, 2, 1, 3]), [0, 0, 0, 0], [B, T, H, Vw]);

    const toState = (w: tf.Tensor, rows: number) =>
      tf.reshape(tf.transpose(tf.slice(w, [0, 0, 0], [BH, K, rows]), [0, 2, 1]), [B, H, rows, K]);
    const next: State = {};
    if (linearAttn) {
      const [num, den] = tf.split(read, [this.V, 1], 3);
      next.fw = toState(finalWt, this.V);
      next.z = tf.reshape(tf.slice(finalWt, [0, 0, this.V], [BH, K, 1]), [B, H, K]);
      return { read: tf.div(num!, tf.add(den!, 1e-6)), state: next };
    }
    read = tf.mul(read, 1 / Math.sqrt(K));
    if (chunked) {
      // The read state of the last step, materialised the way `out` reads it.
      const lastChunk = nb - 1;
      const lastRow = (T - 1) % C;
      const rowOf = (t: tf.Tensor, cols: number) =>
        tf.reshape(tf.slice(tf.reshape(t, [BH, nb, C, cols]), [0, lastChunk, lastRow, 0], [BH, 1, 1, cols]), [BH, 1, cols]);
      const visLast = rowOf(vis, (m + 1) * C); // [BH, 1, W]
      // The last query chunk's window (chunks lastChunk..lastChunk + m), sliced from the chunk lists rather than
      // from the larger windowed copies (a slice's gradient is a zero-padded copy of its input).
      const lastWindow = (t: tf.Tensor, cols: number) =>
        tf.reshape(tf.slice(t, [0, lastChunk, 0, 0], [BH, m + 1, C, cols]), [BH, (m + 1) * C, cols]);
      const kLast = tf.mul(tf.transpose(lastWindow(kC, K), [0, 2, 1]), visLast);
      const uLast = lastWindow(Uall, Vw);
      const gate = (t: tf.Tensor) => tf.reshape(rowOf(t, 1), [BH, 1, 1]);
      const wRead = tf.add(
        tf.add(bmm(kLast, uLast), tf.mul(before[lastChunk]!, gate(headed(useState, [nb, C, 1])))),
        tf.mul(wRead0!, gate(readState!)),
      );
      next.fw = toState(wRead, this.V);
      next.fwPending = toState(finalWt, this.V);
    } else next.fw = toState(finalWt, this.V);
    return { read, state: next };
  }
}

let nextId = 0;

/** Defaults and checks, with messages that say how to fix the options. */
function validate(options: HqltLayerOptions): Required<HqltLayerOptions> {
  const o: Required<HqltLayerOptions> = {
    keyDim: options.dim,
    valueDim: options.dim,
    memories: 'both',
    ...options,
  } as Required<HqltLayerOptions>;
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`HqltLayer: ${name} must be a positive integer, got ${v}`);
  };
  positiveInt('dim', o.dim);
  positiveInt('heads', o.heads);
  positiveInt('window', o.window);
  positiveInt('keyDim', o.keyDim);
  positiveInt('valueDim', o.valueDim);
  if (o.keyDim % o.heads || o.valueDim % o.heads)
    throw new Error(`HqltLayer: keyDim (${o.keyDim}) and valueDim (${o.valueDim}) must be multiples of heads (${o.heads})`);
  if (!BLENDS.includes(o.blend)) throw new Error(`HqltLayer: blend must be one of ${BLENDS.join(', ')}, got '${o.blend}'`);
  if (!MIXINGS.includes(o.mixing)) throw new Error(`HqltLayer: mixing must be one of ${MIXINGS.join(', ')}, got '${o.mixing}'`);
  if (!['both', 'fw', 'kv'].includes(o.memories))
    throw new Error(`HqltLayer: memories must be 'both', 'fw' or 'kv', got '${o.memories}'`);
  if (o.rope && (o.keyDim / o.heads) % 2)
    throw new Error(`HqltLayer: RoPE needs an even per-head key width, got keyDim/heads = ${o.keyDim / o.heads}`);
  return o;
}

// 0/1 float masks of comparisons between integer-valued float tensors. wasm's broadcasting comparison kernels
// (and Tile) are 10-40x slower than Sub and Step.
type Operand = tf.Tensor | number;
/** 1 where a ≤ b. */
const le = (a: Operand, b: Operand): tf.Tensor => tf.step(tf.sub(tf.add(b, 0.5), a));
/** 1 where a < b. */
const lt = (a: Operand, b: Operand): tf.Tensor => tf.step(tf.sub(tf.sub(b, 0.5), a));
/** 1 where a = b. */
const eq = (a: Operand, b: Operand): tf.Tensor => tf.step(tf.sub(0.5, tf.abs(tf.sub(a, b))));

/** Steps since the episode start and episode ids for a [B, T] 0/1 mask, starting from the state's counter. */
function timeInfo(episodeStart: tf.Tensor2D, pos0: tf.Tensor1D): TimeInfo {
  const [B, T] = episodeStart.shape;
  const seg = tf.cumsum(episodeStart, 1) as tf.Tensor2D;
  // Index of the latest episode start ≤ t (−pos0 when none): a prefix maximum by doubling.
  const idx = tf.expandDims(tf.range(0, T), 0);
  let last: tf.Tensor = tf.add(tf.mul(episodeStart, idx), tf.mul(tf.sub(1, episodeStart), tf.neg(tf.expandDims(pos0, 1))));
  for (let s = 1; s < T; s *= 2)
    last = tf.maximum(last, tf.concat([tf.fill([B, s], NEG_INF), tf.slice(last, [0, 0], [B, T - s])], 1));
  return { seg, pos: tf.sub(idx, last) as tf.Tensor2D, segLast: tf.slice(seg, [0, T - 1], [B, 1]) };
}

/** RoPE tables (cos, and sin signed for the rotate-half swap) for positions p [L]: [L, K]. */
function ropeTables(positions: tf.Tensor, K: number): [tf.Tensor2D, tf.Tensor2D] {
  return tf.tidy(() => {
    const invFreq = tf.pow(ROPE_THETA, tf.div(tf.range(0, K / 2), -K / 2));
    const angles = tf.mul(tf.expandDims(tf.cast(positions, 'float32'), 1), tf.expandDims(invFreq, 0));
    const cos = tf.cos(angles);
    const sin = tf.sin(angles);
    return [tf.concat([cos, cos], 1) as tf.Tensor2D, tf.concat([tf.neg(sin), sin], 1) as tf.Tensor2D];
  });
}

/** x·cos + swap_halves(x)·signedSin over the last axis (rotate-half RoPE); tables broadcast against x. */
function applyRope(x: tf.Tensor, cos: tf.Tensor, signedSin: tf.Tensor): tf.Tensor {
  const [a, b] = tf.split(x, 2, -1);
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([b!, a!], -1), signedSin));
}

/**
 * x [N, nb + m, Q, ...] → [N, nb, (m + 1) Q, ...]: block b followed by the m blocks after it. Slices a rank-3 view
 * (the wasm backend's Slice is very slow above rank 4).
 */
function blockWindows(x: tf.Tensor, nb: number, m: number): tf.Tensor {
  const [N, , Q, ...rest] = x.shape as number[];
  const inner = Q! * rest.reduce((a, b) => a * b, 1);
  const flat = tf.reshape(x, [N!, -1, inner]);
  const parts: tf.Tensor[] = [];
  for (let i = 0; i <= m; i++) parts.push(tf.slice(flat, [0, i, 0], [N!, nb, inner]));
  return tf.reshape(parts.length === 1 ? parts[0]! : tf.concat(parts, 2), [N!, nb, (m + 1) * Q!, ...rest]);
}

/** (I + A)⁻¹ for strictly lower triangular A [N, C, C] (C a power of two): Π_j (I + (−A)^(2^j)), no solve. */
function unitLowerInverse(A: tf.Tensor3D): tf.Tensor3D {
  const C = A.shape[1];
  const eye = tf.eye(C);
  let power: tf.Tensor3D = tf.neg(A);
  let result: tf.Tensor3D = tf.add(eye, power);
  for (let span = 2; span < C; span *= 2) {
    power = bmm(power, power);
    result = bmm(result, tf.add(eye, power));
  }
  return result;
}
