/**
 * The KV-memory (sliding-window softmax attention, spec "KV-memory") over a sequence: one dispatch forward, two
 * backward. Each query attends over at most S keys (the current step and the S − 1 before it, reaching into the
 * state's key buffer at the start); key distance d is visible when d ≤ min(pos, S − 1), or d ≤ pos mod S for the
 * delayed-chunk blend. RoPE rotates the query by the distance, with the layer's tables (by distance, up to S − 1,
 * scaled by 1/√K); here every row is rotated once, by its offset from a base step of its workgroup, since
 * (R(t − b) q)·(R(j − b) k) = (R(t − j) q)·k.
 *
 * Parallel structure (FlashAttention's): one workgroup per (stream, head, block of BT rows), walking the blocks of
 * BT partner rows its band of the window touches: BT + S − 1 keys for a block of queries, BT + S − 1 queries for a
 * block of keys. Each block pair is two small matrix products through workgroup memory with register tiles: an
 * invocation owns 4 × 4 scores, and 4 rows × every (BT/4)-th vec4 of the result rows. Scores are masked by the
 * window, so about half the work of a pair of blocks is discarded when S ≈ BT; in exchange each operand read from
 * workgroup memory feeds 4 multiply-adds, where the kernels this replaced (one invocation per query row, walking
 * the distances) fed one, at about 1 TFLOP/s on an H100.
 *
 * Backward (FlashAttention's): the forward also writes each query's log-sum-exp; the query pass computes
 * D = dO·O and dq, the key pass walks each key block's queries for dk and dv (for the state's buffer slots too).
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

/** Rows per block (a multiple of KC whose quarter is a power of two, for the swizzle of `pAt`). */
type Tiling = 32 | 64;
/** Width of the slices of the products' inner dimension staged through workgroup memory at a time. */
const KC = 16;

const BASE_INPUTS = ['q', 'k', 'v', 'ks', 'vs', 'pos'] as const;
const inputNames = (c: Pick<Config, 'rope'>) => [...BASE_INPUTS, ...(c.rope ? ['cos', 'sin'] : [])];
/** vec4s per row of width n (zero-padded). */
const vec4s = (n: number) => Math.ceil(n / 4);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/**
 * Workgroup memory: the two staged slices of a score product, the staged slice of a row product, the score tile
 * (also the result rows before they are rotated back, so at least BT × K) and four per-row statistics.
 */
const tileBytes = (K: number, V: number, BT: Tiling) =>
  16 * (2 * KC * (BT / 4) + KC * Math.max(vec4s(K), vec4s(V)) + Math.max(BT * (BT / 4), BT * vec4s(K))) + 16 * BT;

/** Blocks of 64 rows for windows longer than 32 where they fit the device, else of 32, or null. */
function tilingFor(K: number, V: number, S: number): Tiling | null {
  const limit = webgpuLimits()?.maxComputeWorkgroupStorageSize ?? 0;
  for (const BT of S > 32 ? ([64, 32] as const) : ([32] as const)) if (tileBytes(K, V, BT) <= limit) return BT;
  return null;
}
const threads = (BT: Tiling) => (BT / 4) ** 2;

/** Whether the kernels fit the active device (the key pass binds the most buffers). */
export function windowAttentionFits(K: number, V: number, S: number, rope: boolean): boolean {
  const BT = tilingFor(K, V, S);
  return BT !== null && fits(tileBytes(K, V, BT), threads(BT), inputNames({ rope }).length + 3 + 4);
}

/**
 * WGSL shared by the three passes: bindings' helpers, the tiles, and two product loops (`scores`, `rowsProduct`)
 * generated for the tiling. Rows of a block are `m` in 0..BT; invocation (tx, ty) owns tile rows 4ty .. 4ty + 3.
 */
