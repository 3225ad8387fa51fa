/**
 * The KV-memory (sliding-window softmax attention, spec "KV-memory") over a sequence: one dispatch forward, two
 * backward. Each query attends over at most S keys (the current step and the S − 1 before it, reaching into the
 * state's key buffer at the start); key distance d is visible when d ≤ min(pos, S − 1), or d ≤ pos mod S for the
 * delayed-chunk blend. RoPE rotates the query by the distance, with the layer's tables (by distance, up to S − 1,
 * scaled by 1/√K); here every row is rotated once, by its offset from a base step of its workgroup (see
 * tiledProgram), since (R(t − b) q)·(R(j − b) k) = (R(t − j) q)·k.
 *
 * Parallel structure: one workgroup per (stream, head, block of NQ rows), one invocation per row. The rows another
 * row pairs with (keys and values for a query; queries, output gradients and softmax statistics for a key) are
 * staged through workgroup memory in chunks of C distances: a chunk covers NQ + C − 1 rows, loaded coalesced, and
 * at distance d every invocation reads the row d away from its own. Tiles hold vec4s, rows padded to an odd number
 * of them, so those reads are free of bank conflicts.
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
/** vec4s per row of width n (zero-padded). */
const vec4s = (n: number) => Math.ceil(n / 4);
/**
 * A row stride in vec4s: odd, so the 8 invocations of a 16-byte shared-memory access phase, reading consecutive
 * rows, hit distinct banks.
 */
