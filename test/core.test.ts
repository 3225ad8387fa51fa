/** Contract tests every memory core must pass: step ≡ sequence, episode isolation, seeding, no leaks. */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import type { MemoryCore, State } from '../memory/core.js';
import { createCore } from '../memory/registry.js';
import { disposeState } from '../memory/state.js';
import { exportWeights, importWeights, weightsToTensors } from '../memory/weights.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const D = 8;
const B = 2;
const S = 4;
const attn = { dim: D, layers: 2, heads: 2 };
/** Tiny configs of every core type (and every HQLT blend and mixing). */
const CONFIGS: Record<string, Record<string, unknown>> = {
  'hqlt synchronous': { type: 'hqlt', ...attn, window: S, blend: 'synchronous' },
  'hqlt delayed-streaming': { type: 'hqlt', ...attn, window: S, blend: 'delayed-streaming', mixing: 'scalar' },
  'hqlt delayed-chunk': { type: 'hqlt', ...attn, window: S, blend: 'delayed-chunk', mixing: 'sum', rope: true },
  'hqlt synchronous-linear': { type: 'hqlt', ...attn, window: S, blend: 'synchronous-linear', shortConv: true },
  deltanet: { type: 'deltanet', ...attn },
  'linear-attention': { type: 'linear-attention', ...attn },
  'window-attention': { type: 'window-attention', ...attn, window: S },
  transformer: { type: 'transformer', ...attn, maxContext: 6 },
  gru: { type: 'gru', dim: D, layers: 2 },
  lstm: { type: 'lstm', dim: D, layers: 2, mlp: false },
  mlp: { type: 'mlp', dim: D, layers: 2 },
};

/** Deterministic pseudo-random inputs (the core's seed is separate). */
function inputs(T: number, salt: number): tf.Tensor3D {
  return tf.tidy(() => tf.sin(tf.mul(tf.add(tf.range(0, B * T * D), salt * 0.37), 1.7)).reshape([B, T, D]) as tf.Tensor3D);
}

