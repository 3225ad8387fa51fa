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

/**
 * Batched matMul a [N, M, K] @ b [N, K, P] → [N, M, P]. On wasm, BatchMatMul is a naive loop (~2 GFLOP/s); a
 * depthwise convolution with one channel per batch entry, the filter spanning K and stride K, computes the same
 * products 2-4x faster. Its gradient uses the same trick (wasm has no depthwise-conv gradient kernels).
 */
export function bmm(a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  if (a.rank !== 3 || b.rank !== 3) throw new Error(`bmm needs rank-3 operands, got [${a.shape}] and [${b.shape}]`);
  if (tf.getBackend() !== 'wasm') return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D);
  return bmmWasm(a as tf.Tensor3D, b as tf.Tensor3D);
}

/** x [M, K, N] (batch last), f [K, N, P] → [N, M, P]: Σ_k x[m, k, n] f[k, n, p]. */
function depthwiseProduct(x: tf.Tensor3D, f: tf.Tensor3D): tf.Tensor3D {
  const [M, K, N] = x.shape;
  const P = f.shape[2];
  const input = tf.reshape(x, [1, 1, M * K, N]) as tf.Tensor4D;
  const y = tf.depthwiseConv2d(input, tf.reshape(f, [1, K, N, P]) as tf.Tensor4D, [1, K], 'valid');
  return tf.transpose(tf.reshape(y, [M, N, P]), [1, 0, 2]);
}

const bmmWasm = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: depthwiseProduct(tf.transpose(a, [1, 2, 0]), tf.transpose(b, [1, 0, 2])),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [as, bs] = saved as tf.Tensor3D[];
      const d = dy as tf.Tensor3D;
      // da = dy bᵀ, db = aᵀ dy, with the operands laid out directly for depthwiseProduct.
      return [
        depthwiseProduct(tf.transpose(d, [1, 2, 0]), tf.transpose(bs!, [2, 0, 1])),
        depthwiseProduct(tf.transpose(as!, [2, 1, 0]), tf.transpose(d, [1, 0, 2])),
      ];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;