function common(c: Config, BT: Tiling, io: { inputs: string[] }) {
  const { H, K, V, S, T } = c;
  const BT4 = BT / 4;
  const TX = BT4;
  const NT = threads(BT);
  const q2 = Math.floor(K / 2); // (RoPE needs an even K; pair() is unused otherwise)
  // With one slot (S = 1) every distance is 0 and RoPE is the identity (times the tables' 1/√K).
  const rope = c.rope && S > 1;
  const hasGrad = io.inputs.includes('do');
  const source = /* wgsl */ `
const K4 = ${vec4s(K)}u;
const BT4 = ${BT4}u;
const TX = ${TX}u;
var<workgroup> sa: array<vec4<f32>, ${KC * BT4}>;
var<workgroup> sb: array<vec4<f32>, ${KC * BT4}>;
var<workgroup> sx: array<vec4<f32>, ${KC * Math.max(vec4s(K), vec4s(V))}>;
var<workgroup> sp: array<vec4<f32>, ${Math.max(BT * BT4, BT * vec4s(K))}>;
/** Per block row: visible limit, then max or log-sum-exp, sum or D, correction (by pass). */
var<workgroup> rl: array<f32, ${BT}>;
var<workgroup> rm: array<f32, ${BT}>;
var<workgroup> rs: array<f32, ${BT}>;
var<workgroup> rc: array<f32, ${BT}>;
var<private> b: u32;
var<private> h: u32;
var<private> tx: u32;
var<private> ty: u32;

fn rowK(t: u32) -> u32 { return ((b * ${T}u + t) * ${H}u + h) * ${K}u; }
fn rowV(t: u32) -> u32 { return ((b * ${T}u + t) * ${H}u + h) * ${V}u; }
fn stat(t: i32) -> u32 { return (b * ${T}u + u32(t)) * ${H}u + h; }
fn inSequence(t: i32) -> bool { return t >= 0 && t < ${T}; }
/** Key or value component i of step j (j < 0: the state's buffer slot S + j; callers keep -S <= j < T). */
fn keyAt(j: i32, i: u32) -> f32 {
  if (j >= 0) { return in_k[rowK(u32(j)) + i]; }
  return in_ks[((b * ${H}u + h) * ${S}u + u32(${S} + j)) * ${K}u + i];
}
/** The largest visible key distance of the query at step t (−1 outside the sequence: nothing visible). */
fn limitOf(t: i32) -> f32 {
  if (!inSequence(t)) { return -1.0; }
  let p = in_pos[b * ${T}u + u32(t)];
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
/** Component i of the key of step j (−S ≤ j < T, else 0) rotated by its offset from base. */
fn keyRot(j: i32, i: u32, base: i32) -> f32 {
  if (j < -${S} || j >= ${T} || i >= ${K}u) { return 0.0; }
  let cs = rope(j - base, i);
  return keyAt(j, i) * cs.x ${rope ? '+ keyAt(j, pair(i)) * cs.y' : ''};
}
/** Component i of the query of step t (0 ≤ t < T, else 0) rotated by its offset from base, times 1/√K. */
fn queryRot(t: i32, i: u32, base: i32) -> f32 {
  if (!inSequence(t) || i >= ${K}u) { return 0.0; }
  let cs = rope(t - base, i);
  let at = rowK(u32(t));
  return (in_q[at + i] * cs.x ${rope ? '+ in_q[at + pair(i)] * cs.y' : ''}) * ${lit(1 / Math.sqrt(K))};
}
/** Value component e of step j (−S ≤ j < T, else 0). */
fn value(j: i32, e: u32) -> f32 {
  if (j < -${S} || j >= ${T} || e >= ${V}u) { return 0.0; }
  if (j >= 0) { return in_v[rowV(u32(j)) + e]; }
  return in_vs[((b * ${H}u + h) * ${S}u + u32(${S} + j)) * ${V}u + e];
}
${
  hasGrad
    ? `/** Output gradient component e of step t (0 ≤ t < T, else 0). */
fn outGrad(t: i32, e: u32) -> f32 {
  if (!inSequence(t) || e >= ${V}u) { return 0.0; }
  return in_do[rowV(u32(t)) + e];
}`
    : ''
}
/**
 * Where row m of a block meets row group g (rows 4g .. 4g + 3) in the score tile sp: swizzled, so the 4 × 4 tiles
 * that invocations write (m = 4 tx + c) fall on distinct banks.
 */
fn pAt(m: u32, g: u32) -> u32 { return m * BT4 + (g ^ ((m / 4u) % BT4)); }
/**
 * Per-row partial results of the TX invocations sharing a row (the forward's row maxima and sums), in sa while it
 * is free: swizzled, so both the writes (across x) and the reads (across rows) spread over the banks.
 */
fn partial(row: u32, x: u32, v: f32) { let at = row * TX + (x ^ (row % TX)); sa[at / 4u][at % 4u] = v; }
fn partialAt(row: u32, x: u32) -> f32 { let at = row * TX + (x ^ (row % TX)); return sa[at / 4u][at % 4u]; }
/** Component i of a result row staged at sp[at ..] (rows of K4 vec4s), rotated back by a steps: R(a)ᵀ g. */
fn unrotated(at: u32, i: u32, a: i32) -> f32 {
  let cs = rope(a, i);
  let x = sp[at + i / 4u][i % 4u];
  ${rope ? 'let p = pair(i);\n  return x * cs.x - sp[at + p / 4u][p % 4u] * cs.y;' : 'return x;'}
}
`;
  const R = range(4);
  /** acc[r] (vec4 over the invocation's 4 columns 4tx ..) = Σ_{k < n} A(4ty + r, k) B(col, k), slices of KC. */
  const scores = (acc: string, n: number, a: (m: string, k: string) => string, bOf: (m: string, k: string) => string) => /* wgsl */ `
    ${acc} = array<vec4<f32>, 4>();
    for (var k0 = 0u; k0 < ${n}u; k0 += ${KC}u) {
      workgroupBarrier();
      ${strided('e', KC * BT, NT)} {
        let m = e % ${BT}u;
        let k = k0 + e / ${BT}u;
        sa[e / 4u][e % 4u] = ${a('m', 'k')};
        sb[e / 4u][e % 4u] = ${bOf('m', 'k')};
      }
      workgroupBarrier();
      for (var kk = 0u; kk < ${KC}u; kk++) {
        let x = sa[kk * BT4 + ty];
        let y = sb[kk * BT4 + tx];
        ${R.map((r) => `${acc}[${r}] += x[${r}] * y;`).join(' ')}
      }
    }`;
  /** Columns (vec4s) of a result row of width w each invocation owns: tx, tx + TX, … */
  const owned = (w: number) => Math.ceil(vec4s(w) / TX);
  /** For each owned vec4 column (col, register index r·owned + c): `body`, skipped past the width. */
  const eachOwned = (w: number, body: (r: number, c: number) => string) =>
    R.flatMap((r) =>
      range(owned(w)).map((c) => {
        const guard = vec4s(w) % TX === 0 ? '' : `if (col < ${vec4s(w)}u) `;
        return `{ let row = 4u * ty + ${r}u; let col = tx + ${TX * c}u; ${guard}{ ${body(r, r * owned(w) + c)} } }`;
      }),
    ).join('\n    ');
  /** acc[r·owned + c] += Σ_m P[m][4ty + r] X(m, vec4 column tx + TX·c), P the score tile, X staged KC rows at a time. */
  const rowsProduct = (acc: string, w: number, x: (m: string, i: string) => string) => {
    const W4 = vec4s(w);
    return /* wgsl */ `
    for (var m0 = 0u; m0 < ${BT}u; m0 += ${KC}u) {
      workgroupBarrier();
      ${strided('e', KC * W4, NT)} {
        let m = m0 + e / ${W4}u;
        let i = 4u * (e % ${W4}u);
        sx[e] = vec4<f32>(${R.map((k) => x('m', `i + ${k}u`)).join(', ')});
      }
      workgroupBarrier();
      for (var mm = 0u; mm < ${KC}u; mm++) {
        let p = sp[pAt(m0 + mm, ty)];
        ${range(owned(w))
          .map((c) => {
            const guard = W4 % TX === 0 ? '' : `if (col < ${W4}u) `;
            return `{ let col = tx + ${TX * c}u; ${guard}{ let y = sx[mm * ${W4}u + col]; ${R.map((r) => `${acc}[${r * owned(w) + c}] += p[${r}] * y;`).join(' ')} } }`;
          })
          .join('\n        ')}
      }
    }
    workgroupBarrier();`;
  };
  /** Writes the invocation's 4 × 4 tile (v[r][c]: row 4ty + r, column 4tx + c) into sp, transposed by column. */
  const writeTile = (v: string) => R.map((c) => `sp[pAt(4u * tx + ${c}u, ty)] = vec4<f32>(${R.map((r) => `${v}[${r}][${c}]`).join(', ')});`).join('\n    ');
  /** For each of the invocation's 4 × 4 scores: distance d = (first row's step − first column's step) ± offsets. */
  const eachScore = (body: (r: number, c: number) => string) => R.flatMap((r) => R.map((c) => `{ ${body(r, c)} }`)).join('\n    ');
  /** For each component k of owned vec4 column `col` of a result row of width w: `body` with e = 4col + k. */
  const components = (w: number, body: (k: number) => string) =>
    R.map((k) => (w % 4 === 0 ? '' : `if (4u * col + ${k}u < ${w}u) `) + `{ let e = 4u * col + ${k}u; ${body(k)} }`).join(' ');
  /**
   * Writes the invocation's result rows (acc: K wide) rotated back (by `a`, an expression of the block row `row`
   * and its step `n` = first + row), through sp: `store(x)` for component i of each row whose step n < T.
   */
  const rotatedBack = (acc: string, first: string, a: string, store: (x: string) => string) => /* wgsl */ `
  ${eachOwned(K, (_r, i) => `sp[row * K4 + col] = ${acc}[${i}];`)}
  workgroupBarrier();
  ${strided('e', BT * K, NT)} {
    let row = e / ${K}u;
    let i = e % ${K}u;
    let n = ${first} + i32(row);
    if (n < ${T}) { ${store(`unrotated(row * K4, i, ${a})`)} }
  }`;
  const main = (prologue: string, body: string) => /* wgsl */ `
fn main(wg: u32, lid: u32) {
  tx = lid % TX;
  ty = lid / TX;
${prologue}
${body}
}`;
  return { source, scores, rowsProduct, writeTile, eachScore, eachOwned, components, owned, rotatedBack, main, NT, BT4, R };
}

