/**
 * Tensor building blocks tuned for the WebAssembly backend's real costs: 2-D non-transposed matMul is fast
 * (20+ GFLOP/s) while batched or transposed matMul is slow, and every op costs ~5 µs. So projections flatten
 * to 2-D and their gradients transpose explicitly before a plain matMul.
 */
import * as tf from '@tensorflow/tfjs';
import { fusedKernelsActive } from './webgpu/index.js';
import { fusedRmsNorm } from './webgpu/rowwise.js';
import { wrapKernel } from './kernels.js';

/**
 * x [N, in] @ w [in, out] with a gradient that only uses non-transposed 2-D matMuls.
 * (tfjs' own matMul gradient uses transposeA/transposeB, which the wasm backend runs ~10x slower.)
 */
export function matMul2d(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  // Outside gradient recording (acting) the custom-gradient wrapper only costs time; WebGPU's matMul runs transposed
  // operands natively, so with the fused kernels on its own gradient saves two Transpose dispatches.
  return recording() && !fusedKernelsActive() ? matMul2dGrad(x, w) : tf.matMul(x, w);
}

/**
 * aᵀ for a [N, M]. wasm's 2-D Transpose is 2-3x slower than its rank-3 one, so transpose the view [N, f, M/f] by
 * [1, 2, 0] (same result, reshapes are free).
 */
export function transpose2d(a: tf.Tensor): tf.Tensor2D {
  const [n, m] = a.shape as [number, number];
  const f = m % 4 === 0 ? 4 : m % 2 === 0 ? 2 : 1;
  if (f === 1 || tf.getBackend() !== 'wasm') return tf.transpose(a as tf.Tensor2D);
  return tf.reshape(tf.transpose(tf.reshape(a, [n, f, m / f]), [1, 2, 0]), [m, n]);
}

/** Whether a gradient tape is recording (custom-gradient wrappers are needed only then). */
export function recording(): boolean {
  return tf.engine().state.gradientDepth > 0;
}

const matMul2dGrad = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, transpose2d(ws!)), tf.matMul(transpose2d(xs!), dy as tf.Tensor2D)];
    },
  };
}) as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** `f` of x [..., in] seen as rows [N, in], giving [..., out]. */
function overRows<R extends tf.Rank>(x: tf.Tensor<R>, outDim: number, f: (rows: tf.Tensor2D) => tf.Tensor2D): tf.Tensor<R> {
  // A 2-D x needs no reshapes (each is still a kernel call, counted against acting steps).
  if (x.rank === 2) return f(x as tf.Tensor2D) as unknown as tf.Tensor<R>;
  const y = f(tf.reshape(x, [-1, x.shape[x.rank - 1]!]) as tf.Tensor2D);
  return tf.reshape(y, [...x.shape.slice(0, -1), outDim]) as unknown as tf.Tensor<R>;
}

/** Applies a linear map w [in, out] over the last axis of x [..., in] (no bias). */
export function linear<R extends tf.Rank>(x: tf.Tensor<R>, w: tf.Tensor2D): tf.Tensor<R> {
  return overRows(x, w.shape[1], (rows) => matMul2d(rows, w));
}

/**
 * x [..., in] @ w [in, out] + b, rectified when `relu`. With the fused WebGPU kernels on it is one dispatch (tfjs'
 * fused matMul, bias and activation in its epilogue) instead of two or three; elsewhere the plain ops, whose numbers
 * the pinned CPU runs fix.
 */
export function affine<R extends tf.Rank>(x: tf.Tensor<R>, w: tf.Tensor2D, b: tf.Tensor1D, relu = false): tf.Tensor<R> {
  return tf.tidy(() => {
    if (!fusedKernelsActive()) {
      const y = tf.add(linear(x, w), b);
      return (relu ? tf.relu(y) : y) as tf.Tensor<R>;
    }
    return overRows(x, w.shape[1], (rows) => tf.fused.matMul({ a: rows, b: w, bias: b, activation: relu ? 'relu' : 'linear' }) as tf.Tensor2D);
  });
}

