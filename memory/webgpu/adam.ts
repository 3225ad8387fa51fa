/**
 * One Adam step of one variable as a single dispatch (the tfjs-ops form in training/optim.ts launches a dozen
 * element-wise kernels per variable, and on WebGPU each costs its host dispatch): reads the weight, both moments,
 * the gradient and the step's scalars, writes the new weight and moments. Same arithmetic, in the same order, as
 * the ops form.
 */
import * as tf from '@tensorflow/tfjs';
import { fits, registerProgramKernel, type FusedProgram } from './runner.js';

const ADAM = 'HqltAdamStep';
const NT = 256;

function adamProgram(size: number, beta1: number, beta2: number, epsilon: number): FusedProgram {
  // f32 literals exactly as tf.scalar would round them.
  const f = (x: number) => `${Math.fround(x).toExponential(9)}`;
  const source = /* wgsl */ `
fn main(wg: u32, lid: u32) {
  let i = wg * ${NT}u + lid;
  if (i >= ${size}u) { return; }
  // k = [gradient scale, 1 - beta1^t, 1 - beta2^t, -learning rate]
  let g = in_g[i] * in_k[0];
  let m = in_m[i] * ${f(beta1)} + g * ${f(1 - beta1)};
  let v = in_v[i] * ${f(beta2)} + (g * g) * ${f(1 - beta2)};
  out_m[i] = m;
  out_v[i] = v;
  out_w[i] = ((m / in_k[1]) / (sqrt(v / in_k[2]) + ${f(epsilon)})) * in_k[3] + in_w[i];
}
`;
  return {
    key: `${ADAM}:${size}:${beta1}:${beta2}:${epsilon}`,
    inputs: ['w', 'm', 'v', 'g', 'k'],
    outputs: ['w', 'm', 'v'].map((name) => ({ name, shape: [size] })),
    workgroupSize: NT,
    workgroups: Math.ceil(size / NT),
    source,
  };
}

let registered = false;

/** Whether the fused Adam step can run here (WebGPU with room for its 8 buffers). */
export function fusedAdamFits(): boolean {
  return fits(0, NT, 8);
}

/**
 * New [weight, first moment, second moment] of one variable after an Adam step, all flat [size]. `k` holds the
 * step's scalars: [gradient scale, 1 − β1^t, 1 − β2^t, −learning rate] (WebGPU only).
 */
export function fusedAdamStep(w: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, k: tf.Tensor1D, hyper: { beta1: number; beta2: number; epsilon: number }): tf.Tensor[] {
  if (!registered) {
    registered = true;
    registerProgramKernel(ADAM, (i, a) => adamProgram(i.w!.shape.reduce((x, y) => x * y, 1), a.beta1 as number, a.beta2 as number, a.epsilon as number));
  }
  const flat = (t: tf.Tensor) => tf.reshape(t, [-1]);
  return tf.engine().runKernel(ADAM, { w: flat(w), m: flat(m), v: flat(v), g: flat(g), k }, { beta1: hyper.beta1, beta2: hyper.beta2, epsilon: hyper.epsilon }) as tf.Tensor[];
}
