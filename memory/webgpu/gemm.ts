/**
 * A register-tiled matrix product for the large products of a training pass (projections over every token and their
 * gradients), in place of tfjs' WebGPU programs, whose 32×32 workgroup tiles with 4×4 outputs per invocation use
 * each workgroup-memory read for few multiply-adds (on an H100: 71.9 → 62.6 ms of products per B=640 pass).
 *
 * Each workgroup computes a BM × BN block of C = op(A)·op(B) (one batch entry), each of its (BM/TM)·(BN/TN)
 * invocations a TM × TN sub-block held in registers. The inner dimension is walked BK at a time: the A and B tiles
 * are staged in workgroup memory k-major (transposed on the way in where the operand is stored row-major), so the
 * inner loop reads TM/4 + TN/4 vec4s per TM·TN multiply-adds, and the next tiles' global reads are issued before the
 * current tile's arithmetic. An invocation's rows and columns interleave with its neighbours' in groups of four, so
 * the vec4 reads of one phase hit consecutive addresses and the final writes are coalesced.
 *
 * Products with few output blocks and a long inner dimension (weight gradients Xᵀ·dY) are split along it: each of
 * `splits` workgroups per block sums one chunk, and a second kernel adds the chunks' partial products in a fixed
 * order, so results are the same bits run after run (no atomics).
 */
import type * as tf from '@tensorflow/tfjs';
import { fits, runProgram, type FusedProgram } from './runner.js';

/** Block and per-invocation tile sizes. BM/TM and BN/TN invocations per axis; TM, TN multiples of 4. */
export interface GemmTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

export const DEFAULT_TILE: GemmTile = { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8 };

/**
 * The tiling to use, or null to leave every product to tfjs' programs: `HQLT_GEMM=0` turns the tiled program off
 * (for comparisons), `HQLT_GEMM_TILE=BM,BN,BK,TM,TN` picks another tiling (for tuning on a new GPU).
 */
export function gemmTile(): GemmTile | null {
  if (process.env.HQLT_GEMM === '0') return null;
  const spec = process.env.HQLT_GEMM_TILE;
  if (!spec) return DEFAULT_TILE;
  const [BM, BN, BK, TM, TN] = spec.split(',').map(Number) as number[];
  const t = { BM: BM!, BN: BN!, BK: BK!, TM: TM!, TN: TN! };
  const ok = Object.values(t).every((x) => Number.isInteger(x) && x > 0) && t.TM % 4 === 0 && t.TN % 4 === 0 && t.BM % t.TM === 0 && t.BN % t.TN === 0;
  const threads = (t.BM / t.TM) * (t.BN / t.TN);
  if (!ok || threads > 1024 || (t.BM * t.BK) % 4 !== 0)
    throw new Error(`HQLT_GEMM_TILE='${spec}' is not a tiling: give BM,BN,BK,TM,TN with TM and TN multiples of 4 dividing BM and BN, at most 1024 invocations (BM/TM · BN/TN), e.g. 128,128,8,8,8.`);
  return t;
}

/** The product's shape: C [batch, M, N] = op(A) [batchA, M, K] · op(B) [batchB, K, N], batchA/batchB 1 or batch. */
export interface GemmShape {
  batch: number;
  M: number;
  N: number;
  K: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Whether A (B) has one matrix shared by every batch entry. */
  broadcastA: boolean;
  broadcastB: boolean;
}

/** Workgroups the split aims for (a few per multiprocessor), and the shortest chunk of the inner dimension. */
const TARGET_WORKGROUPS = 1024;
const MIN_CHUNK = 512;

/** Chunks of the inner dimension for a product with `blocks` output blocks (1: no split). */
export function gemmSplits(blocks: number, K: number): number {
  if (blocks * 2 >= TARGET_WORKGROUPS) return 1;
  return Math.max(1, Math.min(Math.ceil(TARGET_WORKGROUPS / blocks), Math.floor(K / MIN_CHUNK)));
}

/** Whether a product is large enough for the tiled program to beat tfjs' (small ones are launch-bound anyway). */
export function usesGemm(s: Pick<GemmShape, 'batch' | 'M' | 'N' | 'K'>): boolean {
  return s.M >= 64 && s.N >= 64 && s.K >= 16 && s.batch * s.M * s.N * s.K >= 2 ** 25;
}

