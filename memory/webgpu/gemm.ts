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
 *
 * With `--precision f16` (`useTensorCores`), the same products run on tensor cores instead (`tensorCoreProgram`):
 * blocks of f16 operands multiplied into f32 sums by WebGPU subgroup matrices, with the same splits.
 */
import * as tf from '@tensorflow/tfjs';
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

/**
 * WGSL: the output block a workgroup computes (r0, c0), its batch entry's offsets into A, B and C, and its chunk
 * [kStart, kEnd) of the inner dimension. Column blocks vary fastest: neighbouring workgroups share A's rows in the
 * cache.
 */
function blockOrigin(s: GemmShape, BM: number, BN: number, chunk: number): string {
  const { batch, M, N, K } = s;
  const [bm, bn] = [Math.ceil(M / BM), Math.ceil(N / BN)];
  return `  let n0 = wg % ${bn}u;
  let m0 = (wg / ${bn}u) % ${bm}u;
  let bi = (wg / ${bn * bm}u) % ${batch}u;
  let part = wg / ${bn * bm * batch}u;
  let r0 = m0 * ${BM}u;
  let c0 = n0 * ${BN}u;
  let aBase = ${s.broadcastA ? '0u' : `bi * ${M * K}u`};
  let bBase = ${s.broadcastB ? '0u' : `bi * ${K * N}u`};
  let cBase = (part * ${batch}u + bi) * ${M * N}u;
  let kStart = part * ${chunk}u;
  let kEnd = min(kStart + ${chunk}u, ${K}u);`;
}

/**
 * WGSL: `n` unrolled steps over a staged tile of `total` elements; at step i the workgroup's NT invocations take
 * element e = lid + i·NT (none past the end), with `$R` in `body` standing for the register reg[i].
 */
function eachStaged(n: number, NT: number, total: number, reg: string, body: string): string {
  return Array.from({ length: n }, (_, i) => {
    const guard = total % NT === 0 || (i + 1) * NT <= total ? '' : `if (e < ${total}u) `;
    return `  { let e = lid + ${i * NT}u; ${guard}{ ${body.replaceAll('$R', `${reg}[${i}]`)} } }`;
  }).join('\n');
}

/**
 * WGSL: walks the chunk BK inner steps at a time. `load` reads the next tiles from global memory into registers,
 * `stage` writes the registers to workgroup memory, and `compute` multiplies the staged tiles; the next tiles'
 * global reads are issued before the current tile's products.
 */
