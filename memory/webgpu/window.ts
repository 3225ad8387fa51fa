/**
 * The KV-memory (sliding-window softmax attention, spec "KV-memory") over a sequence: one dispatch forward, two
 * backward. Each query attends over at most S keys (the current step and the S − 1 before it, reaching into the
 * state's key buffer at the start); key distance d is visible when d ≤ min(pos, S − 1), or d ≤ pos mod S for the
 * delayed-chunk blend. RoPE rotates the query by the distance ((R(t) q)·(R(j) k) = (R(t − j) q)·k), with the
 * layer's tables, which also carry the 1/√K scale.
 *
 * Parallel structure: one workgroup per (stream, head, block of NQ rows), one invocation per row. The rows another
 * row pairs with (keys and values for a query; queries, output gradients and softmax statistics for a key) are
 * staged through workgroup memory in chunks of C distances: a chunk covers NQ + C − 1 rows, loaded coalesced, and
 * at distance d every invocation reads the row d away from its own. Rows are padded to an odd stride, so those
 * reads are free of bank conflicts, and the RoPE table row of d is the same for the whole workgroup (a broadcast).
 *
 * Backward (FlashAttention's): the forward also writes each query's log-sum-exp; the query pass computes
 * D = dO·O and dq, the key pass walks each key's queries for dk and dv (for the state's buffer slots too).
 */
import * as tf from '@tensorflow/tfjs';
import { fits, registerProgramKernel, webgpuLimits, type FusedProgram } from './runner.js';
import { lit, strided } from './wgsl.js';

const FORWARD = 'HqltWindowAttention';
const BACKWARD_Q = 'HqltWindowAttentionGradQ';
const BACKWARD_KV = 'HqltWindowAttentionGradKV';

/** Inputs: q, k [B, T, H, K], v [B, T, H, V], the state's buffers ks [B, H, S, K], vs [B, H, S, V], pos [B, T]. */
export interface WindowAttentionInputs {
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  ks: tf.Tensor;
  vs: tf.Tensor;
  pos: tf.Tensor;
  /** RoPE tables by buffer slot (distance S − 1 − slot): cos and signed sin, scaled by 1/√K, [S, K]. */
  cos?: tf.Tensor;
  sin?: tf.Tensor;
}

interface Config {
  B: number;
  T: number;
  H: number;
  K: number;
  V: number;
  S: number;
  rope: boolean;
  /** Delayed-chunk: keys of the current chunk only. */
  chunked: boolean;
}

/** Rows per workgroup (one invocation each) and distances per staged chunk. */
interface Tiling {
  NQ: number;
  C: number;
}

const BASE_INPUTS = ['q', 'k', 'v', 'ks', 'vs', 'pos'] as const;
const inputNames = (c: Pick<Config, 'rope'>) => [...BASE_INPUTS, ...(c.rope ? ['cos', 'sin'] : [])];
/** An odd row stride: with it, invocations reading consecutive rows hit distinct banks. */
const padded = (n: number) => (n % 2 === 0 ? n + 1 : n);
/** Workgroup memory of a tiling: two row tiles and three per-row scalars (the key pass's statistics). */
const tileBytes = (K: number, V: number, t: Tiling) => 4 * (t.NQ + t.C - 1) * (padded(K) + padded(V) + 3);

/** The largest tiling that fits the device (more rows per workgroup first, then longer chunks), or null. */
function tilingFor(K: number, V: number, S: number): Tiling | null {
  const limit = webgpuLimits()?.maxComputeWorkgroupStorageSize ?? 0;
  for (const NQ of [64, 32])
    for (const C of [32, 16, 8, 4, 2, 1]) {
      if (C > Math.max(S, 1) && C > 1) continue;
      if (tileBytes(K, V, { NQ, C }) <= limit) return { NQ, C };
    }
  return null;
}

/** Whether the kernels fit the active device (the key pass binds the most buffers). */
export function windowAttentionFits(K: number, V: number, S: number, rope: boolean): boolean {
  const t = tilingFor(K, V, S);
  return t !== null && fits(tileBytes(K, V, t), t.NQ, inputNames({ rope }).length + 3 + 4);
}

