/**
 * GPU time of the matrix products of one HQLT-sync training pass (D=256, L=2, H=4), tfjs' own programs against the
 * ones `memory/webgpu/matmul.ts` picks, in one process (issue 11):
 *
 *   node dist/bench/matmul.js [--rows 163840] [--runs 10] [--precision f16]   (rows = B·T tokens; 163,840 is B=640, T=256)
 *
 * Per product: GPU time from timestamp queries (on a device without them, such as a software adapter: wall time of
 * --runs back-to-back runs up to a readback, per run) and TFLOP/s, first with
 * tfjs' packed 32×32 program forced (WEBGPU_MATMUL_PROGRAM_TYPE=3, which bypasses the wrapper; what tfjs picks for
 * these shapes, except split-K for some weight gradients), then as the wrapper runs it (the tiled product of
 * `memory/webgpu/gemm.ts` at these sizes; `HQLT_GEMM=0` for the wrapper's tfjs paths). With --precision f16, a third
 * column runs the tensor-core product (f16 operands, f32 sums) and gives its largest difference from the f32 one,
 * relative to the f32 product's largest magnitude.
 *
 * On the H100 (2026-12-07) these standalone times read several times the same products' times inside a training
 * pass, for both programs; `bench/gpu.js --profile`'s per-shape table is the reference for products in a pass.
 */
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '../memory/backend.js';
import { tensorCores, useTensorCores } from '../memory/webgpu/gemm.js';
import { timestampsAvailable } from '../memory/webgpu/profile.js';

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '163840' }, runs: { type: 'string', default: '10' }, precision: { type: 'string', default: 'f32' } },
});
const RUNS = Number(values.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs takes a positive integer, got '${values.runs}'`);
const N = Number(values.rows);
if (!Number.isInteger(N) || N < 1) throw new Error(`--rows takes a positive integer, got '${values.rows}'`);
// Before the backend starts: Dawn's flags are fixed when the WebGPU instance is made.
process.env.HQLT_WEBGPU_TIMESTAMPS = '1';
const info = await initBackend('webgpu', values.precision);
const matrix = tensorCores();
if (info.active !== 'webgpu') throw new Error('bench/matmul: needs WebGPU.');
const timestamps = timestampsAvailable();
if (!timestamps) console.log(`No 'timestamp-query' on this device: times are wall times of ${RUNS} runs up to a readback, per run.`);

/**
 * [name, A shape, B shape, transposeA, transposeB]: each distinct product of the pass (`bench/gpu.js --profile`'s
 * per-shape table): the input projection (256 → q, k, v, β, gates: 1028), the SwiGLU feed-forward's up (256 → 688,
 * twice) and down (688 → 256) projections and the output projection (256 → 256), each with its input and weight
 * gradients.
 */
const withGradients = (name: string, from: number, to: number): [string, number[], number[], boolean, boolean][] => [
  [`${name} X·W (${from}→${to})`, [N, from], [from, to], false, false],
  ['its input gradient dY·Wᵀ', [N, to], [from, to], false, true],
  ['its weight gradient Xᵀ·dY', [N, from], [N, to], true, false],
];
const PRODUCTS = [
  ...withGradients('input projection', 256, 1028),
  ...withGradients('feed-forward up', 256, 688),
  ...withGradients('feed-forward down', 688, 256),
  ...withGradients('output projection', 256, 256),
];

/** ms of one product (after a warm-up run): GPU time, or wall time without timestamps. */
async function gpuMs(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): Promise<number> {
  const runs = async (n: number) => {
    let y = tf.matMul(a, b, ta, tb);
    for (let i = 1; i < n; i++) {
      y.dispose();
      y = tf.matMul(a, b, ta, tb);
    }
    await y.data();
    y.dispose();
  };
  await runs(1);
  if (timestamps) {
    const p = await tf.profile(() => tf.matMul(a, b, ta, tb));
    return p.kernels.reduce((s, k) => s + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0), 0);
  }
  const start = performance.now();
  await runs(RUNS);
  return (performance.now() - start) / RUNS;
}

const f16Header = matrix ? ` ${'f16 ms'.padStart(9)} ${'TFLOP/s'.padStart(8)} ${'f16 diff'.padStart(9)}` : '';
console.log(`${'product'.padEnd(34)} ${'shape'.padEnd(26)} ${'tfjs ms'.padStart(9)} ${'TFLOP/s'.padStart(8)} ${'ours ms'.padStart(9)} ${'TFLOP/s'.padStart(8)}${f16Header}`);
const rows: Record<string, unknown>[] = [];
for (const [name, sa, sb, ta, tb] of PRODUCTS) {
  const [a, b] = [tf.randomNormal(sa, 0, 1, 'float32', 1), tf.randomNormal(sb, 0, 1, 'float32', 2)];
  const [m, k] = ta ? [sa[1]!, sa[0]!] : [sa[0]!, sa[1]!];
  const n = tb ? sb[0]! : sb[1]!;
  tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', 3);
  const tfjs = await gpuMs(a, b, ta, tb);
  tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', -1);
  useTensorCores(null);
  const ours = await gpuMs(a, b, ta, tb);
  const tflops = (ms: number) => (ms > 0 ? (2 * m * n * k) / ms / 1e9 : 0);
  const shape = `${m}×${k} · ${k}×${n}`;
  const row: Record<string, unknown> = { name, m, k, n, tfjsMs: tfjs, oursMs: ours };
  let f16Cells = '';
  if (matrix) {
    const y32 = tf.matMul(a, b, ta, tb);
    useTensorCores(matrix);
    const f16 = await gpuMs(a, b, ta, tb);
    const y16 = tf.matMul(a, b, ta, tb);
    const diff = tf.tidy(() => tf.div(tf.max(tf.abs(tf.sub(y16, y32))), tf.max(tf.abs(y32))));
    const rel = (await diff.data())[0]!;
    tf.dispose([y32, y16, diff]);
    f16Cells = ` ${f16.toFixed(3).padStart(9)} ${tflops(f16).toPrecision(3).padStart(8)} ${rel.toExponential(2).padStart(9)}`;
    Object.assign(row, { f16Ms: f16, f16RelDiff: rel });
  }
  console.log(
    `${name.padEnd(34)} ${shape.padEnd(26)} ${tfjs.toFixed(3).padStart(9)} ${tflops(tfjs).toPrecision(3).padStart(8)} ${ours.toFixed(3).padStart(9)} ${tflops(ours).toPrecision(3).padStart(8)}${f16Cells}`,
  );
  rows.push(row);
  tf.dispose([a, b]);
}
useTensorCores(matrix);
console.log(JSON.stringify({ bench: 'matmul', rows: N, precision: values.precision, products: rows }));