function tileLoop(tiles: number, BK: number, load: string, stage: string, compute: string): string {
  return `  var k0 = kStart;
${load}
  for (var tile = 0u; tile < ${tiles}u; tile++) {
    workgroupBarrier();
${stage}
    workgroupBarrier();
    k0 += ${BK}u;
    if (tile + 1u < ${tiles}u) {
${load}
    }
${compute}
  }`;
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
  const loads = (n: number, total: number, reg: string, body: string) => eachStaged(n, NT, total, reg, body);
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
${blockOrigin(s, BM, BN, chunk)}
  let tx = lid % ${NX}u;
  let ty = lid / ${NX}u;
  var ra: array<f32, ${LA}>;
  var rb: array<f32, ${LB}>;
${accs.map((a) => `  var ${a} = vec4<f32>(0.0);`).join('\n')}
${tileLoop(tiles, BK, loadA + '\n' + loadB, storeA + '\n' + storeB, `    for (var k = 0u; k < ${BK}u; k++) {
${inner.join('\n')}
    }`)}
${writes.join('\n')}
}`,
  };
}

/** The shape (rows M, columns N, inner K) of one subgroup-matrix product with f16 operands and f32 results. */
export interface MatrixShape {
  M: number;
  N: number;
  K: number;
  /** Invocations per subgroup (the matrices are spread over one subgroup). */
  subgroup: number;
  /**
   * Spell the subgroup-matrix builtins in plain WGSL with their meaning (f16 rounding done in f32): slow, for testing
   * the program on adapters without subgroup matrices.
   */
  emulated?: boolean;
}

let matrices: MatrixShape | null = null;

/** Runs the large products on tensor cores with subgroup matrices of this shape (`--precision f16`), or in f32 (null). */
export function useTensorCores(shape: MatrixShape | null): void {
  matrices = shape;
}

/** The subgroup-matrix shape of the tensor-core products, or null when they run in f32 (the default). */
export function tensorCores(): MatrixShape | null {
  return matrices;
}

/**
 * Block sizes of the tensor-core product (`--precision f16`): BM × BN outputs per workgroup, BK inner steps staged
 * at a time, and WM × WN subgroups, each computing a (BM/WM) × (BN/WN) part as subgroup matrices.
 */
export interface TensorTile {
  BM: number;
  BN: number;
  BK: number;
  WM: number;
  WN: number;
}

/**
 * 128 × 128 blocks over 8 subgroups, each 32 × 64 outputs (8 result matrices): about half the registers of 4
 * subgroups with 64 × 64 each, whose accumulators and staged loads would crowd an invocation's 255 (a choice on
 * paper, to be timed against others with HQLT_GEMM_TILE_F16 on a GPU).
 */
export const DEFAULT_TENSOR_TILE: TensorTile = { BM: 128, BN: 128, BK: 32, WM: 4, WN: 2 };

/** The tensor-core blocks for subgroup matrices of shape `mx`: `HQLT_GEMM_TILE_F16=BM,BN,BK,WM,WN` picks others. */
export function tensorTile(mx: MatrixShape): TensorTile {
  const spec = process.env.HQLT_GEMM_TILE_F16;
  if (!spec) return DEFAULT_TENSOR_TILE;
  const [BM, BN, BK, WM, WN] = spec.split(',').map(Number) as number[];
  const t = { BM: BM!, BN: BN!, BK: BK!, WM: WM!, WN: WN! };
  const ok = Object.values(t).every((x) => Number.isInteger(x) && x > 0) && t.BM % (t.WM * mx.M) === 0 && t.BN % (t.WN * mx.N) === 0 && t.BK % mx.K === 0 && t.BK % 8 === 0;
  if (!ok || t.WM * t.WN * mx.subgroup > 1024)
    throw new Error(`HQLT_GEMM_TILE_F16='${spec}' is not a tiling: give BM,BN,BK,WM,WN with BM a multiple of WM·${mx.M}, BN of WN·${mx.N}, BK of ${Math.max(8, mx.K)}, at most ${1024 / mx.subgroup} subgroups (WM·WN), e.g. ${Object.values(DEFAULT_TENSOR_TILE).join(',')}.`);
  return t;
}

/**
 * The subgroup-matrix operations of the tensor-core program: WGSL's builtins (`chromium_experimental_subgroup_matrix`),
 * or, with `mx.emulated`, plain WGSL functions with their meaning. Loads read the staged tiles `sa` (left) and `sb`
 * (right); stores write C (`out_c`) or the scratch tile `sc`; matrix [r, c] lies at at + stride·r + c (row-major) or
 * at + stride·c + r (column-major).
 */
function matrixOps(mx: MatrixShape) {
  const left = `subgroup_matrix_left<f16, ${mx.K}, ${mx.M}>`;
  const right = `subgroup_matrix_right<f16, ${mx.N}, ${mx.K}>`;
  const result = `subgroup_matrix_result<f32, ${mx.N}, ${mx.M}>`;
  if (!mx.emulated)
    return {
      directives: 'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, chromium.subgroup_matrix_uniformity);',
      half: 'f16',
      toHalf: (x: string) => `f16(${x})`,
      helpers: '',
      zero: `${result}()`,
      loadLeft: (at: string, colMajor: boolean, stride: number) => `subgroupMatrixLoad<${left}>(&sa, ${at}, ${colMajor}, ${stride}u)`,
      loadRight: (at: string, colMajor: boolean, stride: number) => `subgroupMatrixLoad<${right}>(&sb, ${at}, ${colMajor}, ${stride}u)`,
      mma: (l: string, r: string, c: string) => `subgroupMatrixMultiplyAccumulate(${l}, ${r}, ${c})`,
      store: (to: 'out_c' | 'sc', at: string, value: string, stride: number | string) => `subgroupMatrixStore(&${to}, ${at}, ${value}, false, ${stride}u)`,
    };
  // Emulated: a left or right matrix is a reference to its staged tile (which no one writes between the load and
  // the products), and each invocation of a subgroup holds every subgroup-th element of a result.
  const { M, N, K, subgroup } = mx;
  const E = Math.ceil((M * N) / subgroup);
  const elements = (body: string) => `
  for (var x = 0u; x < ${E}u; x++) {
    let e = lane + ${subgroup}u * x;
    if (e < ${M * N}u) { let r = e / ${N}u; let c = e % ${N}u; ${body} }
  }`;
  const store = (name: string, to: string) => `