/**
 * WGSL of a tiled pass over `rows` rows per (stream, head). `load` fills the tiles for the chunk of distances
 * starting at d0 (rows from `lo`), `body` runs for each visible distance d with `r`, its tile row.
 */
function tiledProgram(
  name: string,
  c: Config,
  t: Tiling,
  io: { inputs: string[]; outputs: FusedProgram['outputs'] },
  rows: number,
  parts: { prologue: string; lo: string; load: string; row: string; visible: string; body: string; epilogue: string },
): FusedProgram {
  const { B, H, K, V, S } = c;
  const { NQ, C } = t;
  const R = NQ + C - 1;
  const blocks = Math.ceil(rows / NQ);
  const q2 = Math.floor(K / 2); // (RoPE needs an even K; pair() is unused otherwise)
  return {
    key: `${name}:${JSON.stringify(c)}:${JSON.stringify(t)}`,
    ...io,
    workgroupSize: NQ,
    workgroups: B * H * blocks,
    source: /* wgsl */ `
const KP = ${padded(K)}u;
const VP = ${padded(V)}u;
var<workgroup> ta: array<f32, ${R * padded(K)}>;
var<workgroup> tb: array<f32, ${R * padded(V)}>;
var<workgroup> tx: array<f32, ${R}>;
var<workgroup> ty: array<f32, ${R}>;
var<workgroup> tz: array<f32, ${R}>;
var<private> b: u32;
var<private> h: u32;

fn rowK(t: u32) -> u32 { return ((b * ${c.T}u + t) * ${H}u + h) * ${K}u; }
fn rowV(t: u32) -> u32 { return ((b * ${c.T}u + t) * ${H}u + h) * ${V}u; }
fn stat(t: u32) -> u32 { return (b * ${c.T}u + t) * ${H}u + h; }
/** Key or value component i of step j (j < 0: the state's buffer slot S + j; callers keep -S <= j < T). */
fn keyAt(j: i32, i: u32) -> f32 {
  if (j >= 0) { return in_k[rowK(u32(j)) + i]; }
  return in_ks[((b * ${H}u + h) * ${S}u + u32(${S} + j)) * ${K}u + i];
}
fn valueAt(j: i32, i: u32) -> f32 {
  if (j >= 0) { return in_v[rowV(u32(j)) + i]; }
  return in_vs[((b * ${H}u + h) * ${S}u + u32(${S} + j)) * ${V}u + i];
}
/** The largest visible key distance of the query at step t. */
fn limitAt(t: u32) -> f32 {
  let p = in_pos[b * ${c.T}u + t];
  return ${c.chunked ? `p - floor(p / ${lit(S)}) * ${lit(S)}` : `min(p, ${lit(S - 1)})`};
}
/** Partner of component i under the RoPE rotation. */
fn pair(i: u32) -> u32 { return (i + ${q2}u) % ${K}u; }

fn main(wg: u32, lid: u32) {
  b = wg / ${H * blocks}u;
  h = (wg / ${blocks}u) % ${H}u;
  let n = (wg % ${blocks}u) * ${NQ}u + lid;
  let live = n < ${rows}u;
${parts.prologue}
  for (var d0 = 0u; d0 < ${S}u; d0 += ${C}u) {
    let lo = ${parts.lo};
    workgroupBarrier();
${parts.load}
    workgroupBarrier();
    for (var dd = 0u; dd < ${C}u; dd++) {
      let d = d0 + dd;
      let r = ${parts.row};
      // (S - 1 - d) is the RoPE table row of distance d; the same for the whole workgroup.
      let at = (${S - 1}u - min(d, ${S - 1}u)) * ${K}u;
      if (live && d < ${S}u && ${parts.visible}) {
${parts.body}
      }
    }
  }
  if (live) {
${parts.epilogue}
  }
}`,
  };
}

/** WGSL for component i of the query `q(i)` rotated by the distance of table row `at` (scaled by 1/√K). */
function rotated(c: Config, q: (i: string) => string): string {
  return c.rope ? `(${q('i')} * in_cos[at + i] + ${q('pair(i)')} * in_sin[at + i])` : `(${q('i')} * ${lit(1 / Math.sqrt(c.K))})`;
}

