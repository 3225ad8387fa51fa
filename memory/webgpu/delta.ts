/**
 * The FW-memory (DeltaNet fast weights, spec "FW-memory") over a sequence in one dispatch forward and one backward,
 * as a fused recurrent kernel: one workgroup per (stream, head) keeps that head's V×K matrix W, one row per
 * invocation in registers where a sweep touches W by rows only, in workgroup memory where it also needs columns,
 * and walks the sequence step by step (reading after writing, as the synchronous blend; the delayed-streaming blend
 * passes its shifted write stream). φ (L2-normalised SiLU) of queries and keys is applied inside.
 *
 * Per step t, with keep_t = 0 at an episode start:  u = keep W φ(k),  δ = β (v − u),  W ← keep W + δ φ(k)ᵀ,
 * o = W φ(q) / √K.  The backward pass needs no stored states: a forward sweep recomputes every δ_t, a reverse sweep
 * carries dW (which does not depend on W) and yields dδ_t, dv_t and the dW·δ part of dφ(k_t), and a second forward
 * sweep rebuilds W to add the W-dependent parts of dφ(k_t), dφ(q_t) and dβ_t, then chains through φ.
 */
import * as tf from '@tensorflow/tfjs';
import { fits, registerProgramKernel, type FusedProgram } from './runner.js';
import { ACTIVATIONS, lit, strided, workgroupFor } from './wgsl.js';

const FORWARD = 'HqltDeltaRule';
const BACKWARD = 'HqltDeltaRuleGrad';

/** Sizes of one delta-rule sequence. */
interface Dims {
  B: number;
  T: number;
  H: number;
  K: number;
  V: number;
}

/** Inputs: q, k [B, T, H, K] (before φ), v [B, T, H, V], β [B, T, H], W₀ [B, H, V, K], keep [B, T] (0 at starts). */
export interface DeltaRuleInputs {
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  beta: tf.Tensor;
  w0: tf.Tensor;
  keep: tf.Tensor;
}

const INPUTS = ['q', 'k', 'v', 'beta', 'w0', 'keep'] as const;
const threads = (d: Pick<Dims, 'K' | 'V'>) => workgroupFor(Math.max(d.K, d.V));
/** vec4s per row of W (zero-padded), and the row stride: odd, so the 8 invocations of a 16-byte access phase
 * reading consecutive rows hit distinct shared-memory banks. */
const K4 = (K: number) => Math.ceil(K / 4);
const KP = (K: number) => (K4(K) % 2 === 0 ? K4(K) + 1 : K4(K));
/** The widest row of W an invocation keeps in registers. */
const MAX_REGISTER_ROW = 128;
const sharedBytes = (d: Pick<Dims, 'K' | 'V'>) => 16 * (d.V * KP(d.K) + 4 * K4(d.K)) + 4 * 5 * d.V;

/** Whether the kernels fit the active device for per-head widths K and V. */
export function deltaRuleFits(K: number, V: number): boolean {
  // The forward sweep keeps one row of W per invocation in registers: at most 128 wide, and one row each. The
  // backward program binds 8 inputs and 8 outputs.
  return K <= MAX_REGISTER_ROW && V <= threads({ K, V }) && fits(sharedBytes({ K, V }), threads({ K, V }), 16);
}

function dimsOf(q: tf.TensorInfo, v: tf.TensorInfo): Dims {
  const [B, T, H, K] = q.shape as [number, number, number, number];
  return { B, T, H, K, V: v.shape[3]! };
}

/** One line of WGSL per vec4 of a K-wide row, for unrolled register rows. */
const rows = (K: number, line: (c: number) => string) => Array.from({ length: K4(K) }, (_, c) => line(c)).join('\n');

/**
 * WGSL declaring the register row `name0 .. name{K4 − 1}` of invocation lid and filling it with row lid of the
 * flat row-major V×K buffer (components past K zero; invocations past V hold zeros).
 */
function rowIn(buffer: string, name: string, d: Pick<Dims, 'K' | 'V'>): string {
  const { K, V } = d;
  return `${rows(K, (c) => `  var ${name}${c} = vec4<f32>(0.0);`)}
  if (lid < ${V}u) {
    let at = head * ${V * K}u + lid * ${K}u;
${rows(K, (c) => `    ${name}${c} = vec4<f32>(${[0, 1, 2, 3].map((x) => (4 * c + x < K ? `${buffer}[at + ${4 * c + x}u]` : '0.0')).join(', ')});`)}
  }`;
}