/** The program record of a pass: one workgroup per (stream, head, block of BT of `rows`). */
function program(name: string, c: Config, BT: Tiling, io: { inputs: string[]; outputs: FusedProgram['outputs'] }, rows: number, source: string): FusedProgram {
  return {
    key: `${name}:${JSON.stringify(c)}:${BT}`,
    ...io,
    workgroupSize: threads(BT),
    workgroups: c.B * c.H * Math.ceil(rows / BT),
    source,
  };
}

/** The prologue locating the workgroup: stream b, head h, first row `first` of its block (of `rows`, from `from`). */
const locate = (c: Config, BT: Tiling, rows: number, first: string, from: number) => {
  const blocks = Math.ceil(rows / BT);
  return `  b = wg / ${c.H * blocks}u;
  h = (wg / ${blocks}u) % ${c.H}u;
  let ${first} = i32((wg % ${blocks}u) * ${BT}u) - ${from};`;
};

/** Blocks of BT partner rows a block of BT rows meets: BT + S − 1 rows in all. */
const partnerBlocks = (S: number, BT: Tiling) => Math.ceil((BT + S - 1) / BT);

function forwardProgram(c: Config, BT: Tiling): FusedProgram {
  const { B, T, H, V, S } = c;
  const io = { inputs: inputNames(c), outputs: [{ name: 'o', shape: [B, T, H, V] }, { name: 'lse', shape: [B, T, H] }] };
  const g = common(c, BT, io);
  // Query block t0 ..; key blocks from j0 = t0 − (S − 1); RoPE base t0. Online softmax per query row (rm: running
  // max, rs: running sum, rc: the correction of this key block), kept by invocations 0 .. BT − 1, one row each, from
  // the partial maxima and sums of the TX invocations holding the row's scores.
  const body = /* wgsl */ `
  var o: array<vec4<f32>, ${4 * g.owned(V)}>;
  var s: array<vec4<f32>, 4>;
  for (var kb = 0u; kb < ${partnerBlocks(S, BT)}u; kb++) {
    let j0 = t0 - ${S - 1} + i32(kb * ${BT}u);
    ${g.scores('s', c.K, (m, k) => `queryRot(t0 + i32(${m}), ${k}, t0)`, (m, k) => `keyRot(j0 + i32(${m}), ${k}, t0)`)}
    let d0 = t0 - j0 + i32(4u * ty) - i32(4u * tx);
    ${g.eachScore((r, cc) => `let d = d0 + ${r - cc}; if (d < 0 || f32(d) > rl[4u * ty + ${r}u]) { s[${r}][${cc}] = -3.0e38; }`)}
    workgroupBarrier(); // (the last slice's products may still read sa)
    ${g.R.map((r) => `partial(4u * ty + ${r}u, tx, max(max(s[${r}][0], s[${r}][1]), max(s[${r}][2], s[${r}][3])));`).join('\n    ')}
    workgroupBarrier();
    if (lid < ${BT}u) {
      let mOld = rm[lid];
      var mx = mOld;
      for (var x = 0u; x < TX; x++) { mx = max(mx, partialAt(lid, x)); }
      rm[lid] = mx;
      rc[lid] = exp(mOld - mx);
    }
    workgroupBarrier();
    ${g.R.map(
      (r) => `{
      let row = 4u * ty + ${r}u;
      let p = select(vec4<f32>(0.0), exp(s[${r}] - rm[row]), s[${r}] > vec4<f32>(-1.0e38));
      s[${r}] = p;
      partial(row, tx, p.x + p.y + p.z + p.w);
    }`,
    ).join('\n    ')}
    ${g.writeTile('s')}
    ${g.eachOwned(V, (r, i) => `o[${i}] *= rc[4u * ty + ${r}u];`)}
    ${g.rowsProduct('o', V, (m, i) => `value(j0 + i32(${m}), ${i})`)}
    if (lid < ${BT}u) {
      var sum = 0.0;
      for (var x = 0u; x < TX; x++) { sum += partialAt(lid, x); }
      rs[lid] = rs[lid] * rc[lid] + sum;
    }
  }
  workgroupBarrier();
  ${g.eachOwned(V, (_r, i) => `let t = t0 + i32(row); if (t < ${T}) { let inv = 1.0 / rs[row]; ${g.components(V, (k) => `out_o[rowV(u32(t)) + e] = o[${i}][${k}] * inv;`)} }`)}
  if (lid < ${BT}u && t0 + i32(lid) < ${T}) { out_lse[stat(t0 + i32(lid))] = rm[lid] + log(rs[lid]); }`;
  const prologue = `${locate(c, BT, T, 't0', 0)}
  if (lid < ${BT}u) { rl[lid] = limitOf(t0 + i32(lid)); rm[lid] = -3.0e38; rs[lid] = 0.0; }`;
  return program(FORWARD, c, BT, io, T, g.source + g.main(prologue, body));
}

