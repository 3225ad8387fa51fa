/**
 * The KV-memory (sliding-window softmax attention, spec "KV-memory") over a sequence: one dispatch forward, two
 * backward. One invocation per (stream, step, head) query row attends over at most S keys (the current step and the
 * S − 1 before it, reaching into the state's key buffer at the start) with an online softmax; key distance d is
 * visible when d ≤ min(pos, S − 1), or d ≤ pos mod S for the delayed-chunk blend. RoPE rotates the query by the
 * distance ((R(t) q)·(R(j) k) = (R(t − j) q)·k), with the layer's tables, which also carry the 1/√K scale.
 *
 * Backward: the query pass recomputes each row's probabilities and writes dq, the log-sum-exp and D = Σ p dp; the
 * key pass walks each key's (at most S) queries and writes dk and dv, for the state's buffer slots too.
 */
import * as tf from '@tensorflow/tfjs';
import { fits, runProgram, type FusedProgram } from './runner.js';
import { lit } from './wgsl.js';

const FORWARD = 'HqltWindowAttention';
const BACKWARD_Q = 'HqltWindowAttentionGradQ';
const BACKWARD_KV = 'HqltWindowAttentionGradKV';
const NT = 64;

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

const BASE_INPUTS = ['q', 'k', 'v', 'ks', 'vs', 'pos'] as const;
const inputNames = (c: Config) => [...BASE_INPUTS, ...(c.rope ? ['cos', 'sin'] : [])];

/** Whether the kernels fit the active device (they use no workgroup memory; the key pass binds the most buffers). */
export function windowAttentionFits(rope: boolean): boolean {
  return fits(0, NT, BASE_INPUTS.length + (rope ? 2 : 0) + 3 + 4);
}

/** WGSL shared by the three programs: layout, visibility and scores. */
function common(c: Config): string {
  const { T, H, K, V, S } = c;
  return /* wgsl */ `
var<private> qv: array<f32, ${K}>;
var<private> b: u32;
var<private> h: u32;

fn rowK(t: u32) -> u32 { return ((b * ${T}u + t) * ${H}u + h) * ${K}u; }
fn rowV(t: u32) -> u32 { return ((b * ${T}u + t) * ${H}u + h) * ${V}u; }
/** Key or value component i of step j (j < 0: the state's buffer slot S + j). */
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
  let p = in_pos[b * ${T}u + t];
  return ${c.chunked ? `p - floor(p / ${lit(S)}) * ${lit(S)}` : `min(p, ${lit(S - 1)})`};
}
fn loadQuery(t: u32) {
  for (var i = 0u; i < ${K}u; i++) { qv[i] = in_q[rowK(t) + i]; }
}
/** Component i of the loaded query rotated by distance d and scaled by 1/√K. */
fn rotated(d: u32, i: u32) -> f32 {
  ${
    c.rope
      ? `let at = (${S - 1}u - d) * ${K}u + i;
  return qv[i] * in_cos[at] + qv[(i + ${K / 2}u) % ${K}u] * in_sin[at];`
      : `return qv[i] * ${lit(1 / Math.sqrt(K))};`
  }
}
/** ∂score/∂q_i for key j at distance d (the transposed rotation applied to the key). */
fn scoreGradQ(j: i32, d: u32, i: u32) -> f32 {
  ${
    c.rope
      ? `let at = (${S - 1}u - d) * ${K}u;
  let o = (i + ${K / 2}u) % ${K}u;
  return in_cos[at + i] * keyAt(j, i) + in_sin[at + o] * keyAt(j, o);`
      : `return keyAt(j, i) * ${lit(1 / Math.sqrt(K))};`
  }
}
fn score(j: i32, d: u32) -> f32 {
  var s = 0.0;
  for (var i = 0u; i < ${K}u; i++) { s += rotated(d, i) * keyAt(j, i); }
  return s;
}
`;
}

/** A program over `rows` rows (one invocation each) with the given body of `fn row(r: u32)`. */
function rowProgram(name: string, c: Config, inputs: string[], outputs: FusedProgram['outputs'], rows: number, body: string): FusedProgram {
  return {
    key: `${name}:${JSON.stringify(c)}`,
    inputs,
    outputs,
    workgroupSize: NT,
    workgroups: Math.ceil(rows / NT),
    source: `${common(c)}
fn row(r: u32) {
${body}
}
fn main(wg: u32, lid: u32) {
  let r = wg * ${NT}u + lid;
  if (r < ${rows}u) { row(r); }
}`,
  };
}

function forwardProgram(c: Config): FusedProgram {
  const { B, T, H, V, S } = c;
  return rowProgram(FORWARD, c, inputNames(c), [{ name: 'o', shape: [B, T, H, V] }], B * T * H, /* wgsl */ `
  b = r / ${T * H}u;
  let t = (r / ${H}u) % ${T}u;
  h = r % ${H}u;
  loadQuery(t);
  let limit = limitAt(t);
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, ${V}>;
  for (var d = 0u; d < ${S}u && f32(d) <= limit; d++) {
    let j = i32(t) - i32(d);
    let s = score(j, d);
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let p = exp(s - mNew);
    l = l * corr + p;
    for (var e = 0u; e < ${V}u; e++) { acc[e] = acc[e] * corr + p * valueAt(j, e); }
    m = mNew;
  }
  for (var e = 0u; e < ${V}u; e++) { out_o[rowV(t) + e] = acc[e] / l; }`);
}