/** WGSL writing register row `name` of each invocation to row lid of the flat V×K buffer. */
function rowOut(buffer: string, name: string, d: Pick<Dims, 'K' | 'V'>): string {
  const { K, V } = d;
  return `  if (lid < ${V}u) {
    let at = head * ${V * K}u + lid * ${K}u;
${rows(K, (c) => [0, 1, 2, 3].filter((x) => 4 * c + x < K).map((x) => `    ${buffer}[at + ${4 * c + x}u] = ${name}${c}[${x}];`).join('\n'))}
  }`;
}

/** WGSL copying register row `name` into row lid of the workgroup's W (for column loops). */
const rowToShared = (name: string, d: Pick<Dims, 'K' | 'V'>) =>
  `  if (lid < ${d.V}u) {\n${rows(d.K, (c) => `    W[lid * KP + ${c}u] = ${name}${c};`)}\n  }`;

/**
 * What each sweep reads per step besides q, k, v: x and y per row of W (into sa, sb), z per component (the first
 * sweep, the forward one, reads nothing more).
 */
const EXTRAS = {
  sweep: null,
  reverse: { x: 'in_do[vAt(t) + lid]', y: 'out_delta[sAt(t) + lid]', z: null },
  rebuild: { x: 'in_do[vAt(t) + lid]', y: 'out_dd[sAt(t) + lid]', z: 'out_dk[kAt(t) + lid]' },
} as const;

