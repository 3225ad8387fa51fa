/**
 * Tensor building blocks tuned for the WebAssembly backend's real costs: 2-D non-transposed matMul is fast
 * (20+ GFLOP/s) while batched or transposed matMul is slow, and every op costs ~5 µs. So projections flatten
 * to 2-D and their gradients transpose explicitly before a plain matMul.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * x [N, in] @ w [in, out] with a gradient that only uses non-transposed 2-D matMuls.
 * (tfjs' own matMul gradient uses transposeA/transposeB, which the wasm backend runs ~10x slower.)
 */
export const matMul2d = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy as tf.Tensor2D)];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** Applies a linear map w [in, out] over the last axis of x [..., in] (no bias). */
export function linear<R extends tf.Rank>(x: tf.Tensor<R>, w: tf.Tensor2D): tf.Tensor<R> {
  const [inDim, outDim] = w.shape;
  const lead = x.shape.slice(0, -1);
  const y = matMul2d(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w);
  return tf.reshape(y, [...lead, outDim]) as unknown as tf.Tensor<R>;
}

/** RMSNorm over the last axis with a learned scale (eps inside the square root, as PyTorch's RMSNorm). */
export function rmsNorm<R extends tf.Rank>(x: tf.Tensor<R>, weight: tf.Tensor1D, eps = 1e-5): tf.Tensor<R> {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight) as tf.Tensor<R>;
  });
}