/** WGSL for ∂score/∂q_i given the key `k(i)`: the transposed rotation applied to the key. */
function scoreGradQ(c: Config, k: (i: string) => string): string {
  return c.rope
    ? `(in_cos[at + i] * ${k('i')} + in_sin[at + pair(i)] * ${k('pair(i)')})`
    : `(${k('i')} * ${lit(1 / Math.sqrt(c.K))})`;
}

/**
 * Query-side tiles for the chunk from d0: the keys (ta) and values (tb) of steps lo .. lo + R − 1, lo = t0 − d0 −
 * (C − 1); the query at t0 + lid meets distance d at row lid + C − 1 − (d − d0). Rows outside [−S, T) are zero.
 */
function keyTiles(c: Config, t: Tiling): Pick<Parameters<typeof tiledProgram>[5], 'lo' | 'load' | 'row'> {
  const R = t.NQ + t.C - 1;
  const fill = (tile: string, n: number, stride: string, at: string) => /* wgsl */ `
    ${strided('e', R * n, t.NQ)} {
      let j = lo + i32(e / ${n}u);
      var x = 0.0;
      if (j >= -${c.S} && j < ${c.T}) { x = ${at}(j, e % ${n}u); }
      ${tile}[(e / ${n}u) * ${stride} + e % ${n}u] = x;
    }`;
  return {
    lo: `i32(n - lid) - i32(d0) - ${t.C - 1}`,
    load: fill('ta', c.K, 'KP', 'keyAt') + fill('tb', c.V, 'VP', 'valueAt'),
    row: `lid + ${t.C - 1}u - dd`,
  };
}

function forwardProgram(c: Config, t: Tiling): FusedProgram {
  const { B, T, H, K, V } = c;
  return tiledProgram(
    FORWARD,
    c,
    t,
    { inputs: inputNames(c), outputs: [{ name: 'o', shape: [B, T, H, V] }, { name: 'lse', shape: [B, T, H] }] },
    T,
    {
      ...keyTiles(c, t),
      prologue: /* wgsl */ `
  var qv: array<f32, ${K}>;
  var acc: array<f32, ${V}>;
  var m = -3.0e38;
  var l = 0.0;
  var limit = -1.0;
  if (live) {
    limit = limitAt(n);
    for (var i = 0u; i < ${K}u; i++) { qv[i] = in_q[rowK(n) + i]; }
  }`,
      visible: 'f32(d) <= limit',
      body: /* wgsl */ `
        var s = 0.0;
        for (var i = 0u; i < ${K}u; i++) { s += ${rotated(c, (i) => `qv[${i}]`)} * ta[r * KP + i]; }
        let mNew = max(m, s);
        let corr = exp(m - mNew);
        let p = exp(s - mNew);
        l = l * corr + p;
        for (var e = 0u; e < ${V}u; e++) { acc[e] = acc[e] * corr + p * tb[r * VP + e]; }
        m = mNew;`,
      epilogue: /* wgsl */ `
    for (var e = 0u; e < ${V}u; e++) { out_o[rowV(n) + e] = acc[e] / l; }
    out_lse[stat(n)] = m + log(l);`,
    },
  );
}

