import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { State } from '../memory/core.js';
import { initBackend } from '../memory/backend.js';
import { RecurrentMixer, type RecurrentKind } from '../memory/recurrent.js';
import { makeRng } from '../util/random.js';
import { readSafetensors } from '../util/safetensors.js';
import { assignWeights } from '../memory/weights.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

beforeAll(async () => {
  await initBackend('cpu');
});

describe.each(['gru', 'lstm'] as RecurrentKind[])('%s matches PyTorch equations (numpy reference)', (kind) => {
  it('sequence and step forms reproduce the reference outputs, episode resets included', () => {
    const { tensors } = readSafetensors(`${FIXTURES}${kind}_reference.safetensors`);
    const { x, y, episode_start: start, ...weights } = tensors;
    const [B, T, D] = x.shape;
    const mixer = new RecurrentMixer(kind, D, makeRng(0));
    assignWeights(mixer, weights, 'fixture');
    const xs = tf.tensor3d(x.data, [B, T, D]);
    const es = tf.tensor2d(start.data, [B, T]);
    const expected = tf.tensor3d(y.data, [B, T, D]);

    const out = mixer.forward(xs, mixer.initialState(B), es);
    expect(tf.max(tf.abs(tf.sub(out.ys, expected))).dataSync()[0]).toBeLessThan(1e-5);

    let state = mixer.initialState(B);
    for (let t = 0; t < T; t++) {
      const xt = tf.squeeze(tf.slice(xs, [0, t, 0], [B, 1, D]), [1]) as tf.Tensor2D;
      const r = mixer.step(xt, state, tf.squeeze(tf.slice(es, [0, t], [B, 1]), [1]) as tf.Tensor1D);
      const want = tf.squeeze(tf.slice(expected, [0, t, 0], [B, 1, D]), [1]);
      expect(tf.max(tf.abs(tf.sub(r.y, want))).dataSync()[0]).toBeLessThan(1e-5);
      state = r.state;
    }
    expect(Object.keys(state).sort()).toEqual(kind === 'lstm' ? ['c', 'h'] : ['h']);
    mixer.dispose();
  });
});

describe.each(['gru', 'lstm'] as RecurrentKind[])('%s sequence-form gradients (hand-written BPTT)', (kind) => {
  it('match autodiff through the step form, episode resets, initial state and final state included', () => {
    const [B, T, D] = [3, 7, 4];
    const mixer = new RecurrentMixer(kind, D, makeRng(5));
    const xs = tf.randomNormal([B, T, D], 0, 1, 'float32', 1) as tf.Tensor3D;
    const es = tf.tensor2d([0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [B, T]);
    const h0 = tf.randomNormal([B, D], 0, 1, 'float32', 2);
    const c0 = tf.randomNormal([B, D], 0, 1, 'float32', 3);
    const wy = tf.randomNormal([B, T, D], 0, 1, 'float32', 4);
    const wh = tf.randomNormal([B, D], 0, 1, 'float32', 5);
    const vars = mixer.namedWeights().map((w) => w.variable);
    // The loss reads every output and the final state, so all gradient paths are exercised.
    const loss = (ys: tf.Tensor, last: tf.Tensor, s0: tf.Tensor[]) =>
      tf.add(tf.sum(tf.mul(ys, wy)), tf.sum(tf.mul(tf.add(last, s0.length > 1 ? s0[1]! : 0), wh))) as tf.Scalar;
    const init = (h: tf.Tensor, c: tf.Tensor): State => (kind === 'lstm' ? { h, c } : { h });
    const gradsOf = (run: (h: tf.Tensor, c: tf.Tensor) => tf.Scalar) => {
      const { grads } = tf.variableGrads(() => run(h0, c0), vars);
      const dState = kind === 'lstm' ? tf.grads((h: tf.Tensor, c: tf.Tensor) => run(h, c))([h0, c0]) : tf.grads((h: tf.Tensor) => run(h, c0))([h0]);
      return [...vars.map((v) => grads[v.name]!), ...dState];
    };
    const seq = gradsOf((h, c) => {
      const r = mixer.forward(xs, init(h, c), es);
      return loss(r.ys, r.state.h!, kind === 'lstm' ? [r.state.h!, r.state.c!] : [r.state.h!]);
    });
    const stepped = gradsOf((h, c) => {
      let s = init(h, c) as Record<string, tf.Tensor>;
      const ys: tf.Tensor[] = [];
      for (let t = 0; t < T; t++) {
        const xt = tf.reshape(tf.slice(xs, [0, t, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
        const r = mixer.step(xt, s, tf.reshape(tf.slice(es, [0, t], [B, 1]), [B]) as tf.Tensor1D);
        ys.push(r.y);
        s = r.state;
      }
      return loss(tf.stack(ys, 1), s.h!, kind === 'lstm' ? [s.h!, s.c!] : [s.h!]);
    });
    expect(seq.length).toBe(stepped.length);
    seq.forEach((g, i) => {
      const scale = Math.max(1, tf.max(tf.abs(stepped[i]!)).dataSync()[0]!);
      expect(tf.max(tf.abs(tf.sub(g, stepped[i]!))).dataSync()[0]! / scale).toBeLessThan(1e-5);
    });
    mixer.dispose();
  });
});