/** WGSL shared by both programs: layout helpers, per-step loads and the forward sweep. */
function common(d: Dims, NT: number, store: 'reads' | 'deltas'): string {
  const { T, H, K, V } = d;
  const write =
    store === 'reads' ? `out_o[vAt(t) + v] = o * r.x * ${lit(1 / Math.sqrt(K))};` : 'out_delta[sAt(t) + v] = delta;';
  return /* wgsl */ `
${ACTIVATIONS}
// W in workgroup memory, as vec4 rows, only for the column loops (dWᵀδ, Wᵀdδ, WᵀdO), which read one component each;
// row work uses the invocations' register rows. Components past K are zero in W and in the φ vectors.
const K4 = ${K4(K)}u;
const KP = ${KP(K)}u;
var<workgroup> W: array<vec4<f32>, ${V * KP(K)}>;
var<workgroup> sfq: array<vec4<f32>, ${K4(K)}>;
var<workgroup> sfk: array<vec4<f32>, ${K4(K)}>;
var<workgroup> sdq: array<vec4<f32>, ${K4(K)}>;
var<workgroup> sdk: array<vec4<f32>, ${K4(K)}>;
var<workgroup> sv: array<f32, ${V}>;
var<workgroup> sa: array<f32, ${V}>;
var<workgroup> sb: array<f32, ${V}>;
var<workgroup> se: array<f32, ${V}>;

var<private> b: u32;
var<private> h: u32;
var<private> head: u32;

fn kAt(t: u32) -> u32 { return ((b * ${T}u + t) * ${H}u + h) * ${K}u; }
fn vAt(t: u32) -> u32 { return ((b * ${T}u + t) * ${H}u + h) * ${V}u; }
fn hAt(t: u32) -> u32 { return (b * ${T}u + t) * ${H}u + h; }
/** Per-step scratch [B, H, T, V]. */
fn sAt(t: u32) -> u32 { return (head * ${T}u + t) * ${V}u; }

/**
 * What an invocation reads of step t: raw query and key vec4 lid (lid < K4), the value and two per-row extras of row
 * lid (lid < V), element lid of the raw query and key and of a K-wide extra (lid < K), and the step's norms, keep
 * and β; zero for t ≥ T. Each sweep fetches step t + 1 before it computes step t, so the reads' latency overlaps
 * the step's arithmetic instead of stalling every step.
 */
struct Step { q: vec4<f32>, k: vec4<f32>, v: f32, x: f32, y: f32, qj: f32, kj: f32, z: f32, r: vec2<f32>, keep: f32, beta: f32 }
${(store === 'reads' ? (['sweep'] as const) : (['sweep', 'reverse', 'rebuild'] as const))
  .map((f) => {
    const extra = EXTRAS[f];
    return /* wgsl */ `
fn fetch_${f}(t: u32, lid: u32) -> Step {
  var s: Step;
  if (t >= ${T}u) { return s; }
  if (lid < K4) {
    for (var x = 0u; x < 4u; x++) {
      let i = 4u * lid + x;
      if (i < ${K}u) {
        s.q[x] = in_q[kAt(t) + i];
        s.k[x] = in_k[kAt(t) + i];
      }
    }
  }
  if (lid < ${V}u) {
    s.v = in_v[vAt(t) + lid];
    ${extra ? `s.x = ${extra.x};
    s.y = ${extra.y};` : ''}
  }
  ${extra?.z ? `if (lid < ${K}u) {
    s.qj = in_q[kAt(t) + lid];
    s.kj = in_k[kAt(t) + lid];
    s.z = ${extra.z};
  }` : ''}
  s.r = norms(t);
  s.keep = in_keep[b * ${T}u + t];
  s.beta = in_beta[hAt(t)];
  return s;
}`;
  })
  .join('\n')}
/** SiLU of the step's raw query and key into sfq, sfk (zero past K, as SiLU(0) = 0); values and extras into sv, sa, sb. */
fn stage(s: Step, lid: u32) {
  if (lid < K4) {
    sfq[lid] = vec4<f32>(silu_(s.q.x), silu_(s.q.y), silu_(s.q.z), silu_(s.q.w));
    sfk[lid] = vec4<f32>(silu_(s.k.x), silu_(s.k.y), silu_(s.k.z), silu_(s.k.w));
  }
  if (lid < ${V}u) {
    sv[lid] = s.v;
    sa[lid] = s.x;
    sb[lid] = s.y;
  }
}

/** Element j of row v of W (column loops). */
fn wGet(v: u32, j: u32) -> f32 { return W[v * KP + j / 4u][j % 4u]; }

/**
 * 1/|SiLU(q_t)| and 1/|SiLU(k_t)| (φ = SiLU(x) times this) of every step into the scratch rn [B, H, T, 2], in
 * parallel over steps before the sweeps: per step, every invocation would otherwise redo the two K-long sums.
 */
fn computeNorms(lid: u32) {
  ${strided('t', T, NT)} {
    var n = vec2<f32>(0.0);
    for (var i = 0u; i < ${K}u; i++) {
      let a = silu_(in_q[kAt(t) + i]);
      let c = silu_(in_k[kAt(t) + i]);
      n += vec2<f32>(a * a, c * c);
    }
    let r = inverseSqrt(n + 1e-6);
    out_rn[(head * ${T}u + t) * 2u] = r.x;
    out_rn[(head * ${T}u + t) * 2u + 1u] = r.y;
  }
  storageBarrier();
}
fn norms(t: u32) -> vec2<f32> { return vec2<f32>(out_rn[(head * ${T}u + t) * 2u], out_rn[(head * ${T}u + t) * 2u + 1u]); }

/**
 * The forward recurrence; writes the reads (o) and the final W, or, for the backward pass, every δ_t. Invocation v
 * keeps row v of W in registers (unrolled over its vec4s): the sweep touches W only in its own row.
 */
fn forwardSweep(lid: u32) {
  computeNorms(lid);
${rowIn('in_w0', 'w', d)}
  var next = fetch_sweep(0u, lid);
  for (var t = 0u; t < ${T}u; t++) {
    workgroupBarrier();
    let cur = next;
    stage(cur, lid);
    next = fetch_sweep(t + 1u, lid);
    workgroupBarrier();
    let r = cur.r;
    let keep = cur.keep;
    let beta = cur.beta;
    if (lid < ${V}u) {
      let v = lid;
      var u = 0.0;
${rows(K, (c) => `      u += dot(w${c}, sfk[${c}]);`)}
      let delta = beta * (sv[v] - keep * r.y * u);
      var o = 0.0;
${rows(K, (c) => `      w${c} = keep * w${c} + delta * r.y * sfk[${c}];
      o += dot(w${c}, sfq[${c}]);`)}
      ${write}
    }
  }
${store === 'reads' ? rowOut('out_wT', 'w', d) : ''}
  workgroupBarrier();
}
`;
}