function backwardQProgram(c: Config): FusedProgram {
  const { B, T, H, K, V, S } = c;
  return rowProgram(
    BACKWARD_Q,
    c,
    [...inputNames(c), 'do'],
    [
      { name: 'dq', shape: [B, T, H, K] },
      { name: 'lse', shape: [B, T, H] },
      { name: 'dsum', shape: [B, T, H] },
    ],
    B * T * H,
    /* wgsl */ `
  b = r / ${T * H}u;
  let t = (r / ${H}u) % ${T}u;
  h = r % ${H}u;
  loadQuery(t);
  let limit = limitAt(t);
  var sc: array<f32, ${S}>;
  var dp: array<f32, ${S}>;
  var m = -3.0e38;
  var n = 0u;
  for (var d = 0u; d < ${S}u && f32(d) <= limit; d++) {
    let j = i32(t) - i32(d);
    sc[d] = score(j, d);
    m = max(m, sc[d]);
    var g = 0.0;
    for (var e = 0u; e < ${V}u; e++) { g += in_do[rowV(t) + e] * valueAt(j, e); }
    dp[d] = g;
    n = d + 1u;
  }
  var l = 0.0;
  for (var d = 0u; d < n; d++) { l += exp(sc[d] - m); }
  let lse = m + log(l);
  var D = 0.0;
  for (var d = 0u; d < n; d++) { D += exp(sc[d] - lse) * dp[d]; }
  var dq: array<f32, ${K}>;
  for (var d = 0u; d < n; d++) {
    let ds = exp(sc[d] - lse) * (dp[d] - D);
    let j = i32(t) - i32(d);
    for (var i = 0u; i < ${K}u; i++) { dq[i] += ds * scoreGradQ(j, d, i); }
  }
  for (var i = 0u; i < ${K}u; i++) { out_dq[rowK(t) + i] = dq[i]; }
  let at = (b * ${T}u + t) * ${H}u + h;
  out_lse[at] = lse;
  out_dsum[at] = D;`,
  );
}

function backwardKvProgram(c: Config): FusedProgram {
  const { B, T, H, K, V, S } = c;
  return rowProgram(
    BACKWARD_KV,
    c,
    [...inputNames(c), 'do', 'lse', 'dsum'],
    [
      { name: 'dk', shape: [B, T, H, K] },
      { name: 'dv', shape: [B, T, H, V] },
      { name: 'dks', shape: [B, H, S, K] },
      { name: 'dvs', shape: [B, H, S, V] },
    ],
    B * (S + T) * H,
    /* wgsl */ `
  // Key rows: the state's S buffer slots, then the T steps.
  b = r / ${(S + T) * H}u;
  let j = i32((r / ${H}u) % ${S + T}u) - ${S};
  h = r % ${H}u;
  var kv: array<f32, ${K}>;
  var vv: array<f32, ${V}>;
  for (var i = 0u; i < ${K}u; i++) { kv[i] = keyAt(j, i); }
  for (var e = 0u; e < ${V}u; e++) { vv[e] = valueAt(j, e); }
  var dk: array<f32, ${K}>;
  var dv: array<f32, ${V}>;
  for (var d = 0u; d < ${S}u; d++) {
    let ti = j + i32(d);
    if (ti < 0) { continue; }
    if (ti >= ${T}) { break; }
    let t = u32(ti);
    if (f32(d) > limitAt(t)) { continue; }
    loadQuery(t);
    let at = (b * ${T}u + t) * ${H}u + h;
    let p = exp(score(j, d) - in_lse[at]);
    var g = 0.0;
    for (var e = 0u; e < ${V}u; e++) {
      let x = in_do[rowV(t) + e];
      dv[e] += p * x;
      g += x * vv[e];
    }
    let ds = p * (g - in_dsum[at]);
    for (var i = 0u; i < ${K}u; i++) { dk[i] += ds * rotated(d, i); }
  }
  if (j >= 0) {
    for (var i = 0u; i < ${K}u; i++) { out_dk[rowK(u32(j)) + i] = dk[i]; }
    for (var e = 0u; e < ${V}u; e++) { out_dv[rowV(u32(j)) + e] = dv[e]; }
  } else {
    let slot = (b * ${H}u + h) * ${S}u + u32(${S} + j);
    for (var i = 0u; i < ${K}u; i++) { out_dks[slot * ${K}u + i] = dk[i]; }
    for (var e = 0u; e < ${V}u; e++) { out_dvs[slot * ${V}u + e] = dv[e]; }
  }`,
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
  const kernel = (name: string, make: (c: Config) => FusedProgram) =>
    tf.registerKernel({
      kernelName: name,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const p = make(configOf(inputs, attrs ?? {}));
        const outs = runProgram(backend, p, p.inputs.map((n) => inputs[n]!));
        return outs.length === 1 ? outs[0]! : outs;
      },
    });
  kernel(BACKWARD_Q, backwardQProgram);
  kernel(BACKWARD_KV, backwardKvProgram);
  // One forward kernel per input list (with or without RoPE tables), so each gradient knows what it saved.
  for (const rope of [false, true]) {
    const names = [...BASE_INPUTS, ...(rope ? ['cos', 'sin'] : [])];
    kernel(forwardName(rope), forwardProgram);
    tf.registerGradient({
      kernelName: forwardName(rope),
      inputsToSave: names,
      gradFunc: (dO, saved, attrs) => {
        const named: tf.NamedTensorMap = Object.fromEntries(names.map((n, i) => [n, saved[i]!]));
        const withDo = { ...named, do: dO as tf.Tensor };
        const [dq, lse, dsum] = tf.engine().runKernel(BACKWARD_Q, withDo, attrs) as tf.Tensor[];
        const [dk, dv, dks, dvs] = tf.engine().runKernel(BACKWARD_KV, { ...withDo, lse: lse!, dsum: dsum! }, attrs) as tf.Tensor[];
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
  return tf.engine().runKernel(forwardName('cos' in named), named, { chunked }) as tf.Tensor;
}
