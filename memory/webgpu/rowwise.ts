/**
 * Fused row-wise kernels, each one dispatch forward and one backward (tfjs' ops take 6 and about 15): RMSNorm with
 * a learned scale (also as the HQLT layer's mixing + per-head norm epilogue), the SwiGLU product SiLU(g) ⊙ u, and
 * SiLU alone.
 */
import * as tf from '@tensorflow/tfjs';
import { registerProgramKernel, type FusedProgram } from './runner.js';
import { ACTIVATIONS, lit, strided } from './wgsl.js';

const NORM = 'HqltRmsNorm';
const NORM_GRAD = 'HqltRmsNormGrad';
const SWIGLU = 'HqltSwiGlu';
const SWIGLU_GRAD = 'HqltSwiGluGrad';
const SILU = 'HqltSilu';
const SILU_GRAD = 'HqltSiluGrad';
/** Invocations per row of the norm kernels (a tree reduction over the row). */
const ROW_THREADS = 64;

/** How an epilogue combines the two memory reads before the norm ('none': a plain RMSNorm of x). */
export type Mixing = 'none' | 'sum' | 'vector' | 'scalar';

const MIX_INPUTS: Record<Mixing, string[]> = { none: ['x'], sum: ['fw', 'kv'], vector: ['fw', 'kv', 'gate'], scalar: ['fw', 'kv', 'gate'] };

/**
 * RMSNorm of rows of width D with scale w, optionally of the HQLT mixing of two reads (spec "Mixing"; rows are
 * (step, head) pairs of H heads): forward writes y = x r w with x the (mixed) row and r = 1/√(mean(x²) + eps);
 * backward (`grad`) writes dx = r (g − x̂ mean(g x̂)) with g = dy w, x̂ = x r, pushed through the mixing to the reads
 * and gates, and the products dy x̂ whose column sums are dw. One workgroup per row, tree reductions.
 */