/**
 * A float32 one-hot matrix [N, depth] of indices [N] (an index outside [0, depth) gives a zero row). Not tf.oneHot's
 * float32 dtype: the wasm backend (tfjs 4.22) writes int32 bits into such a tensor, so every one reads as ~1e-45.
 * tf.oneHot also refuses a depth of 1 (a categorical component with a single choice).
 */
export function oneHotFloat(indices: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(depth === 1 ? tf.expandDims(tf.equal(indices, 0), 1) : tf.oneHot(indices, depth), 'float32') as tf.Tensor2D);
}

/** RMSNorm over the last axis with a learned scale (eps inside the square root, as PyTorch's RMSNorm). */
export function rmsNorm<R extends tf.Rank>(x: tf.Tensor<R>, weight: tf.Tensor1D, eps = 1e-5): tf.Tensor<R> {
  if (fusedKernelsActive()) return fusedRmsNorm(x, weight, eps);
  return tf.tidy(() => {
    if (!recording()) return tf.mul(normalised(x, eps), weight) as tf.Tensor<R>;
    let fn = rmsNormGrads.get(eps);
    if (!fn) rmsNormGrads.set(eps, (fn = rmsNormWithGrad(eps)));
    const d = x.shape[x.rank - 1]!;
    return tf.reshape(fn(tf.reshape(x, [-1, d]) as tf.Tensor2D, weight), x.shape) as tf.Tensor<R>;
  });
}

const normalised = (x: tf.Tensor, eps: number) => tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)));

/**
 * RMSNorm of x [N, D] with a hand-written gradient: dx = r (g − x̂ mean(g x̂)) with g = dy w, x̂ = x r, and
 * dw = Σ_rows dy x̂ as a 1-row matMul (autodiff's broadcast gradients reduce over rows, slow on wasm).
 */