function starts(T: number, at: [number, number][]): tf.Tensor2D {
  const m = new Float32Array(B * T);
  for (const [b, t] of at) m[b * T + t] = 1;
  return tf.tensor2d(m, [B, T]);
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function column<T extends tf.Tensor>(x: tf.Tensor, t: number): T {
  return tf.tidy(() => tf.squeeze(tf.slice(x, [0, t], [B, 1]), [1]) as T);
}

function timeSlice<T extends tf.Tensor>(x: tf.Tensor, from: number, size: number): T {
  return tf.slice(x, [0, from], [B, size]) as T;
}

/** Runs the step form over a sequence; returns stacked outputs and the final state. */
function stepThrough(core: MemoryCore, xs: tf.Tensor3D, state: State, es: tf.Tensor2D): { ys: tf.Tensor3D; state: State } {
  const ys: tf.Tensor2D[] = [];
  let s = state;
  for (let t = 0; t < xs.shape[1]; t++) {
    const [x, e] = [column<tf.Tensor2D>(xs, t), column<tf.Tensor1D>(es, t)];
    const r = core.step(x, s, e);
    x.dispose();
    e.dispose();
    if (s !== state) disposeState(s);
    ys.push(r.y);
    s = r.state;
  }
  const out = tf.stack(ys, 1) as tf.Tensor3D;
  ys.forEach((y) => y.dispose());
  return { ys: out, state: s };
}

describe.each(Object.entries(CONFIGS))('%s core', (_, config) => {
  let core: MemoryCore;
  /** A non-zero state reached by a prefix in which stream 0 started an episode mid-way. */
  let warm: State;
  beforeAll(() => {
    core = createCore(config, 11);
    const xs = inputs(5, 1);
    const es = starts(5, [[0, 0], [0, 2]]);
    warm = core.forward(xs, core.initialState(B), es).state;
    tf.dispose([xs, es]);
  });

  it.each([
    ['T < S', 3, [[1, 1]]],
    ['T > S, not a multiple', 11, [[1, 2], [0, 9]]],
  ] as [string, number, [number, number][]][])('step form equals sequence form (%s), from a non-zero state', (_, T, at) => {
    const xs = inputs(T, 2);
    const es = starts(T, at);
    const seq = core.forward(xs, warm, es);
    const stepped = stepThrough(core, xs, warm, es);
    expect(seq.ys.shape).toEqual([B, T, D]);
    expect(maxDiff(seq.ys, stepped.ys)).toBeLessThan(1e-4);
    // The final states must behave the same: continue both with the same input.
    const next = inputs(S + 2, 3);
    const noStart = starts(S + 2, []);
    const a = core.forward(next, seq.state, noStart);
    const b = core.forward(next, stepped.state, noStart);
    expect(maxDiff(a.ys, b.ys)).toBeLessThan(1e-4);
    tf.dispose([xs, es, seq.ys, stepped.ys, next, noStart, a.ys, b.ys]);
    [seq.state, stepped.state, a.state, b.state].forEach(disposeState);
  });

  it('split sequence calls carrying state equal one call', () => {
    const T = 11;
    const xs = inputs(T, 4);
    const es = starts(T, [[1, 5]]);
    const whole = core.forward(xs, warm, es);
    let state = warm;
    const parts: tf.Tensor3D[] = [];
    for (const [from, size] of [[0, 3], [3, 4], [7, 4]]) {
      const [x, e] = [timeSlice<tf.Tensor3D>(xs, from, size), timeSlice<tf.Tensor2D>(es, from, size)];
      const r = core.forward(x, state, e);
      if (state !== warm) disposeState(state);
      parts.push(r.ys);
      state = r.state;
      tf.dispose([x, e]);
    }
    const joined = tf.concat(parts, 1);
    expect(maxDiff(whole.ys, joined)).toBeLessThan(1e-4);
    tf.dispose([xs, es, whole.ys, joined, ...parts]);
    disposeState(whole.state);
    disposeState(state);
  });

  it('an episode start makes later outputs independent of everything before it', () => {
    const T = 9;
    const t0 = 5;
    const other = core.initialState(B);
    const [xa, xb] = [inputs(T, 5), inputs(T, 6)];
    // Same inputs from t0 on; different history and initial state before.
    const xbSame = tf.concat([timeSlice(xb, 0, t0), timeSlice(xa, t0, T - t0)], 1) as tf.Tensor3D;
    const es = starts(T, [[0, t0], [1, t0]]);
    const a = core.forward(xa, warm, es);
    const b = core.forward(xbSame, other, es);
    const [aAfter, bAfter] = [timeSlice(a.ys, t0, T - t0), timeSlice(b.ys, t0, T - t0)];
    expect(maxDiff(aAfter, bAfter)).toBeLessThan(1e-5);
    expect(maxDiff(timeSlice(a.ys, 0, t0), timeSlice(b.ys, 0, t0))).toBeGreaterThan(1e-3); // the histories did differ
    tf.dispose([xa, xb, xbSame, es, a.ys, b.ys, aAfter, bAfter]);
    [other, a.state, b.state].forEach(disposeState);
  });

  it('is differentiable: every trainable variable gets a finite gradient', () => {
    const xs = inputs(6, 7);
    const es = starts(6, [[0, 3]]);
    const { value, grads } = tf.variableGrads(() => {
      const r = core.forward(xs, warm, es);
      disposeState(r.state);
      return tf.mean(tf.square(tf.sub(r.ys, 0.3))) as tf.Scalar;
    }, core.trainableVariables());
    expect(Object.keys(grads).length).toBe(core.trainableVariables().length);
    for (const g of Object.values(grads)) expect(Number.isFinite(tf.sum(tf.abs(g)).dataSync()[0])).toBe(true);
    tf.dispose([xs, es, value, ...Object.values(grads)]);
  });

  it('same seed gives identical weights (also from the resolved config), a different seed different ones', async () => {
    const [again, other] = [createCore(core.config, 11), createCore(config, 12)];
    const [w, wAgain, wOther] = await Promise.all([core, again, other].map((c) => weightsToTensors(c)));
    expect(Object.keys(wAgain)).toEqual(Object.keys(w));
    for (const name of Object.keys(w)) expect(wAgain[name].data).toEqual(w[name].data);
    const differs = Object.keys(w).filter((n) => w[n].data.some((v, i) => v !== wOther[n].data[i]));
    expect(differs.length).toBeGreaterThan(0);
    again.dispose();
    other.dispose();
  });
});

describe('weight export and import of whole cores', () => {
  it.each(['hqlt synchronous', 'hqlt delayed-chunk', 'lstm', 'mlp'])('%s: round-trips exactly', async (name) => {
    const dir = mkdtempSync(join(tmpdir(), 'hqlt-core-w-'));
    const [a, b] = [createCore(CONFIGS[name], 1), createCore(CONFIGS[name], 2)];
    await exportWeights(a, join(dir, 'w.safetensors'));
    importWeights(b, join(dir, 'w.safetensors'));
    const [wa, wb] = await Promise.all([weightsToTensors(a), weightsToTensors(b)]);
    for (const n of Object.keys(wa)) expect(wb[n].data).toEqual(wa[n].data);
    const xs = inputs(5, 9);
    const es = starts(5, [[1, 2]]);
    const zero = a.initialState(B);
    const [ra, rb] = [a.forward(xs, zero, es), b.forward(xs, zero, es)];
    expect(maxDiff(ra.ys, rb.ys)).toBe(0);
    tf.dispose([xs, es, ra.ys, rb.ys]);
    [zero, ra.state, rb.state].forEach(disposeState);
    a.dispose();
    b.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe.each(['hqlt synchronous', 'gru'])('%s core does not leak tensors', (name) => {
  it('across 1,000 steps and 50 forward/backward passes', () => {
    const core = createCore({ ...CONFIGS[name], layers: 1 }, 3);
    const x = tf.ones([B, D]) as tf.Tensor2D;
    const e = tf.tensor1d([0, 1]);
    let state = core.initialState(B);
    const warmup = core.step(x, state, e);
    disposeState(state);
    warmup.y.dispose();
    state = warmup.state;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 1000; i++) {
      const r = core.step(x, state, e);
      disposeState(state);
      r.y.dispose();
      state = r.state;
    }
    expect(tf.memory().numTensors).toBe(before);

    const xs = inputs(7, 1);
    const es = starts(7, [[0, 2]]);
    const opt = tf.train.adam(1e-3);
    const pass = () => {
      const loss = opt.minimize(() => {
        const r = core.forward(xs, state, es);
        disposeState(r.state);
        return tf.mean(tf.square(r.ys)) as tf.Scalar;
      }, true, core.trainableVariables());
      loss?.dispose();
    };
    pass(); // the optimizer allocates its slots on the first pass
    const beforeTrain = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) pass();
    expect(tf.memory().numTensors).toBe(beforeTrain);
    tf.dispose([x, e, xs, es]);
    disposeState(state);
    opt.dispose();
    core.dispose();
  });
});
