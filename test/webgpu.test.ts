/**
 * The WebGPU path, exercised on Mesa's software adapter (llvmpipe through OpenGL) so CI without a GPU still runs
 * it: `.ci/run` installs Mesa from Debian's packages. A core's sequence form and its gradients must match the
 * CPU backend, and every read must be asynchronous (the WebGPU backend cannot read synchronously).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { createCore } from '../memory/registry.js';

const CONFIG = { type: 'hqlt', dim: 16, layers: 2, heads: 2, window: 4, blend: 'synchronous', mixing: 'vector' };
const [B, T] = [2, 7];

/** Output and gradient of a small core on the current backend, read asynchronously. */
async function run(): Promise<{ ys: Float32Array; grads: Float32Array[] }> {
  const core = createCore(CONFIG, 7);
  // Made on the host: a GPU's sin() is not what is under test.
  const xs = tf.tensor3d(Float32Array.from({ length: B * T * CONFIG.dim }, (_, i) => Math.sin(i)), [B, T, CONFIG.dim]);
  const starts = tf.tensor2d([[0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]);
  const state = core.initialState(B);
  const { value, grads } = tf.variableGrads(() => {
    const { ys, state: next } = core.forward(xs, state, starts);
    tf.dispose(Object.values(next));
    return tf.sum(tf.square(ys)) as tf.Scalar;
  }, core.trainableVariables());
  const { ys, state: next } = core.forward(xs, state, starts);
  const out = { ys: (await ys.data()) as Float32Array, grads: [] as Float32Array[] };
  for (const v of core.trainableVariables()) out.grads.push((await grads[v.name].data()) as Float32Array);
  tf.dispose([xs, starts, ys, value, ...Object.values(grads), ...Object.values(state), ...Object.values(next)]);
  core.dispose();
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('webgpu backend (software adapter)', () => {
  let reference: { ys: Float32Array; grads: Float32Array[] };
  beforeAll(async () => {
    await initBackend('cpu');
    reference = await run();
    process.env.HQLT_WEBGPU_ADAPTER = 'software';
    const info = await initBackend('webgpu');
    expect(info.active).toBe('webgpu');
    expect(tf.env().getBool('WEBGPU_CPU_FORWARD')).toBe(false);
  }, 120_000);

  it('reads only asynchronously', () => {
    const computed = tf.add(tf.scalar(1), tf.scalar(2));
    expect(() => computed.dataSync()).toThrow();
    computed.dispose();
  });

  it('accumulates gradients of a tensor used in more places than the device can bind in one AddN', async () => {
    // 40 uses make a 40-input AddN in the gradient: past Mesa's 16 storage buffers the pipeline is invalid and the
    // work silently dropped, unless the backend splits it.
    const x = tf.ones([3]);
    const grad = tf.grad((v: tf.Tensor) => tf.addN(Array.from({ length: 40 }, (_, i) => tf.sum(tf.mul(v, i + 1)))))(x);
    expect(Array.from(await grad.data())).toEqual([820, 820, 820]);
    tf.dispose([x, grad]);
  });

  it('matches the CPU backend: sequence form and gradients of an HQLT core to 1e-4', async () => {
    const gpu = await run();
    expect(maxAbsDiff(gpu.ys, reference.ys)).toBeLessThan(1e-4);
    gpu.grads.forEach((g, i) => {
      const scale = Math.max(1, ...Array.from(reference.grads[i], Math.abs));
      expect(maxAbsDiff(g, reference.grads[i]) / scale).toBeLessThan(1e-4);
    });
  }, 120_000);
});