const padded = (n: number) => (n % 2 === 0 ? n + 1 : n);
/** Workgroup memory of a tiling: two vec4 row tiles and three per-row scalars (the key pass's statistics). */
const tileBytes = (K: number, V: number, t: Tiling) => 4 * (t.NQ + t.C - 1) * (4 * padded(vec4s(K)) + 4 * padded(vec4s(V)) + 3);

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
 *
 * RoPE: rather than rotating by each distance in the inner loop, every row is rotated once, by its offset from a
 * base step of the workgroup, as it is loaded ((R(t − base) q)·(R(j − base) k) = (R(t − j) q)·k): the inner loops
 * are plain dot products of vec4s, and gradients are rotated back at the end. 1/√K goes with the query side.
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
  // With one slot (S = 1) every distance is 0 and RoPE is the identity (times the tables' 1/√K).
  const rope = c.rope && S > 1;
  return {
    key: `${name}:${JSON.stringify(c)}:${JSON.stringify(t)}`,
    ...io,
    workgroupSize: NQ,
    workgroups: B * H * blocks,
    source: /* wgsl */ `
const K4 = ${vec4s(K)}u;
const V4 = ${vec4s(V)}u;
const KP = ${padded(vec4s(K))}u;
const VP = ${padded(vec4s(V))}u;
var<workgroup> ta: array<vec4<f32>, ${R * padded(vec4s(K))}>;
var<workgroup> tb: array<vec4<f32>, ${R * padded(vec4s(V))}>;
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
fn queryAt(j: i32, i: u32) -> f32 { return in_q[rowK(u32(j)) + i]; }
/** The largest visible key distance of the query at step t. */
fn limitAt(t: u32) -> f32 {
  let p = in_pos[b * ${c.T}u + t];
  return ${c.chunked ? `p - floor(p / ${lit(S)}) * ${lit(S)}` : `min(p, ${lit(S - 1)})`};
}
/** Partner of component i under the RoPE rotation. */
fn pair(i: u32) -> u32 { return (i + ${q2}u) % ${K}u; }
/**
 * (cos, signed sin) of component i rotated by a steps (any sign), without the tables' 1/√K: table row of distance
 * |a| (slot S − 1 − |a|), composed from rows of at most S − 1 when |a| is longer, sin negated for a < 0.
 */
fn rope(a: i32, i: u32) -> vec2<f32> {
${
  rope
    ? `  var cs = vec2<f32>(1.0, 0.0);
  var rest = u32(abs(a));
  while (rest > 0u) {
    let step = min(rest, ${S - 1}u);
    let at = (${S - 1}u - step) * ${K}u + i;
    let c1 = in_cos[at] * ${lit(Math.sqrt(K))};
    let s1 = in_sin[at] * ${lit(Math.sqrt(K))};
    cs = vec2<f32>(cs.x * c1 - cs.y * s1, cs.y * c1 + cs.x * s1);
    rest -= step;
  }
  return vec2<f32>(cs.x, select(cs.y, -cs.y, a < 0));`
    : '  return vec2<f32>(1.0, 0.0);'
}
}
/** Component i (zero past the width) of the key (which = 0) or query (1) of step j, rotated by a steps, times scale. */
fn rotatedAt(j: i32, i: u32, a: i32, scale: f32, which: u32) -> f32 {
  if (i >= ${K}u) { return 0.0; }
  let cs = rope(a, i);
  var x = 0.0;
  var y = 0.0;
  switch (which) {
    case 0u: { x = keyAt(j, i); ${rope ? 'y = keyAt(j, pair(i));' : ''} }
    default: { x = queryAt(j, i); ${rope ? 'y = queryAt(j, pair(i));' : ''} }
  }
  return (x * cs.x + y * cs.y) * scale;
}
fn rotated4(j: i32, c: u32, a: i32, scale: f32, which: u32) -> vec4<f32> {
  return vec4<f32>(rotatedAt(j, 4u * c, a, scale, which), rotatedAt(j, 4u * c + 1u, a, scale, which),
                   rotatedAt(j, 4u * c + 2u, a, scale, which), rotatedAt(j, 4u * c + 3u, a, scale, which));
}
fn valueOr0(j: i32, e: u32) -> f32 { if (e >= ${V}u) { return 0.0; } return valueAt(j, e); }
fn value4(j: i32, c: u32) -> vec4<f32> {
  return vec4<f32>(valueOr0(j, 4u * c), valueOr0(j, 4u * c + 1u), valueOr0(j, 4u * c + 2u), valueOr0(j, 4u * c + 3u));
}
${io.inputs.filter((n) => n === 'do' || n === 'o').map((n) => /* wgsl */ `
/** Elements 4c .. 4c + 3 of the ${n} row at \`at\` (zero past the width). */
fn ${n}Row4(at: u32, c: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) { if (4u * c + k < ${V}u) { r[k] = in_${n}[at + 4u * c + k]; } }
  return r;
}
`).join('')}
/** A gradient g accumulated against rows rotated by a steps, rotated back (R(a)ᵀ g), component i. */
fn unrotate(g: ptr<function, array<vec4<f32>, ${vec4s(K)}>>, a: i32, i: u32) -> f32 {
  let cs = rope(a, i);
  let p = ${rope ? 'pair(i)' : 'i'};
  return (*g)[i / 4u][i % 4u] * cs.x - ${rope ? '(*g)[p / 4u][p % 4u] * cs.y' : '0.0'};
}

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

const INV_SQRT = (c: Config) => lit(1 / Math.sqrt(c.K));

/**
 * Query-side tiles for the chunk from d0: the keys (ta, rotated by their offset from the block's first query t0)
 * and values (tb) of steps lo .. lo + R − 1, lo = t0 − d0 − (C − 1); the query at t0 + lid (rotated by lid) meets
 * distance d at row lid + C − 1 − (d − d0). Rows outside [−S, T) are zero.
 */
function keyTiles(c: Config, t: Tiling): Pick<Parameters<typeof tiledProgram>[5], 'lo' | 'load' | 'row'> {
  const R = t.NQ + t.C - 1;
  const fill = (tile: string, n: number, stride: string, at: string) => /* wgsl */ `
    ${strided('e', R * n, t.NQ)} {
      let j = lo + i32(e / ${n}u);
      var x = vec4<f32>(0.0);
      if (j >= -${c.S} && j < ${c.T}) { x = ${at}; }
      ${tile}[(e / ${n}u) * ${stride} + e % ${n}u] = x;
    }`;
  return {
    lo: `i32(n - lid) - i32(d0) - ${t.C - 1}`,
    load:
      fill('ta', vec4s(c.K), 'KP', `rotated4(j, e % K4, j - i32(n - lid), 1.0, 0u)`) +
      fill('tb', vec4s(c.V), 'VP', `value4(j, e % V4)`),
    row: `lid + ${t.C - 1}u - dd`,
  };
}

/** The prologue line loading this invocation's query, rotated by lid and scaled by 1/√K. */
const loadQuery = (c: Config) => `for (var i = 0u; i < K4; i++) { qv[i] = rotated4(i32(n), i, i32(lid), ${INV_SQRT(c)}, 1u); }`;

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
  var qv: array<vec4<f32>, ${vec4s(K)}>;
  var acc: array<vec4<f32>, ${vec4s(V)}>;
  var m = -3.0e38;
  var l = 0.0;
  var limit = -1.0;
  if (live) {
    limit = limitAt(n);
    ${loadQuery(c)}
  }`,
      visible: 'f32(d) <= limit',
      body: /* wgsl */ `
        var s = 0.0;
        for (var i = 0u; i < K4; i++) { s += dot(qv[i], ta[r * KP + i]); }
        let mNew = max(m, s);
        let corr = exp(m - mNew);
        let p = exp(s - mNew);
        l = l * corr + p;
        for (var e = 0u; e < V4; e++) { acc[e] = acc[e] * corr + p * tb[r * VP + e]; }
        m = mNew;`,
      epilogue: /* wgsl */ `
    for (var e = 0u; e < ${V}u; e++) { out_o[rowV(n) + e] = acc[e / 4u][e % 4u] / l; }
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
  var qv: array<vec4<f32>, ${vec4s(K)}>;
  var dov: array<vec4<f32>, ${vec4s(V)}>;
  var dq: array<vec4<f32>, ${vec4s(K)}>;
  var limit = -1.0;
  var lse = 0.0;
  // D = Σ_d p_d (dO·v_d) = dO·O.
  var D = 0.0;
  if (live) {
    limit = limitAt(n);
    lse = in_lse[stat(n)];
    ${loadQuery(c)}
    for (var e = 0u; e < V4; e++) {
      dov[e] = doRow4(rowV(n), e);
      D += dot(dov[e], oRow4(rowV(n), e));
    }
  }`,
      visible: 'f32(d) <= limit',
      body: /* wgsl */ `
        var s = 0.0;
        for (var i = 0u; i < K4; i++) { s += dot(qv[i], ta[r * KP + i]); }
        var g = 0.0;
        for (var e = 0u; e < V4; e++) { g += dot(dov[e], tb[r * VP + e]); }
        let ds = exp(s - lse) * (g - D);
        for (var i = 0u; i < K4; i++) { dq[i] += ds * ta[r * KP + i]; }`,
      // ∂s/∂q = R(lid)ᵀ (rotated key) / √K.
      epilogue: /* wgsl */ `
    for (var i = 0u; i < ${K}u; i++) { out_dq[rowK(n) + i] = unrotate(&dq, i32(lid), i) * ${INV_SQRT(c)}; }
    out_dsum[stat(n)] = D;`,
    },
  );
}