function forwardProgram(d: Dims): FusedProgram {
  const NT = threads(d);
  const { B, T, H, K, V } = d;
  const source = /* wgsl */ `
${common(d, NT, 'reads')}
fn main(wg: u32, lid: u32) {
  b = wg / ${H}u;
  h = wg % ${H}u;
  head = wg;
  forwardSweep(lid);
}
`;
  return {
    key: `${FORWARD}:${JSON.stringify(d)}`,
    inputs: INPUTS,
    outputs: [
      { name: 'o', shape: [B, T, H, V] },
      { name: 'wT', shape: [B, H, V, K] },
      { name: 'rn', shape: [B, H, T, 2] }, // scratch
    ],
    workgroupSize: NT,
    workgroups: B * H,
    source,
  };
}

function backwardProgram(d: Dims): FusedProgram {
  const NT = threads(d);
  const { B, T, H, K, V } = d;
  const scale = lit(1 / Math.sqrt(K));
  const source = /* wgsl */ `
${common(d, NT, 'deltas')}
fn dsilu(x: f32) -> f32 { let s = sigmoid_(x); return s * (1.0 + x * (1.0 - s)); }
var<workgroup> sbeta: array<f32, 8>;

fn main(wg: u32, lid: u32) {
  b = wg / ${H}u;
  h = wg % ${H}u;
  head = wg;
  // 1. Recompute δ_t.
  forwardSweep(lid);
  storageBarrier();

  // 2. Reverse sweep over dW: dW_t += s dO_t φ(q_t)ᵀ, dδ_t = dW_t φ(k_t), dφ(k_t) ⊇ dW_tᵀ δ_t,
  //    dW_{t-1} = keep (dW_t − β dδ_t φ(k_t)ᵀ).
${rowIn('in_dwT', 'g', d)}
  var next = fetch_reverse(${T - 1}u, lid);
  for (var n = 0u; n < ${T}u; n++) {
    let t = ${T - 1}u - n;
    workgroupBarrier();
    let cur = next;
    stage(cur, lid);
    // (t − 1 wraps past T at the last step: fetch returns zeros.)
    next = fetch_reverse(t - 1u, lid);
    workgroupBarrier();
    let r = cur.r;
    let keep = cur.keep;
    let beta = cur.beta;
    var dd = 0.0;
    if (lid < ${V}u) {
      let s = sa[lid] * ${scale} * r.x;
${rows(K, (c) => `      g${c} += s * sfq[${c}];
      dd += dot(g${c}, sfk[${c}]);`)}
      dd *= r.y;
      out_dd[sAt(t) + lid] = dd;
      out_dv[vAt(t) + lid] = beta * dd;
    }
${rowToShared('g', d)}
    workgroupBarrier();
    ${strided('j', K, NT)} {
      var a = 0.0;
      for (var v = 0u; v < ${V}u; v++) { a += wGet(v, j) * sb[v]; }
      out_dk[kAt(t) + j] = a;
    }
    let cb = beta * dd * r.y;
${rows(K, (c) => `    g${c} = keep * (g${c} - cb * sfk[${c}]);`)}
  }
${rowOut('out_dw0', 'g', d)}
  storageBarrier();

  // 3. Forward sweep rebuilding W: dφ(k_t) −= β keep W_{t-1}ᵀ dδ_t, dβ_t = dδ_t · (v_t − u_t),
  //    dφ(q_t) = s W_tᵀ dO_t; then through φ: dx = (dφ − φ (φ·dφ)) / |SiLU(x)| · SiLU'(x).
  workgroupBarrier();
${rowIn('in_w0', 'w', d)}
${rowToShared('w', d)}
  next = fetch_rebuild(0u, lid);
  for (var t = 0u; t < ${T}u; t++) {
    workgroupBarrier();
    let cur = next;
    stage(cur, lid);
    next = fetch_rebuild(t + 1u, lid);
    workgroupBarrier();
    let r = cur.r;
    let keep = cur.keep;
    let beta = cur.beta;
    if (lid < ${K}u) {
      let j = lid;
      var a = 0.0;
      for (var v = 0u; v < ${V}u; v++) { a += wGet(v, j) * sb[v]; }
      sdk[j / 4u][j % 4u] = cur.z - beta * keep * a;
    }
    if (lid < ${V}u) {
      var u = 0.0;
${rows(K, (c) => `      u += dot(w${c}, sfk[${c}]);`)}
      let e = sv[lid] - keep * r.y * u;
      se[lid] = sb[lid] * e;
      let dl = beta * e * r.y;
${rows(K, (c) => `      w${c} = keep * w${c} + dl * sfk[${c}];`)}
    }
    workgroupBarrier();
${rowToShared('w', d)}
    // dβ_t = Σ_v se[v] in 8 interleaved parts, so no invocation walks all V in series.
    if (lid < 8u) {
      var s = 0.0;
      for (var v = lid; v < ${V}u; v += 8u) { s += se[v]; }
      sbeta[lid] = s;
    }
    workgroupBarrier();
    ${strided('j', K, NT)} {
      var a = 0.0;
      for (var v = 0u; v < ${V}u; v++) { a += wGet(v, j) * sa[v]; }
      sdq[j / 4u][j % 4u] = a * ${scale};
    }
    workgroupBarrier();
    if (lid == 0u) {
      out_dbeta[hAt(t)] = ((sbeta[0] + sbeta[1]) + (sbeta[2] + sbeta[3])) + ((sbeta[4] + sbeta[5]) + (sbeta[6] + sbeta[7]));
    }
    var pq = 0.0;
    var pk = 0.0;
    for (var c = 0u; c < K4; c++) { pq += dot(sfq[c], sdq[c]); pk += dot(sfk[c], sdk[c]); }
    pq *= r.x;
    pk *= r.y;
    if (lid < ${K}u) {
      let j = lid;
      out_dq[kAt(t) + j] = (sdq[j / 4u][j % 4u] - sfq[j / 4u][j % 4u] * r.x * pq) * r.x * dsilu(cur.qj);
      out_dk[kAt(t) + j] = (sdk[j / 4u][j % 4u] - sfk[j / 4u][j % 4u] * r.y * pk) * r.y * dsilu(cur.kj);
    }
  }
}
`;
  return {
    key: `${BACKWARD}:${JSON.stringify(d)}`,
    inputs: [...INPUTS, 'do', 'dwT'],
    outputs: [
      { name: 'dq', shape: [B, T, H, K] },
      { name: 'dk', shape: [B, T, H, K] },
      { name: 'dv', shape: [B, T, H, V] },
      { name: 'dbeta', shape: [B, T, H] },
      { name: 'dw0', shape: [B, H, V, K] },
      // Scratch: δ_t and dδ_t of every step.
      { name: 'delta', shape: [B, H, T, V] },
      { name: 'dd', shape: [B, H, T, V] },
      { name: 'rn', shape: [B, H, T, 2] },
    ],
    workgroupSize: NT,
    workgroups: B * H,
    source,
  };
}

