import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import type { State } from '../memory/core.js';
import { type Blend, HqltLayer, type HqltLayerOptions } from '../memory/hqlt.js';
import { bmm, installFastWasmSlice } from '../memory/ops.js';
import { makeRng } from '../memory/random.js';

// The default backend has its own kernels (batched products as depthwise convolutions, in-place slices): check the
// layer's forms agree there too, and that its gradients match the cpu backend's.
beforeAll(async () => {
  await initBackend('wasm');
});

const base: HqltLayerOptions = {
  dim: 8,
  heads: 2,
  window: 5,
  blend: 'synchronous',
  mixing: 'vector',
  rope: true,
  shortConv: false,
  allowNegativeEigenvalues: true,
};

function inputs(B: number, T: number, D: number, seed: number): [tf.Tensor3D, tf.Tensor2D] {
  const rng = makeRng(seed);
  const xs = tf.tensor3d(Float32Array.from({ length: B * T * D }, () => rng() * 2 - 1), [B, T, D]);
  const starts = tf.tensor2d(Float32Array.from({ length: B * T }, () => (rng() < 0.1 ? 1 : 0)), [B, T]);
  return [xs, starts];
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

function checkForms(overrides: Partial<HqltLayerOptions>, T: number, seed: number): void {
  const layer = new HqltLayer({ ...base, ...overrides }, makeRng(seed));
  const B = 3;
  const [xs, starts] = inputs(B, T, layer.dim, seed + 1);
  const init = layer.initialState(B);
  const cut = Math.floor(T / 2);
  const first = layer.forward(tf.slice(xs, [0, 0, 0], [-1, cut, -1]), init, tf.slice(starts, [0, 0], [-1, cut]));
  const second = layer.forward(tf.slice(xs, [0, cut, 0], [-1, -1, -1]), first.state, tf.slice(starts, [0, cut], [-1, -1]));
  const ys: tf.Tensor[] = [];
  let st: State = init;
  for (let t = 0; t < T; t++) {
    const x = tf.tidy(() => tf.squeeze(tf.slice(xs, [0, t, 0], [-1, 1, -1]), [1])) as tf.Tensor2D;
    const e = tf.tidy(() => tf.squeeze(tf.slice(starts, [0, t], [-1, 1]), [1])) as tf.Tensor1D;
    const r = layer.step(x, st, e);
    if (st !== init) tf.dispose(Object.values(st));
    ys.push(r.y);
    st = r.state;
    tf.dispose([x, e]);
  }
  const stepped = tf.stack(ys, 1);
  const seq = tf.concat([first.ys, second.ys], 1);
  expect(maxDiff(seq, stepped)).toBeLessThan(1e-4);
  expect(Object.keys(st).sort()).toEqual(Object.keys(second.state).sort());
  for (const key of Object.keys(st)) expect(maxDiff(st[key]!, second.state[key]!), key).toBeLessThan(1e-4);
  tf.dispose([xs, starts, stepped, seq, first.ys, second.ys, ...ys, ...Object.values(st), ...Object.values(init)]);
  tf.dispose([...Object.values(first.state), ...Object.values(second.state)]);
  layer.dispose();
}

describe('HqltLayer on wasm', () => {
  const blends: Blend[] = ['synchronous', 'delayed-streaming', 'delayed-chunk'];
  for (const blend of blends)
    it(`${blend}: step form ≡ sequence form`, () => {
      checkForms({ blend }, 23, 3);
      checkForms({ blend, memories: 'fw', window: 20 }, 37, 4);
    });

  it('layer gradients match the cpu backend', async () => {
    const layer = new HqltLayer({ ...base, blend: 'delayed-chunk', window: 4 }, makeRng(7));
    const [xs, starts] = inputs(2, 19, layer.dim, 8);
    const init = layer.initialState(2);
    const vars = layer.namedWeights().map((w) => w.variable);
    const grads = () => {
      const { value, grads: g } = tf.variableGrads(() => tf.tidy(() => tf.sum(tf.square(layer.forward(xs, init, starts).ys))) as tf.Scalar, vars);
      const out = vars.map((v) => Array.from(g[v.name]!.dataSync()));
      tf.dispose([value, ...Object.values(g)]);
      return out;
    };
    const onWasm = grads();
    await initBackend('cpu');
    const onCpu = grads();
    await initBackend('wasm');
    onWasm.forEach((g, i) => g.forEach((v, j) => expect(Math.abs(v - onCpu[i]![j]!)).toBeLessThan(1e-3 * Math.max(1, Math.abs(onCpu[i]![j]!)))));
    tf.dispose([xs, starts, ...Object.values(init)]);
    layer.dispose();
  });

  it('bmm and the in-place slice kernels agree with plain tfjs', () => {
    installFastWasmSlice();
    const a = tf.randomNormal([5, 3, 4], 0, 1, 'float32', 1) as tf.Tensor3D;
    const b = tf.randomNormal([5, 4, 6], 0, 1, 'float32', 2) as tf.Tensor3D;
    const dy = tf.randomNormal([5, 3, 6], 0, 1, 'float32', 3);
    const f = (g: (x: tf.Tensor3D, y: tf.Tensor3D) => tf.Tensor) => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(g(x as tf.Tensor3D, y as tf.Tensor3D), dy)));
    const [da, db] = f(bmm)([a, b]);
    const [ra, rb] = f((x, y) => tf.matMul(x, y))([a, b]);
    expect(maxDiff(bmm(a, b), tf.matMul(a, b))).toBeLessThan(1e-5);
    expect(maxDiff(da!, ra!)).toBeLessThan(1e-5);
    expect(maxDiff(db!, rb!)).toBeLessThan(1e-5);
    // Slices of every rank-3 layout against values computed in JS.
    const x = tf.range(0, 60).reshape([3, 4, 5]);
    expect(tf.slice(x, [1, 1, 2], [2, 2, 3]).arraySync()).toEqual(
      [1, 2].map((i) => [1, 2].map((j) => [2, 3, 4].map((k) => i * 20 + j * 5 + k))),
    );
    expect(tf.unstack(x, 1)[2]!.arraySync()).toEqual([0, 1, 2].map((i) => [0, 1, 2, 3, 4].map((k) => i * 20 + 10 + k)));
    expect(tf.split(x, [1, 4], 2)[1]!.arraySync()).toEqual([0, 1, 2].map((i) => [0, 1, 2, 3].map((j) => [1, 2, 3, 4].map((k) => i * 20 + j * 5 + k))));
  });
});