function backwardKvProgram(c: Config, t: Tiling): FusedProgram {
  const { B, T, H, K, V, S } = c;
  const R = t.NQ + t.C - 1;
  // Key rows n = j + S: the state's S buffer slots (j < 0), then the T steps. Tiles for the chunk from d0: queries
  // (ta), output gradients (tb), limit (tx), log-sum-exp (ty) and D (tz) of steps lo .. lo + R − 1, lo = j0 + d0; the
  // key j0 + lid meets distance d at row lid + (d − d0). Steps outside [0, T) get limit −1: never visible. RoPE
  // base: the block's last key j0 + NQ − 1 (offsets stay within ±(S − 1) when NQ ≤ S).
  const base = `(i32(n - lid) - ${S} + ${t.NQ - 1})`;
  const fill = (tile: string, n: number, stride: string, at: string) => /* wgsl */ `
    ${strided('e', R * n, t.NQ)} {
      let s = lo + i32(e / ${n}u);
      var x = vec4<f32>(0.0);
      if (s >= 0 && s < ${T}) { x = ${at}; }
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
      load: /* wgsl */ `${fill('ta', vec4s(K), 'KP', `rotated4(s, e % K4, s - ${base}, ${INV_SQRT(c)}, 1u)`)}${fill('tb', vec4s(V), 'VP', 'doRow4(rowV(u32(s)), e % V4)')}
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
  let a = i32(lid) - ${t.NQ - 1};
  var kv: array<vec4<f32>, ${vec4s(K)}>;
  var vv: array<vec4<f32>, ${vec4s(V)}>;
  var dk: array<vec4<f32>, ${vec4s(K)}>;
  var dv: array<vec4<f32>, ${vec4s(V)}>;
  if (live) {
    for (var i = 0u; i < K4; i++) { kv[i] = rotated4(j, i, a, 1.0, 0u); }
    for (var e = 0u; e < V4; e++) { vv[e] = value4(j, e); }
  }`,
      visible: 'f32(d) <= tx[r]',
      body: /* wgsl */ `
        var s = 0.0;
        for (var i = 0u; i < K4; i++) { s += dot(ta[r * KP + i], kv[i]); }
        let p = exp(s - ty[r]);
        var g = 0.0;
        for (var e = 0u; e < V4; e++) {
          let x = tb[r * VP + e];
          dv[e] += p * x;
          g += dot(x, vv[e]);
        }
        let ds = p * (g - tz[r]);
        for (var i = 0u; i < K4; i++) { dk[i] += ds * ta[r * KP + i]; }`,
      // ∂s/∂k = R(a)ᵀ (rotated, scaled query).
      epilogue: /* wgsl */ `
    if (j >= 0) {
      for (var i = 0u; i < ${K}u; i++) { out_dk[rowK(u32(j)) + i] = unrotate(&dk, a, i); }
      for (var e = 0u; e < ${V}u; e++) { out_dv[rowV(u32(j)) + e] = dv[e / 4u][e % 4u]; }
    } else {
      let slot = (b * ${H}u + h) * ${S}u + u32(${S} + j);
      for (var i = 0u; i < ${K}u; i++) { out_dks[slot * ${K}u + i] = unrotate(&dk, a, i); }
      for (var e = 0u; e < ${V}u; e++) { out_dvs[slot * ${V}u + e] = dv[e / 4u][e % 4u]; }
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