let registered = false;

function register(): void {
  if (registered) return;
  registered = true;
  // Outputs past the kept ones are the kernels' scratch buffers.
  registerProgramKernel(FORWARD, (inputs) => forwardProgram(dimsOf(inputs.q!, inputs.v!)), 2);
  registerProgramKernel(BACKWARD, (inputs) => backwardProgram(dimsOf(inputs.q!, inputs.v!)), 5);
  tf.registerGradient({
    kernelName: FORWARD,
    inputsToSave: [...INPUTS],
    gradFunc: (dys, saved) => {
      const [dO, dWT] = dys as tf.Tensor[];
      const named = Object.fromEntries(INPUTS.map((n, i) => [n, saved[i]!]));
      const grads = tf.engine().runKernel(BACKWARD, { ...named, do: dO!, dwT: dWT! }) as tf.Tensor[];
      const [dq, dk, dv, dbeta, dw0] = grads;
      return { q: () => dq!, k: () => dk!, v: () => dv!, beta: () => dbeta!, w0: () => dw0!, keep: () => tf.zerosLike(named.keep!) };
    },
  });
}

/** The delta-rule reads o [B, T, H, V] (scaled by 1/√K) and the final state [B, H, V, K] (WebGPU only). */
export function fusedDeltaRule(inputs: DeltaRuleInputs): { o: tf.Tensor; wT: tf.Tensor } {
  register();
  const [o, wT] = tf.engine().runKernel(FORWARD, { ...inputs }) as tf.Tensor[];
  return { o: o!, wT: wT! };
}