fn ${name}(at: u32, m: array<f32, ${E}>, stride: u32, lane: u32) {${elements(`${to}[at + stride * r + c] = m[x];`)}
}`;
  return {
    directives: '',
    half: 'f32',
    toHalf: (x: string) => `unpack2x16float(pack2x16float(vec2<f32>(${x}, 0.0))).x`,
    helpers: `
struct SmRef { at: u32, colMajor: bool, stride: u32 }
fn smAt(m: SmRef, r: u32, c: u32) -> u32 { return select(m.at + m.stride * r + c, m.at + m.stride * c + r, m.colMajor); }
fn smMma(l: SmRef, q: SmRef, acc: array<f32, ${E}>, lane: u32) -> array<f32, ${E}> {
  var m = acc;${elements(`var sum = m[x];
    for (var k = 0u; k < ${K}u; k++) { sum = fma(sa[smAt(l, r, k)], sb[smAt(q, k, c)], sum); }
    m[x] = sum;`)}
  return m;
}
${store('smStoreOut', 'out_c')}
${store('smStoreScratch', 'sc')}`,
    zero: `array<f32, ${E}>()`,
    loadLeft: (at: string, colMajor: boolean, stride: number) => `SmRef(${at}, ${colMajor}, ${stride}u)`,
    loadRight: (at: string, colMajor: boolean, stride: number) => `SmRef(${at}, ${colMajor}, ${stride}u)`,
    mma: (l: string, r: string, c: string) => `smMma(${l}, ${r}, ${c}, lane)`,
    store: (to: 'out_c' | 'sc', at: string, value: string, stride: number | string) => `${to === 'sc' ? 'smStoreScratch' : 'smStoreOut'}(${at}, ${value}, ${stride}u, lane)`,
  };
}

/**
 * C = op(A)·op(B) on tensor cores: f32 operands are rounded to f16 as they are staged in workgroup memory (keeping
 * their stored layout; column-major subgroup-matrix loads read the transposed ones), products are summed in f32,
 * and the next tiles' global reads are issued before the current tile's products, as in the f32 program.
 */
export function tensorCoreProgram(s: GemmShape, t: TensorTile, mx: MatrixShape, splits: number): FusedProgram {
  const { batch, M, N, K } = s;
  const { BM, BN, BK, WM, WN } = t;
  const NT = WM * WN * mx.subgroup;
  const [FM, FN] = [BM / WM / mx.M, BN / WN / mx.N]; // matrices per subgroup along rows and columns
  const [bm, bn] = [Math.ceil(M / BM), Math.ceil(N / BN)];
  const chunk = Math.ceil(Math.ceil(K / splits) / BK) * BK;
  const tiles = chunk / BK;
  // A staged [BM][BK], or [BK][BM] when stored transposed; B [BK][BN], or [BN][BK]. Minor axes padded by 8.
  const a = s.transposeA
    ? { major: BK, minor: BM, names: ['k', 'r'], at: `(k0 + k) * ${M}u + r0 + r` }
    : { major: BM, minor: BK, names: ['r', 'k'], at: `(r0 + r) * ${K}u + k0 + k` };
  const b = s.transposeB
    ? { major: BN, minor: BK, names: ['c', 'k'], at: `(c0 + c) * ${K}u + k0 + k` }
    : { major: BK, minor: BN, names: ['k', 'c'], at: `(k0 + k) * ${N}u + c0 + c` };
  const [SA, SB] = [a.minor + 8, b.minor + 8];
  const [LA, LB] = [Math.ceil((BM * BK) / NT), Math.ceil((BN * BK) / NT)];
  const stage = (op: typeof a, n: number, reg: string, body: string) =>
    eachStaged(n, NT, op.major * op.minor, reg, `let ${op.names[0]} = e / ${op.minor}u; let ${op.names[1]} = e % ${op.minor}u; ${body}`);
  const loadA = stage(a, LA, 'ra', `$R = select(0.0, in_a[aBase + ${a.at}], r0 + r < ${M}u && k0 + k < kEnd);`);
  const loadB = stage(b, LB, 'rb', `$R = select(0.0, in_b[bBase + ${b.at}], c0 + c < ${N}u && k0 + k < kEnd);`);
  const ops = matrixOps(mx);
  const storeA = stage(a, LA, 'ra', `sa[${a.names[0]} * ${SA}u + ${a.names[1]}] = ${ops.toHalf('$R')};`);
  const storeB = stage(b, LB, 'rb', `sb[${b.names[0]} * ${SB}u + ${b.names[1]}] = ${ops.toHalf('$R')};`);
  const rowOf = (i: number) => `wr * ${BM / WM}u + ${i * mx.M}u`;
  const colOf = (j: number) => `wc * ${BN / WN}u + ${j * mx.N}u`;
  const products: string[] = [];
  for (let ks = 0; ks < BK / mx.K; ks++) {
    const k = ks * mx.K;
    products.push('    {'); // each step's matrices in a scope of their own
    for (let i = 0; i < FM; i++) {
      const at = s.transposeA ? `${k * SA}u + ${rowOf(i)}` : `(${rowOf(i)}) * ${SA}u + ${k}u`;
      products.push(`    let l${i} = ${ops.loadLeft(at, s.transposeA, SA)};`);
    }
    for (let j = 0; j < FN; j++) {
      const at = s.transposeB ? `(${colOf(j)}) * ${SB}u + ${k}u` : `${k * SB}u + ${colOf(j)}`;
      products.push(`    let q${j} = ${ops.loadRight(at, s.transposeB, SB)};`);
    }
    for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) products.push(`    c${i}_${j} = ${ops.mma(`l${i}`, `q${j}`, `c${i}_${j}`)};`);
    products.push('    }');
  }
  const accs = Array.from({ length: FM * FN }, (_, x) => `c${Math.floor(x / FN)}_${x % FN}`);
  const MN = mx.M * mx.N;
  // Whole blocks store straight to C (rows 16-byte aligned); edge blocks go through workgroup memory, guarded.
  const direct = accs.map((c, x) => `    ${ops.store('out_c', `cBase + (r0 + ${rowOf(Math.floor(x / FN))}) * ${N}u + c0 + ${colOf(x % FN)}`, c, N)};`);
  const guarded = accs.map((c, x) => `    ${ops.store('sc', `warp * ${MN}u`, c, mx.N)};
    workgroupBarrier();
    for (var e = lane; e < ${MN}u; e += ${mx.subgroup}u) {
      let r = r0 + ${rowOf(Math.floor(x / FN))} + e / ${mx.N}u;
      let c = c0 + ${colOf(x % FN)} + e % ${mx.N}u;
      if (r < ${M}u && c < ${N}u) { out_c[cBase + r * ${N}u + c] = sc[warp * ${MN}u + e]; }
    }
    workgroupBarrier();`);
  return {
    key: `HqltGemmF16:${JSON.stringify(s)}:${JSON.stringify(t)}:${JSON.stringify(mx)}:${splits}`,
    inputs: ['a', 'b'],
    outputs: [{ name: 'c', shape: [splits * batch * M * N] }],
    workgroupSize: NT,
    workgroups: splits * batch * bm * bn,
    directives: ops.directives,
    source: /* wgsl */ `