function gemmProgram(s: GemmShape, t: GemmTile, splits: number): FusedProgram {
  const { batch, M, N, K } = s;
  const { BM, BN, BK, TM, TN } = t;
  const [NX, NY] = [BN / TN, BM / TM]; // invocations along columns and rows
  const NT = NX * NY;
  const [bm, bn] = [Math.ceil(M / BM), Math.ceil(N / BN)];
  const chunk = Math.ceil(Math.ceil(K / splits) / BK) * BK;
  const tiles = chunk / BK;
  const [SA, SB] = [BM + 4, BN + 4]; // padded k-major rows: stores of a transposed operand spread over the banks
  const [LA, LB] = [Math.ceil((BM * BK) / NT), Math.ceil((BN * BK) / NT)];
  // Element e of a staged tile: (row r, inner k) of A, (inner k, column c) of B, contiguous along the stored axis.
  const aAt = s.transposeA
    ? { k: `e / ${BM}u`, r: `e % ${BM}u`, at: `(k0 + k) * ${M}u + r0 + r` }
    : { k: `e % ${BK}u`, r: `e / ${BK}u`, at: `(r0 + r) * ${K}u + k0 + k` };
  const bAt = s.transposeB
    ? { k: `e % ${BK}u`, c: `e / ${BK}u`, at: `(c0 + c) * ${K}u + k0 + k` }
    : { k: `e / ${BN}u`, c: `e % ${BN}u`, at: `(k0 + k) * ${N}u + c0 + c` };
  const loads = (n: number, total: number, reg: string, body: string) =>
    Array.from({ length: n }, (_, i) => `  { let e = lid + ${i * NT}u; ${total % NT === 0 || (i + 1) * NT <= total ? '' : `if (e < ${total}u) `}{ ${body.replaceAll('$R', `${reg}[${i}]`)} } }`).join('\n');
  const loadA = loads(LA, BM * BK, 'ra', `let k = ${aAt.k}; let r = ${aAt.r}; $R = select(0.0, in_a[aBase + ${aAt.at}], r0 + r < ${M}u && k0 + k < kEnd);`);
  const loadB = loads(LB, BN * BK, 'rb', `let k = ${bAt.k}; let c = ${bAt.c}; $R = select(0.0, in_b[bBase + ${bAt.at}], c0 + c < ${N}u && k0 + k < kEnd);`);
  const storeA = loads(LA, BM * BK, 'ra', `let i = (${aAt.k}) * ${SA}u + ${aAt.r}; ta4[i / 4u][i % 4u] = $R;`);
  const storeB = loads(LB, BN * BK, 'rb', `let i = (${bAt.k}) * ${SB}u + ${bAt.c}; tb4[i / 4u][i % 4u] = $R;`);
  const [GM, GN] = [TM / 4, TN / 4]; // vec4 groups per invocation along rows and columns
  const acc = (i: number, j: number) => `c${i}_${j}`;
  const accs: string[] = [];
  for (let i = 0; i < TM; i++) for (let j = 0; j < GN; j++) accs.push(acc(i, j));
  // Rows of group g: (g·NY + ty)·4 + 0..3; columns of group g: (g·NX + tx)·4 + 0..3.
  const inner: string[] = [];
  for (let g = 0; g < GM; g++) inner.push(`    let a${g} = ta4[k * ${SA / 4}u + ${g * NY}u + ty];`);
  for (let g = 0; g < GN; g++) inner.push(`    let b${g} = tb4[k * ${SB / 4}u + ${g * NX}u + tx];`);
  for (let i = 0; i < TM; i++)
    for (let j = 0; j < GN; j++) inner.push(`    ${acc(i, j)} = fma(vec4<f32>(a${Math.floor(i / 4)}[${i % 4}]), b${j}, ${acc(i, j)});`);
  const writes: string[] = [];
  for (let i = 0; i < TM; i++)
    for (let j = 0; j < GN; j++) {
      const row = `r0 + ${(Math.floor(i / 4) * NY) * 4 + (i % 4)}u + ty * 4u`;
      const col = `c0 + ${j * NX * 4}u + tx * 4u`;
      writes.push(`  { let r = ${row}; let c = ${col}; if (r < ${M}u) { let o = cBase + r * ${N}u + c;` +
        [0, 1, 2, 3].map((x) => ` if (c + ${x}u < ${N}u) { out_c[o + ${x}u] = ${acc(i, j)}[${x}]; }`).join('') + ' } }');
    }
  return {
    key: `HqltGemm:${JSON.stringify(s)}:${JSON.stringify(t)}:${splits}`,
    inputs: ['a', 'b'],
    outputs: [{ name: 'c', shape: [splits * batch * M * N] }],
    workgroupSize: NT,
    workgroups: splits * batch * bm * bn,
    source: /* wgsl */ `
var<workgroup> ta4: array<vec4<f32>, ${(BK * SA) / 4}>;
var<workgroup> tb4: array<vec4<f32>, ${(BK * SB) / 4}>;

fn main(wg: u32, lid: u32) {
  // Column blocks vary fastest: neighbouring workgroups share A's rows in the cache.
  let n0 = wg % ${bn}u;
  let m0 = (wg / ${bn}u) % ${bm}u;
  let bi = (wg / ${bn * bm}u) % ${batch}u;
  let part = wg / ${bn * bm * batch}u;
  let r0 = m0 * ${BM}u;
  let c0 = n0 * ${BN}u;
  let aBase = ${s.broadcastA ? '0u' : `bi * ${M * K}u`};
  let bBase = ${s.broadcastB ? '0u' : `bi * ${K * N}u`};
  let cBase = (part * ${batch}u + bi) * ${M * N}u;
  let kStart = part * ${chunk}u;
  let kEnd = min(kStart + ${chunk}u, ${K}u);
  let tx = lid % ${NX}u;
  let ty = lid / ${NX}u;
  var ra: array<f32, ${LA}>;
  var rb: array<f32, ${LB}>;
${accs.map((a) => `  var ${a} = vec4<f32>(0.0);`).join('\n')}
  var k0 = kStart;
${loadA}
${loadB}
  for (var tile = 0u; tile < ${tiles}u; tile++) {
    workgroupBarrier();
${storeA}
${storeB}
    workgroupBarrier();
    k0 += ${BK}u;
    if (tile + 1u < ${tiles}u) {
${loadA}
${loadB}
    }
    for (var k = 0u; k < ${BK}u; k++) {
${inner.join('\n')}
    }
  }
${writes.join('\n')}
}`,
  };
}

