/**
 * Matrix products on tfjs' WebGPU backend: fast, and reproducible for weight gradients.
 *
 * Large products (projections over every token of a batch and their gradients) run on the register-tiled program
 * of `gemm.ts` (`usesGemm`; `HQLT_GEMM=0` turns it off), which splits weight gradients X^T·dY along their long
 * inner dimension and adds the parts in a fixed order. The rest go to tfjs' programs, with two changes for the
 * products below that size. A weight gradient with few outputs and a long inner dimension would get tfjs' split-K
 * program, which adds partial sums with float atomics in whatever order the GPU runs them (two `hqlt train
 * --backend webgpu` runs with one seed parted after a few updates): it is split along the inner dimension into P
 * equal chunks run as one batched matMul, whose parts one small kernel adds in order, or, where the inner dimension
 * has no power-of-two factor, runs on tfjs' small-output program, which also sums in a fixed order. Input gradients
 * dY·Wᵀ run on a transposed copy of W (`transposesSmallB`): tfjs' vec4 program needs an untransposed B.
 */
import * as tf from '@tensorflow/tfjs';
import { wrapKernel } from '../kernels.js';
import { runProgram } from './runner.js';
import { gemm, gemmTile, sumParts, tensorCores, tensorTile, usesGemm, type GemmShape } from './gemm.js';

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

/** The shape of BatchMatMul(a, b) for the tiled program, or null where its batch dimensions do not fit it. */
export function gemmShape(a: number[], b: number[], transposeA: boolean, transposeB: boolean): GemmShape | null {
  if (a.length < 2 || b.length < 2 || a.length > 3 || b.length > 3) return null;
  const [batchA, batchB] = [a.length === 3 ? a[0]! : 1, b.length === 3 ? b[0]! : 1];
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const [ra, rb] = [a.slice(-2) as [number, number], b.slice(-2) as [number, number]];
  const [M, K] = transposeA ? [ra[1], ra[0]] : ra;
  const N = transposeB ? rb[0] : rb[1];
  const batch = Math.max(batchA, batchB);
  return { batch, M, N, K, transposeA, transposeB, broadcastA: batchA === 1 && batch > 1, broadcastB: batchB === 1 && batch > 1 };
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
      const floats = a.dtype === 'float32' && b.dtype === 'float32';
      const shape = name === 'BatchMatMul' && floats ? gemmShape(a.shape, b.shape, transposeA, transposeB) : null;
      const tile = shape && usesGemm(shape) ? gemmTile() : null;
      if (shape && tile) {
        const matrix = tensorCores();
        const c = gemm(args.backend, a, b, shape, matrix ? { matrix, tile: tensorTile(matrix) } : tile);
        const dims = a.shape.length === 3 || b.shape.length === 3 ? [shape.batch, shape.M, shape.N] : [shape.M, shape.N];
        const out = reshapeKernel({ inputs: { x: c }, attrs: { shape: dims }, backend: args.backend }) as tf.TensorInfo;
        backend.disposeData(c.dataId);
        return out;
      }
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