function backwardQProgram(c: Config, t: Tiling): FusedProgram {
  const { B, T, H, K, V } = c;
  return tiledProgram(
    BACKWARD_Q,
    c,
    t,
    {
      inputs: [...inputNames(c), 'do', 'o', 'lse'],
      outputs: [
        { name: 'dq', shape: [B, T, H, K] },
        { name: 'dsum', shape: [B, T, H] },
      ],
    },
    T,
    {
      ...keyTiles(c, t),
      prologue: /* wgsl */ `
  var qv: array<f32, ${K}>;
  var dov: array<f32, ${V}>;
  var dq: array<f32, ${K}>;
  var limit = -1.0;
  var lse = 0.0;
  // D = Σ_d p_d (dO·v_d) = dO·O.
  var D = 0.0;
  if (live) {
    limit = limitAt(n);
    lse = in_lse[stat(n)];
    for (var i = 0u; i < ${K}u; i++) { qv[i] = in_q[rowK(n) + i]; }
    for (var e = 0u; e < ${V}u; e++) {
      dov[e] = in_do[rowV(n) + e];
      D += dov[e] * in_o[rowV(n) + e];
    }
  }`,
      visible: 'f32(d) <= limit',
      body: /* wgsl */ `
        var s = 0.0;
        for (var i = 0u; i < ${K}u; i++) { s += ${rotated(c, (i) => `qv[${i}]`)} * ta[r * KP + i]; }
        var g = 0.0;
        for (var e = 0u; e < ${V}u; e++) { g += dov[e] * tb[r * VP + e]; }
        let ds = exp(s - lse) * (g - D);
        for (var i = 0u; i < ${K}u; i++) { dq[i] += ds * ${scoreGradQ(c, (i) => `ta[r * KP + ${i}]`)}; }`,
      epilogue: /* wgsl */ `
    for (var i = 0u; i < ${K}u; i++) { out_dq[rowK(n) + i] = dq[i]; }
    out_dsum[stat(n)] = D;`,
    },
  );
}

function backwardKvProgram(c: Config, t: Tiling): FusedProgram {
  const { B, T, H, K, V, S } = c;
  const R = t.NQ + t.C - 1;
  // Key rows n = j + S: the state's S buffer slots (j < 0), then the T steps. Tiles for the chunk from d0: queries
  // (ta), output gradients (tb), limit (tx), log-sum-exp (ty) and D (tz) of steps lo .. lo + R − 1, lo = j0 + d0; the
  // key j0 + lid meets distance d at row lid + (d − d0). Steps outside [0, T) get limit −1: never visible.
  const fill = (tile: string, n: number, stride: string, input: string, row: string) => /* wgsl */ `
    ${strided('e', R * n, t.NQ)} {
      let s = lo + i32(e / ${n}u);
      var x = 0.0;
      if (s >= 0 && s < ${T}) { x = in_${input}[${row}(u32(s)) + e % ${n}u]; }
      ${tile}[(e / ${n}u) * ${stride} + e % ${n}u] = x;
    }`;
  return tiledProgram(
    BACKWARD_KV,
    c,
    t,
    {
      inputs: [...inputNames(c), 'do', 'lse', 'dsum'],
      outputs: [
        { name: 'dk', shape: [B, T, H, K] },
        { name: 'dv', shape: [B, T, H, V] },
        { name: 'dks', shape: [B, H, S, K] },
        { name: 'dvs', shape: [B, H, S, V] },
      ],
    },
    S + T,
    {
      lo: `i32(n - lid) - ${S} + i32(d0)`,
      load: /* wgsl */ `${fill('ta', K, 'KP', 'q', 'rowK')}${fill('tb', V, 'VP', 'do', 'rowV')}
    ${strided('e', R, t.NQ)} {
      let s = lo + i32(e);
      var lim = -1.0;
      var lse = 0.0;
      var D = 0.0;
      if (s >= 0 && s < ${T}) {
        lim = limitAt(u32(s));
        lse = in_lse[stat(u32(s))];
        D = in_dsum[stat(u32(s))];
      }
      tx[e] = lim;
      ty[e] = lse;
      tz[e] = D;
    }`,
      row: 'lid + dd',
      prologue: /* wgsl */ `
  let j = i32(n) - ${S};
  var kv: array<f32, ${K}>;
  var vv: array<f32, ${V}>;
  var dk: array<f32, ${K}>;
  var dv: array<f32, ${V}>;
  if (live) {
    for (var i = 0u; i < ${K}u; i++) { kv[i] = keyAt(j, i); }
    for (var e = 0u; e < ${V}u; e++) { vv[e] = valueAt(j, e); }
  }`,
      visible: 'f32(d) <= tx[r]',
      body: /* wgsl */ `
        var s = 0.0;
        for (var i = 0u; i < ${K}u; i++) { s += ${rotated(c, (i) => `ta[r * KP + ${i}]`)} * kv[i]; }
        let p = exp(s - ty[r]);
        var g = 0.0;
        for (var e = 0u; e < ${V}u; e++) {
          let x = tb[r * VP + e];
          dv[e] += p * x;
          g += x * vv[e];
        }
        let ds = p * (g - tz[r]);
        for (var i = 0u; i < ${K}u; i++) { dk[i] += ds * ${rotated(c, (i) => `ta[r * KP + ${i}]`)}; }`,
      epilogue: /* wgsl */ `
    if (j >= 0) {
      for (var i = 0u; i < ${K}u; i++) { out_dk[rowK(u32(j)) + i] = dk[i]; }
      for (var e = 0u; e < ${V}u; e++) { out_dv[rowV(u32(j)) + e] = dv[e]; }
    } else {
      let slot = (b * ${H}u + h) * ${S}u + u32(${S} + j);
      for (var i = 0u; i < ${K}u; i++) { out_dks[slot * ${K}u + i] = dk[i]; }
      for (var e = 0u; e < ${V}u; e++) { out_dvs[slot * ${V}u + e] = dv[e]; }
    }`,
    },
  );
}