var<workgroup> sa: array<${ops.half}, ${a.major * SA}>;
var<workgroup> sb: array<${ops.half}, ${b.major * SB}>;
var<workgroup> sc: array<f32, ${WM * WN * MN}>;
${ops.helpers}

fn main(wg: u32, lid: u32) {
${blockOrigin(s, BM, BN, chunk)}
  // Subgroups are consecutive invocations (the device runs full subgroups of a fixed size).
  let warp = lid / ${mx.subgroup}u;
  let lane = lid % ${mx.subgroup}u;
  let wr = warp / ${WN}u;
  let wc = warp % ${WN}u;
  var ra: array<f32, ${LA}>;
  var rb: array<f32, ${LB}>;
${accs.map((c) => `  var ${c} = ${ops.zero};`).join('\n')}
${tileLoop(tiles, BK, loadA + '\n' + loadB, storeA + '\n' + storeB, products.join('\n'))}
  if (${N % 4 === 0 ? `r0 + ${BM}u <= ${M}u && c0 + ${BN}u <= ${N}u` : 'false'}) {
${direct.join('\n')}
  } else {
${guarded.join('\n')}
  }
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

/** The tensor-core product's matrices and blocks, for `gemm`. */
export interface TensorCoreTiling {
  matrix: MatrixShape;
  tile: TensorTile;
}

/**
 * C = op(A)·op(B) by the tiled program (or the tensor-core one, given a `TensorCoreTiling`), as a flat tensor [batch·M·N] owned by the caller (reshape it to the
 * product's shape). A and B are float32 tensors on the WebGPU backend, stored as the shape says.
 */
export function gemm(backend: unknown, a: tf.TensorInfo, b: tf.TensorInfo, s: GemmShape, tiling: GemmTile | TensorCoreTiling = DEFAULT_TILE): tf.TensorInfo {
  const block = 'matrix' in tiling ? tiling.tile : tiling;
  const splits = gemmSplits(s.batch * Math.ceil(s.M / block.BM) * Math.ceil(s.N / block.BN), s.K);
  if (!('matrix' in tiling)) {
    const bytes = 4 * tiling.BK * (tiling.BM + tiling.BN + 8);
    if (!fits(bytes, (tiling.BM / tiling.TM) * (tiling.BN / tiling.TN), 3))
      throw new Error(`The matrix-product tiling ${JSON.stringify(tiling)} needs ${bytes} bytes of workgroup memory or more invocations than this GPU has per workgroup: pick a smaller one (HQLT_GEMM_TILE).`);
  }
  const program = 'matrix' in tiling ? tensorCoreProgram(s, tiling.tile, tiling.matrix, splits) : gemmProgram(s, tiling, splits);
  const [parts] = runProgram(backend, program, [a, b]);
  if (splits === 1) return parts!;
  const [sum] = runProgram(backend, sumParts(splits, s.batch * s.M * s.N), [parts!]);
  (backend as Disposer).disposeData(parts!.dataId);
  return sum!;
}

/**
 * Runs the tensor-core product with the blocks `tensorTile` gives on a few small products (every transpose, whole
 * and partial blocks) and returns the largest error relative to Σ|a·b| of a float64 host product: within f16
 * rounding (2·2⁻¹¹) when the device's subgroup matrices mean what the program assumes.
 */
export async function checkTensorCores(matrix: MatrixShape): Promise<number> {
  const tile = tensorTile(matrix);
  const products: [number, number, number, boolean, boolean][] = [
    [tile.BM, 2 * tile.BN, 48, false, false],
    [100, 60, 40, true, false],
    [70, tile.BN + 2, 50, false, true],
    [tile.BM, tile.BN, 32, true, true],
  ];
  let worst = 0;
  for (const [M, N, K, transposeA, transposeB] of products) {
    const s: GemmShape = { batch: 1, M, N, K, transposeA, transposeB, broadcastA: false, broadcastB: false };
    const as = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i + 1));
    const bs = Float32Array.from({ length: K * N }, (_, i) => Math.cos(3 * i));
    const [a, b] = [tf.tensor(as, transposeA ? [K, M] : [M, K]), tf.tensor(bs, transposeB ? [N, K] : [K, N])];
    const c = tf.engine().makeTensorFromTensorInfo(gemm(tf.backend(), a, b, s, { matrix, tile }));
    const got = (await c.data()) as Float32Array;
    tf.dispose([a, b, c]);
    const err = productError(got, as, bs, s);
    if (!(err <= worst)) worst = err; // NaN sticks
  }
  return worst;
}

/**
 * The largest |C − op(A)·op(B)| of a product computed as `s` says, relative to Σ|a·b| of that entry, against a
 * float64 product on the host (NaN where C has one).
 */
export function productError(got: Float32Array, as: Float32Array, bs: Float32Array, s: GemmShape): number {
  const { batch, M, N, K } = s;
  let worst = 0;
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let [ref, scale] = [0, 0];
        for (let k = 0; k < K; k++) {
          const x = as[(s.broadcastA ? 0 : n * M * K) + (s.transposeA ? k * M + i : i * K + k)]!;
          const y = bs[(s.broadcastB ? 0 : n * K * N) + (s.transposeB ? j * K + k : k * N + j)]!;
          ref += x * y;
          scale += Math.abs(x * y);
        }
        const err = Math.abs(got[(n * M + i) * N + j]! - ref) / Math.max(scale, 1e-30);
        if (!(err <= worst)) worst = err;
      }
  return worst;
}