function normProgram(shapes: Record<string, number[]>, eps: number, grad: boolean, mixing: Mixing, H: number): FusedProgram {
  const NT = ROW_THREADS;
  const main = shapes[mixing === 'none' ? 'x' : 'fw']!;
  const D = main[main.length - 1]!;
  const N = main.reduce((a, b) => a * b, 1) / D;
  // The mixed value of component i of this row, and (scalar mixing) the two gates of its head.
  const value = {
    none: 'in_x[base + i]',
    sum: 'in_fw[base + i] + in_kv[base + i]',
    vector: 'in_kv[base + i] + in_gate[base + i] * (in_fw[base + i] - in_kv[base + i])',
    scalar: 'gates.x * in_fw[base + i] + gates.y * in_kv[base + i]',
  }[mixing];
  const chain = {
    none: 'out_dx[base + i] = dm;',
    sum: 'out_dfw[base + i] = dm;\n    out_dkv[base + i] = dm;',
    vector: `let gi = in_gate[base + i];
    out_dfw[base + i] = dm * gi;
    out_dkv[base + i] = dm * (1.0 - gi);
    out_dgate[base + i] = dm * (in_fw[base + i] - in_kv[base + i]);`,
    scalar: `out_dfw[base + i] = dm * gates.x;
    out_dkv[base + i] = dm * gates.y;
    acc += vec2<f32>(dm * in_fw[base + i], dm * in_kv[base + i]);`,
  }[mixing];
  const source = /* wgsl */ `
var<workgroup> part: array<vec2<f32>, ${NT}>;

/** Sum of every invocation's v (all invocations call it). */
fn reduce(v: vec2<f32>, lid: u32) -> vec2<f32> {
  workgroupBarrier();
  part[lid] = v;
  for (var s = ${NT / 2}u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) { part[lid] += part[lid + s]; }
  }
  workgroupBarrier();
  return part[0];
}

fn main(row: u32, lid: u32) {
  let base = row * ${D}u;
  ${mixing === 'scalar' ? `let gi = (row / ${H}u) * ${2 * H}u + row % ${H}u;
  let gates = vec2<f32>(in_gate[gi], in_gate[gi + ${H}u]);` : ''}
  var acc = vec2<f32>(0.0);
  ${strided('i', D, NT)} {
    let x = ${value};
    acc += vec2<f32>(x * x, ${grad ? 'in_dy[base + i] * in_w[i] * x' : '0.0'});
  }
  let sums = reduce(acc, lid);
  let r = inverseSqrt(sums.x / ${lit(D)} + ${lit(eps)});
${
  grad
    ? `  // mean(g x̂) = r mean(g x)
  let c = r * sums.y / ${lit(D)};
  acc = vec2<f32>(0.0);
  ${strided('i', D, NT)} {
    let xh = (${value}) * r;
    let dy = in_dy[base + i];
    let dm = r * (dy * in_w[i] - xh * c);
    ${chain}
    out_dyx[base + i] = dy * xh;
  }
${
  mixing === 'scalar'
    ? `  let dg = reduce(acc, lid);
  if (lid == 0u) {
    out_dgate[gi] = dg.x;
    out_dgate[gi + ${H}u] = dg.y;
  }`
    : ''
}`
    : `  ${strided('i', D, NT)} { out_y[base + i] = (${value}) * r * in_w[i]; }`
}
}
`;
  const inputs = [...MIX_INPUTS[mixing], 'w', ...(grad ? ['dy'] : [])];
  const gradOutputs = mixing === 'none' ? ['dx'] : ['dfw', 'dkv', ...(mixing === 'sum' ? [] : ['dgate'])];
  return {
    key: `${grad ? NORM_GRAD : NORM}:${JSON.stringify(shapes)}:${eps}:${mixing}:${H}`,
    inputs,
    outputs: grad
      ? [...gradOutputs.map((n) => ({ name: n, shape: shapes[n.slice(1)]! })), { name: 'dyx', shape: main }]
      : [{ name: 'y', shape: main }],
    workgroupSize: NT,
    workgroups: N,
    source,
  };
}

/**
 * SiLU(g) ⊙ u over [N, M] (`gated`), or SiLU(g) alone; backward writes dg = dh u σ(g)(1 + g(1 − σ(g))) (u = 1 for
 * SiLU alone) and du = dh SiLU(g).
 */
