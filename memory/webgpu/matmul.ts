/**
 * Matrix products on tfjs' WebGPU backend that are fast and reproducible for weight gradients.
 *
 * A weight gradient X^T·dY has few outputs (in × out) and a long inner dimension (every token of the batch). tfjs
 * runs it either as its packed program, one 32×32 tile per workgroup walking the whole inner dimension (200
 * workgroups for a 256 × 772 gradient: most of the GPU idles), or as its split-K program, which adds partial sums
 * into the output with float atomics in whatever order the GPU runs them (two `hqlt train --backend webgpu` runs
 * with one seed parted after a few updates). Here such a product is split along the inner dimension into P equal
 * chunks, whose P products run as one batched matMul (P times the workgroups), and the P partial results are added
 * in a fixed order by one small kernel: same bits run after run on one device. Products that cannot be split so
 * (an inner dimension without a power-of-two factor) and would get split-K use tfjs' small-output program instead,
 * which also sums in a fixed order. Input gradients dY·Wᵀ run on a transposed copy of W (`transposesSmallB`).
 */
import * as tf from '@tensorflow/tfjs';
import { wrapKernel } from '../kernels.js';
import { runProgram, type FusedProgram } from './runner.js';

const PROGRAM_TYPE = 'WEBGPU_MATMUL_PROGRAM_TYPE';
/** tfjs' MatMulProgramType.MatMulSmallOutputSizeProgram. */
const SMALL_OUTPUT = 2;
/** Split when the product has at most this many 32×32 output tiles and an inner dimension at least this long. */
const MAX_TILES = 1024;
const MIN_INNER = 4096;
/** Transpose a small B for A·Bᵀ when A has at least this many rows. */
const MIN_ROWS = 4096;
/** Aim for about this many workgroups, with chunks of at least MIN_CHUNK inner steps. */
const TARGET_WORKGROUPS = 4096;
const MIN_CHUNK = 256;

interface MatMulBackend {
  thresholdToIncreaseWorkgroups: number;
  disposeData(dataId: tf.DataId): void;
}

/** Whether tfjs' heuristic (batchMatMulImpl in tfjs-backend-webgpu 4.22) would pick split-K for this product. */
export function picksSplitK(a: number[], b: number[], transposeA: boolean, transposeB: boolean, threshold: number): boolean {
  const [ra, rb] = [a.length, b.length];
  const inner = transposeB ? b[rb - 1]! : b[rb - 2]!;
  const outerA = transposeA ? a[ra - 1]! : a[ra - 2]!;
  const outerB = transposeB ? b[rb - 2]! : b[rb - 1]!;
  const batch = Math.max(tf.util.sizeFromShape(a.slice(0, -2)), tf.util.sizeFromShape(b.slice(0, -2)));
  const workgroups = batch * Math.ceil(outerA / 32) * Math.ceil(outerB / 32);
  const few = workgroups <= threshold || (outerA <= 8 && workgroups <= threshold * 2);
  return few && batch * outerA * outerB > 128 && batch === 1 && inner >= 2000;
}

/**
 * Chunks of the inner dimension for a product A^T·B with A [inner, m], B [inner, n] (batch 1): a power of two P
 * dividing `inner`, with chunks of at least MIN_CHUNK steps and about TARGET_WORKGROUPS workgroups in all; 1 when
 * the product is not worth splitting (many output tiles or a short inner dimension).
 */
export function innerSplits(inner: number, m: number, n: number): number {
  const tiles = Math.ceil(m / 32) * Math.ceil(n / 32);
  if (tiles > MAX_TILES || inner < MIN_INNER) return 1;
  let p = 1;
  while (inner % (2 * p) === 0 && inner / (2 * p) >= MIN_CHUNK && 2 * p * tiles <= TARGET_WORKGROUPS) p *= 2;
  return p < 4 ? 1 : p;
}

/**
 * Whether A·Bᵀ (every input gradient dY·Wᵀ of a layer) runs faster as A·(Bᵀ materialised): tfjs' vec4 program
 * needs an untransposed B, so for a small 2-D B and a long A one transpose of B buys the vec4 loads.
 */
export function transposesSmallB(a: number[], b: number[], transposeA: boolean, transposeB: boolean): boolean {
  if (!transposeB || transposeA || a.length !== 2 || b.length !== 2) return false;
  const [rows, inner] = a as [number, number];
  return rows >= MIN_ROWS && b[0]! * b[1]! <= 1 << 20 && inner % 4 === 0 && b[0]! % 4 === 0;
}

/** out [n] = Σ_p parts [P, n], p in order. */
function sumParts(P: number, n: number): FusedProgram {
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

/** Wraps tfjs' WebGPU BatchMatMul and _FusedMatMul kernels (once per process) with the choices above. */
export function deterministicMatMul(): void {
  const reshapeKernel = tf.getKernel('Reshape', 'webgpu')!.kernelFunc;
  const transposeKernel = tf.getKernel('Transpose', 'webgpu')!.kernelFunc;
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    wrapKernel(name, 'webgpu', (matMul) => (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      const backend = args.backend as unknown as MatMulBackend;
      const env = tf.env();
      if (env.getNumber(PROGRAM_TYPE) >= 0) return matMul(args);
      if (name === 'BatchMatMul' && transposeA && !transposeB && a.shape.length === 2 && b.shape.length === 2) {
        const [inner, m] = a.shape as [number, number];
        const n = b.shape[1]!;
        const P = innerSplits(inner, m, n);
        if (P > 1) {
          const reshape = (t: tf.TensorInfo, shape: number[]) => reshapeKernel({ inputs: { x: t }, attrs: { shape }, backend: args.backend }) as tf.TensorInfo;
          const [a3, b3] = [reshape(a, [P, inner / P, m]), reshape(b, [P, inner / P, n])];
          const parts = matMul({ ...args, inputs: { a: a3, b: b3 } }) as tf.TensorInfo;
          const [sum] = runProgram(args.backend, sumParts(P, m * n), [parts]);
          const out = reshape(sum!, [m, n]);
          for (const t of [a3, b3, parts, sum!]) backend.disposeData(t.dataId);
          return out;
        }
      }
      if (name === 'BatchMatMul' && transposesSmallB(a.shape, b.shape, transposeA, transposeB)) {
        const bT = transposeKernel({ inputs: { x: b }, attrs: { perm: [1, 0] }, backend: args.backend }) as tf.TensorInfo;
        const out = matMul({ ...args, inputs: { a, b: bT }, attrs: { ...args.attrs, transposeB: false } });
        backend.disposeData(bT.dataId);
        return out;
      }
      const flag = env.getNumber('WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL');
      const threshold = flag > 0 ? flag : backend.thresholdToIncreaseWorkgroups;
      if (!picksSplitK(a.shape, b.shape, transposeA, transposeB, threshold)) return matMul(args);
      env.set(PROGRAM_TYPE, SMALL_OUTPUT);
      try {
        return matMul(args);
      } finally {
        env.set(PROGRAM_TYPE, -1);
      }
    });
  }
}