function configOf(inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap): Config {
  const [B, T, H, K] = inputs.q!.shape as number[];
  return { B: B!, T: T!, H: H!, K: K!, V: inputs.v!.shape[3]!, S: inputs.ks!.shape[2]!, rope: 'cos' in inputs, chunked: attrs.chunked === true };
}

let registered = false;

function register(): void {
  if (registered) return;
  registered = true;
  const kernel = (name: string, make: (c: Config, t: Tiling) => FusedProgram) =>
    registerProgramKernel(name, (inputs, attrs) => {
      const c = configOf(inputs, attrs);
      const tiling = tilingFor(c.K, c.V, c.S);
      if (!tiling) throw new Error(`${name}: no tiling fits the device for K=${c.K} V=${c.V} (check windowAttentionFits)`);
      return make(c, tiling);
    });
  kernel(BACKWARD_Q, backwardQProgram);
  kernel(BACKWARD_KV, backwardKvProgram);
  // One forward kernel per input list (with or without RoPE tables), so each gradient knows what it saved.
  for (const rope of [false, true]) {
    const names = inputNames({ rope });
    kernel(forwardName(rope), forwardProgram);
    tf.registerGradient({
      kernelName: forwardName(rope),
      inputsToSave: names,
      outputsToSave: [true, true],
      gradFunc: (dys, saved, attrs) => {
        const named: tf.NamedTensorMap = Object.fromEntries(names.map((n, i) => [n, saved[i]!]));
        const [o, lse] = saved.slice(names.length);
        const withDo = { ...named, do: (dys as tf.Tensor[])[0]! };
        const [dq, dsum] = tf.engine().runKernel(BACKWARD_Q, { ...withDo, o: o!, lse: lse! }, attrs) as tf.Tensor[];
        const [dk, dv, dks, dvs] = tf.engine().runKernel(BACKWARD_KV, { ...withDo, lse: lse!, dsum: dsum! }, attrs) as tf.Tensor[];
        dsum!.dispose();
        const grads: Record<string, () => tf.Tensor> = { q: () => dq!, k: () => dk!, v: () => dv!, ks: () => dks!, vs: () => dvs! };
        // Positions and RoPE tables are constants.
        for (const n of names) grads[n] ??= () => tf.zerosLike(named[n]!);
        return grads;
      },
    });
  }
}

const forwardName = (rope: boolean) => (rope ? `${FORWARD}Rope` : FORWARD);

/** Window attention reads [B, T, H, V] (WebGPU only; check `windowAttentionFits` first). */
export function fusedWindowAttention(inputs: WindowAttentionInputs, chunked: boolean): tf.Tensor {
  register();
  const named: tf.NamedTensorMap = { q: inputs.q, k: inputs.k, v: inputs.v, ks: inputs.ks, vs: inputs.vs, pos: inputs.pos };
  if (inputs.cos && inputs.sin) Object.assign(named, { cos: inputs.cos, sin: inputs.sin });
  const [o, lse] = tf.engine().runKernel(forwardName('cos' in named), named, { chunked }) as tf.Tensor[];
  // The gradient keeps its own reference to the log-sum-exp.
  lse!.dispose();
  return o!;
}
