import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { RecurrentMixer, type RecurrentKind } from '../memory/recurrent.js';
import { makeRng } from '../memory/random.js';
import { readSafetensors } from '../memory/safetensors.js';
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