function swigluProgram(shape: number[], grad: boolean, gated = true): FusedProgram {
  const NT = 256;
  const size = shape.reduce((a, b) => a * b, 1);
  const u = gated ? ' * in_u[i]' : '';
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
  out_dg[i] = dh${u} * s * (1.0 + g * (1.0 - s));${gated ? '\n  out_du[i] = dh * g * s;' : ''}`
    : `  out_h[i] = g * s${u};`
}
}
`;
  const names = gated ? [SWIGLU, SWIGLU_GRAD] : [SILU, SILU_GRAD];
  const inputs = gated ? ['g', 'u'] : ['g'];
  return {
    key: `${names[grad ? 1 : 0]}:${shape}`,
    inputs: grad ? [...inputs, 'dh'] : inputs,
    outputs: grad ? [{ name: 'dg', shape }, ...(gated ? [{ name: 'du', shape }] : [])] : [{ name: 'h', shape }],
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
    registerProgramKernel(name, (inputs, attrs) => make(inputs, attrs));
  const shapes = (inputs: tf.NamedTensorInfoMap) => Object.fromEntries(Object.entries(inputs).map(([n, t]) => [n, t!.shape]));
  const norm = (grad: boolean) => (i: tf.NamedTensorInfoMap, a: tf.NamedAttrMap) =>
    normProgram(shapes(i), a.eps as number, grad, a.mixing as Mixing, a.heads as number);
  kernel(NORM, norm(false));
  kernel(NORM_GRAD, norm(true));
  kernel(SWIGLU, (i) => swigluProgram(i.g!.shape, false));
  kernel(SWIGLU_GRAD, (i) => swigluProgram(i.g!.shape, true));
  kernel(SILU, (i) => swigluProgram(i.g!.shape, false, false));
  kernel(SILU_GRAD, (i) => swigluProgram(i.g!.shape, true, false));
  // One forward kernel per mixing, so each gradient knows its inputs.
  for (const mixing of Object.keys(MIX_INPUTS) as Mixing[]) {
    const names = [...MIX_INPUTS[mixing], 'w'];
    if (mixing !== 'none') tf.registerKernel({ ...tf.getKernel(NORM, 'webgpu')!, kernelName: normName(mixing) });
    tf.registerGradient({
      kernelName: normName(mixing),
      inputsToSave: names,
      gradFunc: (dy, saved, attrs) => {
        const named: tf.NamedTensorMap = Object.fromEntries(names.map((n, i) => [n, saved[i]!]));
        const outs = tf.engine().runKernel(NORM_GRAD, { ...named, dy: dy as tf.Tensor }, attrs) as tf.Tensor[];
        const dyx = outs.pop()!;
        const w = named.w!;
        const grads: Record<string, () => tf.Tensor> = { w: () => tf.sum(tf.reshape(dyx, [-1, w.shape[0]!]), 0) };
        const gradNames = mixing === 'none' ? ['x'] : ['fw', 'kv', ...(mixing === 'sum' ? [] : ['gate'])];
        gradNames.forEach((n, i) => (grads[n] = () => outs[i]!));
        return grads;
      },
    });
  }
  tf.registerGradient({
    kernelName: SWIGLU,
    inputsToSave: ['g', 'u'],
    gradFunc: (dh, [g, u]) => {
      const [dg, du] = tf.engine().runKernel(SWIGLU_GRAD, { g: g!, u: u!, dh: dh as tf.Tensor }) as tf.Tensor[];
      return { g: () => dg!, u: () => du! };
    },
  });
  tf.registerGradient({
    kernelName: SILU,
    inputsToSave: ['g'],
    gradFunc: (dh, [g]) => ({ g: () => tf.engine().runKernel(SILU_GRAD, { g: g!, dh: dh as tf.Tensor }) as tf.Tensor }),
  });
}

const normName = (mixing: Mixing) => (mixing === 'none' ? NORM : `${NORM}_${mixing}`);

/** RMSNorm over the last axis of x with scale w (WebGPU only). */
export function fusedRmsNorm<T extends tf.Tensor>(x: T, w: tf.Tensor1D, eps: number): T {
  register();
  return tf.engine().runKernel(NORM, { x, w }, { eps, mixing: 'none', heads: 1 }) as T;
}

/**
 * The HQLT output epilogue: mixing of the reads fw, kv [..., H, V] (gates: [..., H V] for 'vector', [..., 2H] for
 * 'scalar') and the per-head RMSNorm, [..., H, V] (WebGPU only).
 */
export function fusedMixNorm(fw: tf.Tensor, kv: tf.Tensor, gate: tf.Tensor | null, w: tf.Tensor1D, mixing: Exclude<Mixing, 'none'>, eps: number): tf.Tensor {
  register();
  const inputs: tf.NamedTensorMap = { fw, kv, w };
  if (mixing !== 'sum') inputs.gate = gate!;
  return tf.engine().runKernel(normName(mixing), inputs, { eps, mixing, heads: fw.shape[fw.rank - 2]! }) as tf.Tensor;
}

/** SiLU(g) ⊙ u (WebGPU only). */
export function fusedSwiGlu<T extends tf.Tensor>(g: T, u: T): T {
  register();
  return tf.engine().runKernel(SWIGLU, { g, u }) as T;
}

/** SiLU(x) = x σ(x) (WebGPU only). */
export function fusedSilu<T extends tf.Tensor>(x: T): T {
  register();
  return tf.engine().runKernel(SILU, { g: x }) as T;
}
