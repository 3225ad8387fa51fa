/**
 * Long reductions in two passes on tfjs' WebGPU backend. Its reduce kernel runs one workgroup per output, so a
 * reduction to a few values (a loss `tf.mean` over a whole batch of activations) runs on one of the GPU's
 * ~130 multiprocessors: 32 ms for the mean over B=640 × T=256 × D=256 on the H200 (`bench/gpu.js --profile`),
 * a tenth of a training pass. Such a reduction is split into P equal chunks per output, reduced, and the P
 * partial results reduced again with the same kernel (sum of sums, mean of equal-size means, max of maxima).
 */
import * as tf from '@tensorflow/tfjs';
import { wrapKernel } from '../kernels.js';

/** The kernels split, with the name of their axis attribute. */
const SPLIT = { Sum: 'axis', Mean: 'axis', Max: 'reductionIndices', Min: 'axis' } as const;
/** Split when each output reduces at least this many values and there are at most this many outputs. */
const MIN_REDUCE = 1 << 16;
const MAX_OUTPUTS = 256;

interface KernelBackend {
  disposeData(dataId: tf.DataId): void;
}

/** Chunks per output: the largest power of two up to 1,024 that divides n and leaves chunks of ≥ 1,024 values. */
function chunksFor(n: number): number {
  let p = 1;
  while (p < 1024 && n % (2 * p) === 0 && n / (2 * p) >= 1024) p *= 2;
  return p;
}

/** Wraps tfjs' WebGPU Sum, Mean, Max and Min kernels (once per process). */
export function splitLongReductions(): void {
  const reshapeKernel = tf.getKernel('Reshape', 'webgpu')!.kernelFunc;
  for (const [name, axisAttr] of Object.entries(SPLIT)) {
    wrapKernel(name, 'webgpu', (reduce) => (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const attrs = args.attrs as Record<string, unknown>;
      const axes = tf.util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape);
      const keepDims = attrs.keepDims === true;
      const rank = x.shape.length;
      const inner = axes.length > 0 && tf.backend_util.getAxesPermutation(axes, rank) === null;
      const inSize = axes.reduce((n, a) => n * x.shape[a]!, 1);
      const outSize = tf.util.sizeFromShape(x.shape) / Math.max(inSize, 1);
      const P = inner && inSize >= MIN_REDUCE && outSize <= MAX_OUTPUTS ? chunksFor(inSize) : 1;
      if (P < 4) return reduce(args);
      const backend = args.backend as unknown as KernelBackend;
      const reshape = (t: tf.TensorInfo, shape: number[]) => reshapeKernel({ inputs: { x: t }, attrs: { shape }, backend: args.backend }) as tf.TensorInfo;
      const stage = (t: tf.TensorInfo) => reduce({ ...args, inputs: { x: t }, attrs: { [axisAttr]: [1], keepDims: false } }) as tf.TensorInfo;
      const chunks = reshape(x, [outSize * P, inSize / P]);
      const partial = stage(chunks);
      const grouped = reshape(partial, [outSize, P]);
      const total = stage(grouped);
      const shape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
      const out = reshape(total, shape);
      for (const t of [chunks, partial, grouped, total]) backend.disposeData(t.dataId);
      return out;
    });
  }
}
