/**
 * Fused row-wise kernels of the residual stack, each one dispatch forward and one backward (tfjs' ops take 6 and
 * about 15): RMSNorm with a learned scale, and the SwiGLU product SiLU(g) ⊙ u of the MLP.
 */
import * as tf from '@tensorflow/tfjs';
import { runProgram, type FusedProgram } from './runner.js';
import { ACTIVATIONS, lit, strided } from './wgsl.js';

const NORM = 'HqltRmsNorm';
const NORM_GRAD = 'HqltRmsNormGrad';
const SWIGLU = 'HqltSwiGlu';
const SWIGLU_GRAD = 'HqltSwiGluGrad';
/** Invocations per row of the norm kernels (a tree reduction over the row). */
const ROW_THREADS = 64;

/**
 * RMSNorm of rows [N, D]: forward writes y = x r w; backward (`grad`) writes dx = r (g − x̂ mean(g x̂)) with g = dy w,
 * x̂ = x r, and the products dy x̂ whose column sums are dw. One workgroup per row; r = 1/√(mean(x²) + eps).
 */
function normProgram(N: number, D: number, eps: number, grad: boolean): FusedProgram {
  const NT = ROW_THREADS;
  const source = /* wgsl */ `
var<workgroup> part: array<vec2<f32>, ${NT}>;

fn main(row: u32, lid: u32) {
  let base = row * ${D}u;
  var acc = vec2<f32>(0.0);
  ${strided('i', D, NT)} {
    let x = in_x[base + i];
    acc += vec2<f32>(x * x, ${grad ? 'in_dy[base + i] * in_w[i] * x' : '0.0'});
  }
  part[lid] = acc;
  for (var s = ${NT / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) { part[lid] += part[lid + s]; }
  }
  workgroupBarrier();
  let r = inverseSqrt(part[0].x / ${lit(D)} + ${lit(eps)});
${
  grad
    ? `  // mean(g x̂) = r mean(g x)
  let c = r * part[0].y / ${lit(D)};
  ${strided('i', D, NT)} {
    let xh = in_x[base + i] * r;
    let dy = in_dy[base + i];
    out_dx[base + i] = r * (dy * in_w[i] - xh * c);
    out_dyx[base + i] = dy * xh;
  }`
    : `  ${strided('i', D, NT)} { out_y[base + i] = in_x[base + i] * r * in_w[i]; }`
}
}
`;
  return {
    key: `${grad ? NORM_GRAD : NORM}:${N}:${D}:${eps}`,
    inputs: grad ? ['x', 'w', 'dy'] : ['x', 'w'],
    outputs: grad ? [{ name: 'dx', shape: [N, D] }, { name: 'dyx', shape: [N, D] }] : [{ name: 'y', shape: [N, D] }],
    workgroupSize: NT,
    workgroups: N,
    source,
  };
}

/** SiLU(g) ⊙ u over [N, M]; backward writes dg = dh u σ(g)(1 + g(1 − σ(g))) and du = dh SiLU(g). */
function swigluProgram(size: number, grad: boolean): FusedProgram {
  const NT = 256;
  const source = /* wgsl */ `
${ACTIVATIONS}
fn main(wg: u32, lid: u32) {
  let i = wg * ${NT}u + lid;
  if (i >= ${size}u) { return; }
  let g = in_g[i];
  let s = sigmoid_(g);
${
  grad
    ? `  let dh = in_dh[i];
  out_dg[i] = dh * in_u[i] * s * (1.0 + g * (1.0 - s));
  out_du[i] = dh * g * s;`
    : '  out_h[i] = g * s * in_u[i];'
}
}
`;
  return {
    key: `${grad ? SWIGLU_GRAD : SWIGLU}:${size}`,
    inputs: grad ? ['g', 'u', 'dh'] : ['g', 'u'],
    outputs: grad ? [{ name: 'dg', shape: [size] }, { name: 'du', shape: [size] }] : [{ name: 'h', shape: [size] }],
    workgroupSize: NT,
    workgroups: Math.ceil(size / NT),
    source,
  };
}

let registered = false;

function register(): void {
  if (registered) return;
  registered = true;
  const kernel = (name: string, make: (inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap) => FusedProgram) =>
    tf.registerKernel({
      kernelName: name,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const p = make(inputs, attrs ?? {});
        const outs = runProgram(backend, p, p.inputs.map((n) => inputs[n]!));
        // Element-wise programs run on flat buffers; give the outputs the inputs' shapes.
        const shape = inputs[p.inputs[0]!]!.shape;
        const shaped = outs.map((t) => ({ ...t, shape }));
        return shaped.length === 1 ? shaped[0]! : shaped;
      },
    });
  const rows = (x: tf.TensorInfo) => [x.shape.slice(0, -1).reduce((a, b) => a * b, 1), x.shape[x.shape.length - 1]!];
  kernel(NORM, (i, a) => normProgram(rows(i.x!)[0]!, rows(i.x!)[1]!, a.eps as number, false));
  kernel(NORM_GRAD, (i, a) => normProgram(rows(i.x!)[0]!, rows(i.x!)[1]!, a.eps as number, true));
  const size = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);
  kernel(SWIGLU, (i) => swigluProgram(size(i.g!), false));
  kernel(SWIGLU_GRAD, (i) => swigluProgram(size(i.g!), true));
  tf.registerGradient({
    kernelName: NORM,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, [x, w], attrs) => {
      const [dx, dyx] = tf.engine().runKernel(NORM_GRAD, { x: x!, w: w!, dy: dy as tf.Tensor }, attrs) as tf.Tensor[];
      const flat = tf.reshape(dyx!, [-1, w!.shape[0]!]);
      return { x: () => dx!, w: () => tf.sum(flat, 0) };
    },
  });
  tf.registerGradient({
    kernelName: SWIGLU,
    inputsToSave: ['g', 'u'],
    gradFunc: (dh, [g, u]) => {
      const [dg, du] = tf.engine().runKernel(SWIGLU_GRAD, { g: g!, u: u!, dh: dh as tf.Tensor }) as tf.Tensor[];
      return { g: () => dg!, u: () => du! };
    },
  });
}

/** RMSNorm over the last axis of x with scale w (WebGPU only). */
export function fusedRmsNorm<T extends tf.Tensor>(x: T, w: tf.Tensor1D, eps: number): T {
  register();
  return tf.engine().runKernel(NORM, { x, w }, { eps }) as T;
}

/** SiLU(g) ⊙ u (WebGPU only). */
export function fusedSwiGlu<T extends tf.Tensor>(g: T, u: T): T {
  register();
  return tf.engine().runKernel(SWIGLU, { g, u }) as T;
}