/** out [n] = Σ_p parts [P, n], p in order. */
export function sumParts(P: number, n: number): FusedProgram {
  return {
    key: `HqltSumParts:${P}:${n}`,
    inputs: ['parts'],
    outputs: [{ name: 'sum', shape: [n] }],
    workgroupSize: 256,
    workgroups: Math.ceil(n / 256),
    source: /* wgsl */ `
fn main(wg: u32, lid: u32) {
  let i = wg * 256u + lid;
  if (i >= ${n}u) { return; }
  var s = 0.0;
  for (var p = 0u; p < ${P}u; p++) { s += in_parts[p * ${n}u + i]; }
  out_sum[i] = s;
}`,
  };
}

interface Disposer {
  disposeData(dataId: tf.DataId): void;
}

/**
 * C = op(A)·op(B) by the tiled program, as a flat tensor [batch·M·N] owned by the caller (reshape it to the
 * product's shape). A and B are float32 tensors on the WebGPU backend, stored as the shape says.
 */
export function gemm(backend: unknown, a: tf.TensorInfo, b: tf.TensorInfo, s: GemmShape, tile: GemmTile = DEFAULT_TILE): tf.TensorInfo {
  const bytes = 4 * tile.BK * (tile.BM + tile.BN + 8);
  if (!fits(bytes, (tile.BM / tile.TM) * (tile.BN / tile.TN), 3))
    throw new Error(`The matrix-product tiling ${JSON.stringify(tile)} needs ${bytes} bytes of workgroup memory or more invocations than this GPU has per workgroup: pick a smaller one (HQLT_GEMM_TILE).`);
  const blocks = s.batch * Math.ceil(s.M / tile.BM) * Math.ceil(s.N / tile.BN);
  const splits = gemmSplits(blocks, s.K);
  const [parts] = runProgram(backend, gemmProgram(s, tile, splits), [a, b]);
  if (splits === 1) return parts!;
  const [sum] = runProgram(backend, sumParts(splits, s.batch * s.M * s.N), [parts!]);
  (backend as Disposer).disposeData(parts!.dataId);
  return sum!;
}