function rmsNormWithGrad(eps: number): (x: tf.Tensor2D, w: tf.Tensor1D) => tf.Tensor2D {
  return tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps));
    const xhat = tf.mul(x, r);
    save([xhat, r, w]);
    return {
      value: tf.mul(xhat, w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, ws] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const g = tf.mul(dy, ws);
        const dx = tf.mul(rs, tf.sub(g, tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
        const dw = tf.reshape(tf.matMul(tf.ones([1, xh.shape[0]]), tf.mul(dy, xh)), ws.shape);
        return [dx, dw];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor2D, w: tf.Tensor1D) => tf.Tensor2D;
}

const rmsNormGrads = new Map<number, (x: tf.Tensor2D, w: tf.Tensor1D) => tf.Tensor2D>();

/**
 * Batched matMul a [N, M, K] @ b [N, K, P] → [N, M, P]. On wasm, BatchMatMul is a naive loop (~2 GFLOP/s); a
 * depthwise convolution with one channel per batch entry, the filter spanning K and stride K, computes the same
 * products 2-4x faster. Its gradient uses the same trick (wasm has no depthwise-conv gradient kernels).
 */
export function bmm(a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  if (a.rank !== 3 || b.rank !== 3) throw new Error(`bmm needs rank-3 operands, got [${a.shape}] and [${b.shape}]`);
  if (tf.getBackend() !== 'wasm') return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D);
  if (!recording()) return depthwiseProduct(tf.transpose(a as tf.Tensor3D, [1, 2, 0]), tf.transpose(b as tf.Tensor3D, [1, 0, 2]));
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

/** The parts of the wasm backend that the slice kernels below use. */
interface WasmBackendView {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  incRef(dataId: tf.DataId): void;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

/** Copies x[begin : begin + size] into a new wasm tensor, reading the heap in place. */
function wasmSlice(backend: WasmBackendView, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return out;
  // Views only after makeOutput: allocating may grow (and detach) the heap.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  // Runs are copied with copyWithin on one view of the whole heap: a subarray view per run costs more than the copy.
  const heap = new (src.constructor as Float32ArrayConstructor)(src.buffer);
  const srcBase = src.byteOffset / src.BYTES_PER_ELEMENT;
  const dstBase = dst.byteOffset / dst.BYTES_PER_ELEMENT;
  const shape = x.shape;
  // Trailing axes taken whole, plus the last partial axis d, form contiguous runs.
  let d = shape.length - 1;
  let inner = 1;
  while (d > 0 && size[d] === shape[d]) inner *= shape[d--]!;
  const run = size[d]! * inner;
  const strides = new Array<number>(d + 1);
  for (let i = d, s = inner; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  const idx = begin.slice(0, d);
  const runs = total / run;
  for (let r = 0; r < runs; r++) {
    let offset = begin[d]! * strides[d]!;
    for (let i = 0; i < d; i++) offset += idx[i]! * strides[i]!;
    heap.copyWithin(dstBase + r * run, srcBase + offset, srcBase + offset + run);
    for (let i = d - 1; i >= 0; i--) {
      if (++idx[i]! < begin[i]! + size[i]!) break;
      idx[i] = begin[i]!;
    }
  }
  return out;
}

const SHIFT_APPEND = 'HqltShiftAppend';

/**
 * buf [B, H, S, d] moved one slot towards the front, with the streams whose keep [B] is 0 zeroed, and fresh
 * [B, H, d] written as the last slot: the step form's sliding buffers. On wasm (outside gradient recording) one
 * kernel does it in a single copy; composite ops elsewhere.
 */
export function shiftAppend(buf: tf.Tensor, fresh: tf.Tensor, keep: tf.Tensor): tf.Tensor {
  if (fastSliceInstalled && tf.getBackend() === 'wasm' && !recording())
    return tf.engine().runKernel(SHIFT_APPEND, { buf, fresh, keep }) as tf.Tensor;
  const [B, H, S, d] = buf.shape as number[];
  const old = tf.mul(tf.slice(buf, [0, 0, 1, 0], [B!, H!, S! - 1, d!]), tf.reshape(keep, [B!, 1, 1, 1]));
  return tf.concat([old, tf.expandDims(fresh, 2)], 2);
}

function shiftAppendWasm(backend: WasmBackendView, buf: tf.TensorInfo, fresh: tf.TensorInfo, keep: tf.TensorInfo): tf.TensorInfo {
  const [B, H, S, d] = buf.shape as number[];
  const out = backend.makeOutput(buf.shape, 'float32');
  // Views only after makeOutput: allocating may grow (and detach) the heap.
  const src = backend.typedArrayFromHeap(buf);
  const add = backend.typedArrayFromHeap(fresh);
  const k = backend.typedArrayFromHeap(keep);
  const dst = backend.typedArrayFromHeap(out);
  const run = (S! - 1) * d!;
  for (let b = 0; b < B!; b++) {
    const scale = k[b]!;
    for (let h = 0; h < H!; h++) {
      const row = b * H! + h;
      const o = row * S! * d!;
      if (scale === 1) dst.set(src.subarray(o + d!, o + d! + run), o);
      else if (scale === 0) dst.fill(0, o, o + run);
      else for (let i = 0; i < run; i++) dst[o + i] = src[o + d! + i]! * scale;
      dst.set(add.subarray(row * d!, (row + 1) * d!), o + run);
    }
  }
  return out;
}

let fastSliceInstalled = false;

/**
 * The wasm backend's Slice (and SplitV and Unpack, built on it) copies the whole input to JS before slicing, so
 * every slice costs the size of its input (unstacking N pieces costs N times the tensor). These replacements read
 * the heap in place: same results, cost proportional to the output. Also a copy-free Identity and the step form's
 * `shiftAppend` kernel. Installed once, when wasm is active.
 */
export function installFastWasmSlice(): void {
  if (fastSliceInstalled || tf.getBackend() !== 'wasm') return;
  fastSliceInstalled = true;
  const replace = (name: string, kernelFunc: tf.KernelFunc) =>
    wrapKernel(name, 'wasm', (fallback) => (args) => (args.inputs[Object.keys(args.inputs)[0]!]!.dtype === 'string' ? fallback(args) : kernelFunc(args)));
  tf.registerKernel({
    kernelName: SHIFT_APPEND,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) =>
      shiftAppendWasm(backend as unknown as WasmBackendView, inputs.buf!, inputs.fresh!, inputs.keep!),
  });
  // Identity (tf.clone, and the copies tfjs' gradient tape keeps of every saved input and output) copies the data
  // on wasm; tensors are immutable, so sharing it as the cpu backend does is enough (as wasm's own Reshape does).
  replace('Identity', ({ inputs, backend }) => {
    const x = inputs.x!;
    (backend as unknown as WasmBackendView).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  replace('Slice', ({ inputs, backend, attrs = {} }) => {
    const x = inputs.x!;
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin as number[], attrs.size as number[]);
    return wasmSlice(backend as unknown as WasmBackendView, x, begin, size);
  });
  replace('SplitV', ({ inputs, backend, attrs = {} }) => {
    const x = inputs.x!;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number[], axis);
    const begin = x.shape.map(() => 0);
    return sizes.map((s) => {
      const size = x.shape.slice();
      size[axis] = s;
      const piece = wasmSlice(backend as unknown as WasmBackendView, x, begin.slice(), size);
      begin[axis]! += s;
      return piece;
    });
  });
  replace('Unpack', ({ inputs, backend, attrs = {} }) => {
    const x = inputs.value!;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
    const outShape = x.shape.filter((_, i) => i !== axis);
    const size = x.shape.slice();
    size[axis] = 1;
    return Array.from({ length: x.shape[axis]! }, (_, i) => {
      const begin = x.shape.map((_, a) => (a === axis ? i : 0));
      const piece = wasmSlice(backend as unknown as WasmBackendView, x, begin, size);
      return { ...piece, shape: outShape };
    });
  });
}

/** Named tensors: the inputs and outputs of a `checkpoint`ed block. */
export type TensorRecord = Record<string, tf.Tensor>;

/**
 * Rematerialisation: runs f so that gradient recording keeps only its inputs, and the backward pass runs f again
 * under its own tape to backpropagate. Trades one extra forward of f for the memory of all its intermediates (the
 * wasm heap ends near 2 GB). `constants` (masks, positions) are passed to f too but get no gradient. Outside
 * recording it is f itself.
 */
export function checkpoint(
  inputs: TensorRecord,
  constants: TensorRecord,
  f: (xs: TensorRecord) => TensorRecord,
): TensorRecord {
  const all = { ...constants, ...inputs };
  if (!recording()) return f(all);
  const names = Object.keys(all);
  const differentiable = names.map((n) => n in inputs);
  const named = (xs: tf.Tensor[]) => Object.fromEntries(names.map((n, i) => [n, xs[i]!]));
  let outNames: string[] = [];
  let shapes: number[][] = [];
  // customGrad takes one output: the outputs travel flattened and concatenated.
  const flat = (ys: TensorRecord) => {
    outNames = Object.keys(ys);
    shapes = outNames.map((n) => ys[n]!.shape);
    return tf.concat(outNames.map((n) => tf.reshape(ys[n]!, [-1])));
  };
  const run = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xs = args.slice(0, -1) as tf.Tensor[];
    (args[args.length - 1] as tf.GradSaveFunc)(xs);
    return {
      value: flat(f(named(xs))),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // A nested gradients() call replaces (then clears) the engine's tape list, which the outer pass still needs
        // for its clean-up: keep it aside.
        const state = tf.engine().state as unknown as { activeTape: unknown };
        const outer = state.activeTape;
        try {
          const wrt = saved.filter((_, i) => differentiable[i]);
          const { value, grads } = tf.engine().gradients(() => flat(f(named(saved))), wrt, dy, true);
          value.dispose();
          let j = 0;
          return saved.map((x, i) => (differentiable[i] ? grads[j++] : null) ?? tf.zerosLike(x));
        } finally {
          state.activeTape = outer;
        }
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]) as (...xs: tf.Tensor[]) => tf.Tensor;
  const out = run(...names.map((n) => all[n]!));
  // (SplitV's gradient fails for a single piece.)
  const parts = shapes.length === 1 ? [out] : tf.split(out, shapes.map((s) => s.reduce((a, b) => a * b, 1)));
  return Object.fromEntries(outNames.map((n, i) => [n, tf.reshape(parts[i]!, shapes[i]!)]));
}
