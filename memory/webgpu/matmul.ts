/**
 * Reproducible matrix products on tfjs' WebGPU backend. For a product with few outputs and a long inner dimension
 * (every weight gradient X^T·dY of a training pass) tfjs picks its split-K program, which adds the partial sums
 * into the output with float atomics, in whatever order the GPU runs them: two `hqlt train --backend webgpu` runs
 * with one seed parted after a few updates. Such products get tfjs' small-output program instead, which sums in a
 * fixed order (same results run after run on one device).
 */
import * as tf from '@tensorflow/tfjs';
import { wrapKernel } from '../kernels.js';

const PROGRAM_TYPE = 'WEBGPU_MATMUL_PROGRAM_TYPE';
/** tfjs' MatMulProgramType.MatMulSmallOutputSizeProgram. */
const SMALL_OUTPUT = 2;

interface MatMulBackend {
  thresholdToIncreaseWorkgroups: number;
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

/** Wraps tfjs' WebGPU BatchMatMul and _FusedMatMul kernels (once per process). */
export function deterministicMatMul(): void {
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    wrapKernel(name, 'webgpu', (matMul) => (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      const env = tf.env();
      const flag = env.getNumber('WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL');
      const threshold = flag > 0 ? flag : (args.backend as unknown as MatMulBackend).thresholdToIncreaseWorkgroups;
      if (env.getNumber(PROGRAM_TYPE) >= 0 || !picksSplitK(a.shape, b.shape, transposeA, transposeB, threshold)) return matMul(args);
      env.set(PROGRAM_TYPE, SMALL_OUTPUT);
      try {
        return matMul(args);
      } finally {
        env.set(PROGRAM_TYPE, -1);
      }
    });
  }
}