function backwardQProgram(c: Config, BT: Tiling): FusedProgram {
  const { B, T, H, K, V, S } = c;
  const io = {
    inputs: [...inputNames(c), 'do', 'o', 'lse'],
    outputs: [
      { name: 'dq', shape: [B, T, H, K] },
      { name: 'dsum', shape: [B, T, H] },
    ],
  };
  const g = common(c, BT, io);
  // Per query row: rl limit, rm log-sum-exp, rs D = Σ_j p_j (dO·v_j) = dO·O. Scores s and dO·v (dp) per block, then
  // ds = p (dp − D) into the tile and dq += ds · rotated keys; ∂s/∂q = R(t − t0)ᵀ (rotated key) / √K.
  const body = /* wgsl */ `
  var dq: array<vec4<f32>, ${4 * g.owned(K)}>;
  var s: array<vec4<f32>, 4>;
  var dp: array<vec4<f32>, 4>;
  for (var kb = 0u; kb < ${partnerBlocks(S, BT)}u; kb++) {
    let j0 = t0 - ${S - 1} + i32(kb * ${BT}u);
    ${g.scores('s', K, (m, k) => `queryRot(t0 + i32(${m}), ${k}, t0)`, (m, k) => `keyRot(j0 + i32(${m}), ${k}, t0)`)}
    ${g.scores('dp', V, (m, k) => `outGrad(t0 + i32(${m}), ${k})`, (m, k) => `value(j0 + i32(${m}), ${k})`)}
    let d0 = t0 - j0 + i32(4u * ty) - i32(4u * tx);
    ${g.eachScore(
      (r, cc) =>
        `let row = 4u * ty + ${r}u; let d = d0 + ${r - cc}; let p = select(0.0, exp(s[${r}][${cc}] - rm[row]), d >= 0 && f32(d) <= rl[row]); s[${r}][${cc}] = p * (dp[${r}][${cc}] - rs[row]);`,
    )}
    ${g.writeTile('s')}
    ${g.rowsProduct('dq', K, (m, i) => `keyRot(j0 + i32(${m}), ${i}, t0)`)}
  }
  ${g.rotatedBack('dq', 't0', 'i32(row)', (x) => `out_dq[rowK(u32(n)) + i] = ${x} * ${lit(1 / Math.sqrt(K))};`)}
  if (lid < ${BT}u && t0 + i32(lid) < ${T}) { out_dsum[stat(t0 + i32(lid))] = rs[lid]; }`;
  const prologue = `${locate(c, BT, T, 't0', 0)}
  if (lid < ${BT}u) {
    let t = t0 + i32(lid);
    rl[lid] = limitOf(t);
    var lse = 0.0;
    var D = 0.0;
    if (t < ${T}) {
      lse = in_lse[stat(t)];
      let at = rowV(u32(t));
      for (var e = 0u; e < ${V}u; e++) { D += in_do[at + e] * in_o[at + e]; }
    }
    rm[lid] = lse;
    rs[lid] = D;
  }`;
  return program(BACKWARD_Q, c, BT, io, T, g.source + g.main(prologue, body));
}

