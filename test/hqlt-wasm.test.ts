import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import type { State } from '../memory/core.js';
import { type Blend, HqltLayer, type HqltLayerOptions } from '../memory/hqlt.js';
import { bmm, checkpoint, installFastWasmSlice, rmsNorm, shiftAppend, transpose2d } from '../memory/ops.js';
import { makeRng } from '../util/random.js';
import { makeDistribution } from '../agents/distributions.js';
import { MultiDiscrete } from '../envs/spaces.js';

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

  it('transpose2d (a rank-3 transpose on wasm) equals the plain transpose', () => {
    for (const [n, m] of [[5, 8], [3, 6], [4, 7]]) {
      const a = tf.randomNormal([n!, m!], 0, 1, 'float32', n! * m!);
      expect(transpose2d(a).shape).toEqual([m, n]);
      expect(maxDiff(transpose2d(a), tf.transpose(a))).toBe(0);
    }
  });

  it("rmsNorm's hand-written gradient equals autodiff of its formula", () => {
    const x = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 11);
    const w = tf.randomNormal([8], 1, 0.3, 'float32', 12);
    const dy = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 13);
    const plain = (a: tf.Tensor, b: tf.Tensor) => tf.mul(tf.mul(a, tf.rsqrt(tf.add(tf.mean(tf.square(a), -1, true), 1e-5))), b);
    const grads = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, b), dy)))([x, w]);
    const [dx, dw] = grads((a, b) => rmsNorm(a, b as tf.Tensor1D));
    const [rx, rw] = grads(plain);
    expect(maxDiff(rmsNorm(x, w as tf.Tensor1D), plain(x, w))).toBeLessThan(1e-6);
    expect(maxDiff(dx!, rx!)).toBeLessThan(1e-5);
    expect(maxDiff(dw!, rw!)).toBeLessThan(1e-5);
  });

  it('a layer gives the same outputs and gradients with and without rematerialisation, for every blend', () => {
    const blends: Blend[] = ['synchronous', 'delayed-streaming', 'delayed-chunk', 'synchronous-linear'];
    for (const blend of blends) {
      const layer = new HqltLayer({ ...base, blend }, makeRng(11));
      const [xs, starts] = inputs(3, 13, layer.dim, 12);
      const vars = layer.namedWeights().map((w) => w.variable);
      const run = () => {
        const init = layer.initialState(3);
        const { value, grads } = tf.variableGrads(() => {
          const r = layer.forward(xs, init, starts);
          return tf.sum(tf.mul(r.ys, r.ys)) as tf.Scalar;
        }, vars);
        tf.dispose(Object.values(init));
        return { value, grads: vars.map((v) => grads[v.name]!) };
      };
      const saved = HqltLayer.rematMinElements;
      let plain: ReturnType<typeof run>, remat: ReturnType<typeof run>;
      try {
        HqltLayer.rematMinElements = Infinity;
        plain = run();
        HqltLayer.rematMinElements = 0;
        remat = run();
      } finally {
        HqltLayer.rematMinElements = saved;
      }
      expect(maxDiff(plain.value, remat.value), blend).toBeLessThan(1e-4);
      plain.grads.forEach((g, k) => expect(maxDiff(g, remat.grads[k]!), `${blend} grad ${k}`).toBeLessThan(1e-4));
      tf.dispose([xs, starts, plain.value, remat.value, ...plain.grads, ...remat.grads]);
      layer.dispose();
    }
  });

  it('checkpoint: same values and gradients, only its inputs kept for the backward pass', () => {
    const a = tf.randomNormal([3, 4], 0, 1, 'float32', 21);
    const b = tf.randomNormal([4, 2], 0, 1, 'float32', 22);
    const mask = tf.tensor2d([[1, 0], [0, 1], [1, 1]]);
    const block = (r: Record<string, tf.Tensor>): Record<string, tf.Tensor> => {
      const h = tf.tanh(tf.matMul(r.a!, r.b!));
      return { y: tf.mul(tf.exp(h), r.mask!), z: tf.sum(h, 0) };
    };
    const loss = (f: typeof block) => (x: tf.Tensor, w: tf.Tensor, m: tf.Tensor) => {
      const { y, z } = f({ a: x, b: w, mask: m });
      return tf.add(tf.sum(tf.square(y!)), tf.sum(tf.mul(z!, 3)));
    };
    const remat = (r: Record<string, tf.Tensor>) => checkpoint({ a: r.a!, b: r.b! }, { mask: r.mask! }, block);
    // Gradients, and the number of tensors the tape saved for the backward pass.
    const run = (f: typeof block) => {
      let saved = 0;
      const grads = tf.grads((x: tf.Tensor, w: tf.Tensor, m: tf.Tensor) => {
        const l = loss(f)(x, w, m);
        const tape = (tf.engine().state as unknown as { activeTape: { saved?: tf.Tensor[] }[] }).activeTape;
        saved = tape.reduce((n, node) => n + (node.saved?.length ?? 0), 0);
        return l;
      })([a, b, mask]);
      return { grads, saved };
    };
    const { grads: want, saved: plainSaved } = run(block);
    const { grads: got, saved: rematSaved } = run(remat);
    for (let i = 0; i < 2; i++) expect(maxDiff(got[i]!, want[i]!)).toBeLessThan(1e-5);
    expect(Array.from(got[2]!.dataSync())).toEqual([0, 0, 0, 0, 0, 0]); // constants get no gradient
    expect(rematSaved).toBeLessThan(plainSaved);
    // Outside recording it is the block itself.
    expect(tf.tidy(() => maxDiff(remat({ a, b, mask }).y!, block({ a, b, mask }).y!))).toBe(0);
    tf.dispose([a, b, mask, ...want, ...got]);
  });

  it('copy-free clones keep their values after the original is disposed', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const y = tf.clone(x);
    expect(tf.memory().numDataBuffers).toBe(buffers); // shared, not copied
    x.dispose();
    expect(tf.memory().numDataBuffers).toBe(buffers); // still held by the clone
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    y.dispose();
    expect(tf.memory().numDataBuffers).toBe(buffers - 1);
  });

  it('shiftAppend (one wasm kernel) equals slice, zeroing and concat', () => {
    const buf = tf.randomNormal([3, 2, 4, 5], 0, 1, 'float32', 4);
    const fresh = tf.randomNormal([3, 2, 5], 0, 1, 'float32', 5);
    const keep = tf.tensor1d([1, 0, 0.5]);
    const want = tf.concat([tf.mul(tf.slice(buf, [0, 0, 1, 0], [3, 2, 3, 5]), tf.reshape(keep, [3, 1, 1, 1])), tf.expandDims(fresh, 2)], 2);
    expect(maxDiff(shiftAppend(buf, fresh, keep), want)).toBe(0);
    // Under gradient recording it falls back to differentiable ops.
    const g = tf.grad((b: tf.Tensor) => tf.sum(shiftAppend(b, fresh, keep)))(buf);
    expect(Array.from(g.dataSync().slice(0, 5))).toEqual([0, 0, 0, 0, 0]);
    expect(g.dataSync()[5]).toBe(1);
  });

  it('the step form follows weight reassignments (its fused-weight cache is invalidated)', () => {
    const layer = new HqltLayer(base, makeRng(9));
    const x = tf.randomNormal([2, layer.dim], 0, 1, 'float32', 6) as tf.Tensor2D;
    const e = tf.zeros([2]) as tf.Tensor1D;
    const init = layer.initialState(2);
    const run = () => {
      const r = layer.step(x, init, e);
      const y = Array.from(r.y.dataSync());
      tf.dispose([r.y, ...Object.values(r.state)]);
      return y;
    };
    const before = run();
    expect(run()).toEqual(before);
    const q = layer.namedWeights().find((w) => w.name === 'q_proj.weight')!.variable;
    q.assign(tf.mul(q, 2));
    const after = run();
    const fresh = new HqltLayer(base, makeRng(9));
    const fq = fresh.namedWeights().find((w) => w.name === 'q_proj.weight')!.variable;
    fq.assign(tf.mul(fq, 2));
    const r = fresh.step(x, init, e);
    expect(after).toEqual(Array.from(r.y.dataSync()));
    expect(after).not.toEqual(before);
    tf.dispose([x, e, r.y, ...Object.values(r.state), ...Object.values(init)]);
    layer.dispose();
    fresh.dispose();
  });
});

describe('action distributions on wasm', () => {
  it('categorical action features are exact one-hots and log-probs pick the right entries', async () => {
    const d = makeDistribution(new MultiDiscrete([2, 3]));
    const actions = tf.tensor2d([0, 2, 1, 0, 1, 1], [3, 2]);
    expect(Array.from(await d.actionFeatures(actions).data())).toEqual([1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0]);
    const params = tf.tensor2d([0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0], [3, 5]);
    const lp = await d.logProb(params, actions).data();
    const logSoftmax = (xs: number[], k: number) => xs[k]! - Math.log(xs.reduce((a, x) => a + Math.exp(x), 0));
    const expected = [logSoftmax([0, 0], 0) + logSoftmax([0, 0, 0], 2), logSoftmax([1, 2], 1) + logSoftmax([3, 4, 5], 0), logSoftmax([0, 0], 1) + logSoftmax([0, 0, 0], 1)];
    expected.forEach((e, i) => expect(lp[i]).toBeCloseTo(e, 5));
  });
});