function backwardKvProgram(c: Config, BT: Tiling): FusedProgram {
  const { B, T, H, K, V, S } = c;
  const io = {
    inputs: [...inputNames(c), 'do', 'lse', 'dsum'],
    outputs: [
      { name: 'dk', shape: [B, T, H, K] },
      { name: 'dv', shape: [B, T, H, V] },
      { name: 'dks', shape: [B, H, S, K] },
      { name: 'dvs', shape: [B, H, S, V] },
    ],
  };
  const g = common(c, BT, io);
  // Key rows j + S: the state's S buffer slots (j < 0), then the T steps. Key block j0 ..; query blocks from q0 = j0;
  // RoPE base: the block's last key (offsets stay within ±(S − 1) when BT ≤ S). Tile rows are keys, columns queries,
  // with the queries' statistics in rl, rm (log-sum-exp), rs (D). ∂s/∂k = R(j − base)ᵀ (rotated, scaled query).
  const slot = (j: string, w: number, i: string) => `((b * ${H}u + h) * ${S}u + u32(${S} + ${j})) * ${w}u + ${i}`;
  const body = /* wgsl */ `
  let base = j0 + ${BT - 1};
  var dk: array<vec4<f32>, ${4 * g.owned(K)}>;
  var dv: array<vec4<f32>, ${4 * g.owned(V)}>;
  var s: array<vec4<f32>, 4>;
  var dp: array<vec4<f32>, 4>;
  for (var qb = 0u; qb < ${partnerBlocks(S, BT)}u; qb++) {
    let q0 = j0 + i32(qb * ${BT}u);
    if (lid < ${BT}u) {
      let t = q0 + i32(lid);
      rl[lid] = limitOf(t);
      var lse = 0.0;
      var D = 0.0;
      if (inSequence(t)) {
        lse = in_lse[stat(t)];
        D = in_dsum[stat(t)];
      }
      rm[lid] = lse;
      rs[lid] = D;
    }
    ${g.scores('s', K, (m, k) => `keyRot(j0 + i32(${m}), ${k}, base)`, (m, k) => `queryRot(q0 + i32(${m}), ${k}, base)`)}
    ${g.scores('dp', V, (m, k) => `value(j0 + i32(${m}), ${k})`, (m, k) => `outGrad(q0 + i32(${m}), ${k})`)}
    let d0 = q0 - j0 + i32(4u * tx) - i32(4u * ty);
    ${g.eachScore(
      (r, cc) =>
        `let col = 4u * tx + ${cc}u; let d = d0 + ${cc - r}; let p = select(0.0, exp(s[${r}][${cc}] - rm[col]), d >= 0 && f32(d) <= rl[col]); s[${r}][${cc}] = p; dp[${r}][${cc}] = p * (dp[${r}][${cc}] - rs[col]);`,
    )}
    ${g.writeTile('s')}
    ${g.rowsProduct('dv', V, (m, i) => `outGrad(q0 + i32(${m}), ${i})`)}
    ${g.writeTile('dp')}
    ${g.rowsProduct('dk', K, (m, i) => `queryRot(q0 + i32(${m}), ${i}, base)`)}
  }
  ${g.eachOwned(V, (_r, i) => `let j = j0 + i32(row); if (j < ${T}) { ${g.components(V, (k) => `if (j >= 0) { out_dv[rowV(u32(j)) + e] = dv[${i}][${k}]; } else { out_dvs[${slot('j', V, 'e')}] = dv[${i}][${k}]; }`)} }`)}
  ${g.rotatedBack('dk', 'j0', 'n - base', (x) => `let x = ${x}; if (n >= 0) { out_dk[rowK(u32(n)) + i] = x; } else { out_dks[${slot('n', K, 'i')}] = x; }`)}`;
  return program(BACKWARD_KV, c, BT, io, S + T, g.source + g.main(locate(c, BT, S + T, 'j0', S), body));
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
