import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import type { State } from '../memory/core.js';
import { BLENDS, type Blend, HqltLayer, type HqltLayerOptions, MIXINGS, type Mixing } from '../memory/hqlt.js';
import { makeRng } from '../util/random.js';

// Precision checks run on the cpu backend (float32, deterministic kernels).
beforeAll(async () => {
  await initBackend('cpu');
});

// ------------------------------------------------------------------------------------------------------------
// A loop-only reference of HQLT-SPEC.md, written independently of the tensor code: one stream at a time, the
// delayed-chunk blend flushes whole chunks exactly as the spec words it.

type Mat = number[][];
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const silu = (x: number) => x * sigmoid(x);
const matVec = (w: Mat, x: number[]) => w.map((row) => row.reduce((s, wi, i) => s + wi * x[i]!, 0));
const dot = (a: number[], b: number[]) => a.reduce((s, ai, i) => s + ai * b[i]!, 0);

function toMat(t: tf.Tensor, transposed: boolean): Mat {
  const m = (transposed ? tf.transpose(t) : t).arraySync() as Mat;
  return m;
}

function referenceLayer(layer: HqltLayer, xs: number[][][], starts: number[][]): number[][][] {
  const o = layer.options;
  const H = o.heads;
  const K = o.keyDim / H;
  const V = o.valueDim / H;
  const S = o.window;
  const w: Record<string, Mat> = {};
  const conv: Record<string, Mat> = {};
  let oNorm: number[] = [];
  for (const nw of layer.namedWeights()) {
    if (nw.name.includes('conv1d')) conv[nw.name] = (nw.variable.arraySync() as number[][][]).map((r) => r[0]!);
    else if (nw.name === 'o_norm.weight') oNorm = nw.variable.arraySync() as number[];
    else w[nw.name] = toMat(nw.variable, nw.transposed);
  }
  const hasKv = o.memories !== 'fw';
  const hasFw = o.memories !== 'kv';
  const linearAttn = o.blend === 'synchronous-linear';
  const phi = (x: number[]) => {
    if (linearAttn) return x.map((a) => (a > 0 ? a + 1 : Math.exp(a)));
    const s = x.map(silu);
    const n = Math.sqrt(dot(s, s) + 1e-6);
    return s.map((a) => a / n);
  };
  const rope = (x: number[], p: number) => {
    const half = K / 2;
    return x.map((a, i) => {
      const f = Math.pow(10000, -(2 * (i % half)) / K) * p;
      const other = i < half ? -x[i + half]! : x[i - half]!;
      return a * Math.cos(f) + other * Math.sin(f);
    });
  };
  const heads = (x: number[], d: number) => Array.from({ length: H }, (_, h) => x.slice(h * d, (h + 1) * d));
  const zeros = (r: number, c: number) => Array.from({ length: r }, () => new Array<number>(c).fill(0));

  return xs.map((seq, b) => {
    let raw: { q: number[]; k: number[]; v: number[] }[] = []; // projections since the episode start
    let hist: { k: number[][]; v: number[][]; beta: number[] }[] = [];
    let W = Array.from({ length: H }, () => zeros(V, K));
    let z = Array.from({ length: H }, () => new Array<number>(K).fill(0));
    const write = (h: number, k: number[], v: number[], beta: number) => {
      const fk = phi(k);
      const wk = matVec(W[h]!, fk);
      for (let i = 0; i < V; i++) for (let j = 0; j < K; j++) W[h]![i]![j]! += beta * (v[i]! - wk[i]!) * fk[j]!;
    };
    return seq.map((x, t) => {
      if (starts[b]![t]) {
        raw = [];
        hist = [];
        W = Array.from({ length: H }, () => zeros(V, K));
        z = Array.from({ length: H }, () => new Array<number>(K).fill(0));
      }
      const pos = hist.length;
      raw.push({ q: matVec(w['q_proj.weight']!, x), k: matVec(w['k_proj.weight']!, x), v: matVec(w['v_proj.weight']!, x) });
      const convolve = (key: 'q' | 'k' | 'v', name: string) => {
        const cur = raw[raw.length - 1]![key];
        if (!o.shortConv) return cur;
        return cur.map((_, c) => {
          let s = 0;
          for (let i = 0; i < 4; i++) {
            const src = raw[raw.length - 4 + i];
            if (src) s += conv[name]![c]![i]! * src[key][c]!;
          }
          return s;
        });
      };
      const q = heads(convolve('q', 'q_conv1d.weight'), K);
      const k = heads(convolve('k', 'k_conv1d.weight'), K);
      const v = heads(convolve('v', 'v_conv1d.weight').map(silu), V);
      const beta = w['b_proj.weight'] ? matVec(w['b_proj.weight'], x).map((a) => sigmoid(a) * (o.allowNegativeEigenvalues ? 2 : 1)) : [];
      hist.push({ k, v, beta });

      const oKv = heads(new Array<number>(o.valueDim).fill(0), V);
      const oFw = heads(new Array<number>(o.valueDim).fill(0), V);
      for (let h = 0; h < H; h++) {
        if (hasKv) {
          const visible: number[] = [];
          for (let j = 0; j <= pos; j++) {
            const inWindow = pos - j < S;
            const sameChunk = Math.floor(j / S) === Math.floor(pos / S);
            if (o.blend === 'delayed-chunk' ? sameChunk : inWindow) visible.push(j);
          }
          const qh = o.rope ? rope(q[h]!, pos) : q[h]!;
          const scores = visible.map((j) => dot(qh, o.rope ? rope(hist[j]!.k[h]!, j) : hist[j]!.k[h]!) / Math.sqrt(K));
          const mx = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - mx));
          const den = e.reduce((a, c) => a + c, 0);
          visible.forEach((j, n) => hist[j]!.v[h]!.forEach((vv, i) => (oKv[h]![i]! += (e[n]! / den) * vv)));
        }
        if (hasFw) {
          if (o.blend === 'synchronous') write(h, k[h]!, v[h]!, beta[h]!);
          if (o.blend === 'delayed-streaming' && pos >= S) write(h, hist[pos - S]!.k[h]!, hist[pos - S]!.v[h]!, beta[h]!);
          if (o.blend === 'delayed-chunk' && pos > 0 && pos % S === 0)
            for (let j = pos - S; j < pos; j++) write(h, hist[j]!.k[h]!, hist[j]!.v[h]!, hist[j]!.beta[h]!);
          const fq = phi(q[h]!);
          if (linearAttn) {
            const fk = phi(k[h]!);
            for (let i = 0; i < V; i++) for (let j = 0; j < K; j++) W[h]![i]![j]! += v[h]![i]! * fk[j]!;
            z[h] = z[h]!.map((a, j) => a + fk[j]!);
            const den = dot(z[h]!, fq) + 1e-6;
            oFw[h] = matVec(W[h]!, fq).map((a) => a / den);
          } else oFw[h] = matVec(W[h]!, fq).map((a) => a / Math.sqrt(K));
        }
      }
      let mixed: number[][];
      if (hasFw && hasKv) {
        if (o.mixing === 'sum') mixed = oFw.map((r, h) => r.map((a, i) => a + oKv[h]![i]!));
        else if (o.mixing === 'vector') {
          const g = heads(matVec(w['memory_gate_proj.weight']!, x).map(sigmoid), V);
          mixed = oFw.map((r, h) => r.map((a, i) => g[h]![i]! * a + (1 - g[h]![i]!) * oKv[h]![i]!));
        } else {
          const a = matVec(w['memory_mixer.weight']!, x).map(sigmoid);
          mixed = oFw.map((r, h) => r.map((f, i) => a[h]! * f + a[H + h]! * oKv[h]![i]!));
        }
      } else mixed = hasFw ? oFw : oKv;
      const normed = mixed.flatMap((r) => {
        const rms = Math.sqrt(r.reduce((s, a) => s + a * a, 0) / V + 1e-5);
        return r.map((a, i) => (a / rms) * oNorm[i]!);
      });
      return matVec(w['o_proj.weight']!, normed);
    });
  });
}

// ------------------------------------------------------------------------------------------------------------

const baseOptions: HqltLayerOptions = {
  dim: 8,
  heads: 2,
  window: 5,
  blend: 'synchronous',
  mixing: 'vector',
  rope: false,
  shortConv: false,
  allowNegativeEigenvalues: true,
};

function makeLayer(overrides: Partial<HqltLayerOptions>, seed = 1): HqltLayer {
  return new HqltLayer({ ...baseOptions, ...overrides }, makeRng(seed));
}

function randomInputs(B: number, T: number, D: number, seed: number, startProb = 0.1): [tf.Tensor3D, tf.Tensor2D] {
  const rng = makeRng(seed);
  const xs = tf.tensor3d(Float32Array.from({ length: B * T * D }, () => rng() * 2 - 1), [B, T, D]);
  const starts = tf.tensor2d(Float32Array.from({ length: B * T }, () => (rng() < startProb ? 1 : 0)), [B, T]);
  return [xs, starts];
}

function runSteps(layer: HqltLayer, xs: tf.Tensor3D, starts: tf.Tensor2D, state: State): { ys: tf.Tensor3D; state: State } {
  const T = xs.shape[1];
  const ys: tf.Tensor2D[] = [];
  let st = state;
  for (let t = 0; t < T; t++) {
    const x = tf.tidy(() => tf.squeeze(tf.slice(xs, [0, t, 0], [-1, 1, -1]), [1])) as tf.Tensor2D;
    const e = tf.tidy(() => tf.squeeze(tf.slice(starts, [0, t], [-1, 1]), [1])) as tf.Tensor1D;
    const r = layer.step(x, st, e);
    if (st !== state) tf.dispose(Object.values(st));
    ys.push(r.y);
    st = r.state;
    tf.dispose([x, e]);
  }
  const out = tf.stack(ys, 1) as tf.Tensor3D;
  tf.dispose(ys);
  return { ys: out, state: st };
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).arraySync() as number);
}

function expectStatesClose(a: State, b: State, tol: number): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const key of Object.keys(a)) {
    expect(a[key]!.shape, key).toEqual(b[key]!.shape);
    expect(maxDiff(a[key]!, b[key]!), key).toBeLessThan(tol);
  }
}

/** Step form vs sequence form from a warmed-up state, the sequence split in two forward calls. */
function checkForms(overrides: Partial<HqltLayerOptions>, T: number, seed: number): void {
  const layer = makeLayer(overrides, seed);
  const B = 3;
  const [warmX, warmE] = randomInputs(B, 7, layer.dim, seed + 100, 0.05);
  const init = layer.initialState(B);
  const warm = layer.forward(warmX, init, warmE);
  const [xs, starts] = randomInputs(B, T, layer.dim, seed + 200, 0.12);
  const stepped = runSteps(layer, xs, starts, warm.state);
  const cut = Math.max(1, Math.floor(T / 3));
  const part = (t: tf.Tensor, from: number, len: number) =>
    tf.slice(t, t.rank === 3 ? [0, from, 0] : [0, from], t.rank === 3 ? [-1, len, -1] : [-1, len]);
  const first = layer.forward(part(xs, 0, cut) as tf.Tensor3D, warm.state, part(starts, 0, cut) as tf.Tensor2D);
  const second =
    T > cut
      ? layer.forward(part(xs, cut, T - cut) as tf.Tensor3D, first.state, part(starts, cut, T - cut) as tf.Tensor2D)
      : first;
  const ys = T > cut ? tf.concat([first.ys, second.ys], 1) : first.ys;
  expect(maxDiff(ys, stepped.ys)).toBeLessThan(1e-4);
  expectStatesClose(second.state, stepped.state, 1e-4);
  tf.dispose([warmX, warmE, xs, starts, ys, first.ys, second.ys, stepped.ys, warm.ys]);
  tf.dispose([...Object.values(init), ...Object.values(warm.state), ...Object.values(first.state)]);
  tf.dispose([...Object.values(second.state), ...Object.values(stepped.state)]);
  layer.dispose();
}

describe('HqltLayer: step form ≡ sequence form', () => {
  for (const blend of BLENDS)
    for (const mixing of MIXINGS)
      it(`${blend} / ${mixing}: T < S, T > S (not a multiple), long windows`, () => {
        checkForms({ blend, mixing }, 3, 11);
        checkForms({ blend, mixing, rope: true }, 23, 12);
        checkForms({ blend, mixing, window: 20, shortConv: true }, 45, 13);
      });
  for (const blend of BLENDS)
    it(`${blend}: rope + shortConv, fw-only and kv-only`, () => {
      checkForms({ blend, rope: true, shortConv: true, window: 4 }, 17, 21);
      checkForms({ blend, memories: 'fw', window: 6 }, 19, 22);
      checkForms({ blend, memories: 'kv', rope: true, window: 6 }, 19, 23);
    });
  it('different key and value widths, one step sequences, and a big window', () => {
    checkForms({ keyDim: 4, valueDim: 12, heads: 2, rope: true, shortConv: true }, 1, 31);
    checkForms({ blend: 'delayed-chunk', keyDim: 12, valueDim: 4, heads: 2, window: 33 }, 40, 32);
    checkForms({ memories: 'kv', window: 300, rope: true }, 12, 33);
  });
});

describe('HqltLayer: matches a loop-only reference of the spec', () => {
  const cases: [Blend, Mixing, Partial<HqltLayerOptions>][] = [
    ['synchronous', 'vector', {}],
    ['synchronous', 'scalar', { rope: true }],
    ['delayed-streaming', 'sum', { shortConv: true }],
    ['delayed-streaming', 'vector', { rope: true }],
    ['delayed-chunk', 'scalar', { rope: true, shortConv: true }],
    ['delayed-chunk', 'vector', { window: 20 }],
    ['synchronous-linear', 'vector', { rope: true }],
    ['synchronous', 'vector', { memories: 'fw', allowNegativeEigenvalues: false }],
    ['delayed-chunk', 'vector', { memories: 'kv', window: 3 }],
  ];
  for (const [blend, mixing, extra] of cases)
    it(`${blend} / ${mixing} ${JSON.stringify(extra)}`, () => {
      const layer = makeLayer({ blend, mixing, window: 4, ...extra }, 7);
      const B = 2;
      const T = 30;
      const [xs, starts] = randomInputs(B, T, layer.dim, 8, 0.08);
      const expected = referenceLayer(layer, xs.arraySync(), starts.arraySync());
      const init = layer.initialState(B);
      const got = layer.forward(xs, init, starts);
      const stepped = runSteps(layer, xs, starts, init);
      expect(maxDiff(got.ys, tf.tensor(expected))).toBeLessThan(1e-4);
      expect(maxDiff(stepped.ys, tf.tensor(expected))).toBeLessThan(1e-4);
      tf.dispose([xs, starts, got.ys, stepped.ys, ...Object.values(init), ...Object.values(got.state)]);
      tf.dispose(Object.values(stepped.state));
      layer.dispose();
    });

  it('a hand-sized case: D=2, H=1, S=2 with set weights', () => {
    const layer = makeLayer({ dim: 2, heads: 1, window: 2, blend: 'delayed-chunk', mixing: 'sum', rope: true }, 3);
    const set: Record<string, number[][]> = {
      'q_proj.weight': [[0.5, -0.2], [0.1, 0.3]],
      'k_proj.weight': [[0.2, 0.4], [-0.3, 0.1]],
      'v_proj.weight': [[1, 0], [0.5, -1]],
      'b_proj.weight': [[0.7, -0.4]],
      'o_proj.weight': [[1, 0.5], [-0.5, 1]],
    };
    for (const nw of layer.namedWeights())
      if (set[nw.name]) nw.variable.assign(nw.transposed ? tf.transpose(tf.tensor2d(set[nw.name]!)) : tf.tensor2d(set[nw.name]!));
    const xs = tf.tensor3d([[[1, 0], [0, 1], [1, 1], [-1, 0.5], [0.3, -0.7]]]);
    const starts = tf.tensor2d([[0, 0, 0, 0, 0]]);
    const expected = referenceLayer(layer, xs.arraySync(), starts.arraySync());
    const got = layer.forward(xs, layer.initialState(1), starts);
    expect(maxDiff(got.ys, tf.tensor(expected))).toBeLessThan(1e-5);
    // Step 0 by hand: only the current key is visible (softmax = 1), the FW read is zero: o = v0, normed, projected.
    const v0 = [silu(1), silu(0.5)];
    const rms = Math.sqrt((v0[0]! ** 2 + v0[1]! ** 2) / 2 + 1e-5);
    const n = v0.map((a) => a / rms);
    const y0 = got.ys.arraySync()[0]![0]!;
    expect(y0[0]).toBeCloseTo(n[0]! + 0.5 * n[1]!, 5);
    expect(y0[1]).toBeCloseTo(-0.5 * n[0]! + n[1]!, 5);
    layer.dispose();
  });
});

describe('HqltLayer: semantics', () => {
  /** Output of a fw-only layer at the last step, after replacing input step `at` with noise. */
  function lastOutputChange(blend: Blend, at: number, T: number, starts?: number[]): number {
    const layer = makeLayer({ blend, memories: 'fw', window: 4 }, 5);
    // β constant, so x_t reaches FW-memory only through the pair (k_t, v_t) it writes.
    const betaWeight = layer.namedWeights().find((w) => w.name === 'b_proj.weight');
    betaWeight?.variable.assign(tf.zerosLike(betaWeight.variable));
    const [xs] = randomInputs(1, T, layer.dim, 9);
    const e = tf.tensor2d([starts ?? new Array<number>(T).fill(0)]);
    const noise = tf.tidy(() => {
      const mask = tf.oneHot([at], T).reshape([1, T, 1]);
      return tf.add(xs, tf.mul(mask, tf.randomNormal([1, T, layer.dim], 0, 1, 'float32', 4)));
    });
    const init = layer.initialState(1);
    const a = layer.forward(xs, init, e);
    const b = layer.forward(noise as tf.Tensor3D, init, e);
    const diff = tf.tidy(() => {
      const la = tf.slice(a.ys, [0, T - 1, 0], [1, 1, -1]);
      const lb = tf.slice(b.ys, [0, T - 1, 0], [1, 1, -1]);
      return maxDiff(la, lb);
    });
    tf.dispose([xs, e, noise, a.ys, b.ys, ...Object.values(a.state), ...Object.values(b.state), ...Object.values(init)]);
    layer.dispose();
    return diff;
  }

  it('delayed-streaming FW-memory ignores the last S − 1 inputs and the current one; synchronous sees x_t', () => {
    // The output at t depends on x_t through the projections of q and the output gate; with a fw-only layer,
    // x_{t-1} reaches the output only through FW-memory writes.
    expect(lastOutputChange('delayed-streaming', 10, 12)).toBe(0);
    expect(lastOutputChange('delayed-streaming', 8, 12)).toBe(0);
    expect(lastOutputChange('delayed-streaming', 7, 12)).toBeGreaterThan(1e-4);
    expect(lastOutputChange('synchronous', 10, 12)).toBeGreaterThan(1e-4);
  });

  it('delayed-chunk FW-memory sees only completed chunks', () => {
    // S = 4, T = 11: the last step (10) is in chunk 2 (steps 8..10), so FW-memory holds steps 0..7.
    expect(lastOutputChange('delayed-chunk', 8, 11)).toBe(0);
    expect(lastOutputChange('delayed-chunk', 7, 11)).toBeGreaterThan(1e-4);
  });

  it('an episode start makes the output independent of everything before it', () => {
    const starts = new Array<number>(12).fill(0);
    starts[6] = 1;
    for (const blend of BLENDS) expect(lastOutputChange(blend, 5, 12, starts)).toBe(0);
    for (const blend of BLENDS) expect(lastOutputChange(blend, 6, 12, starts)).toBeGreaterThan(1e-4);
  });
});

describe('HqltLayer: gradients', () => {
  for (const blend of BLENDS)
    it(`${blend}: sequence-form gradients match central differences`, () => {
      const layer = makeLayer({ blend, window: 3, rope: true, shortConv: true, mixing: 'scalar', dim: 4, heads: 2 }, 17);
      const [xs, starts] = randomInputs(2, 9, layer.dim, 18, 0.15);
      const target = tf.randomNormal([2, 9, layer.dim], 0, 1, 'float32', 19);
      const init = layer.initialState(2);
      const loss = () =>
        tf.tidy(() => {
          const { ys, state } = layer.forward(xs, init, starts);
          const fwPart = state.fw ? tf.sum(state.fw) : tf.scalar(0);
          return tf.add(tf.sum(tf.mul(ys, target)), fwPart) as tf.Scalar;
        });
      const weights = layer.namedWeights();
      const { grads } = tf.variableGrads(loss, weights.map((w) => w.variable));
      const rng = makeRng(20);
      const eps = 2e-3;
      for (const { variable } of weights) {
        const g = grads[variable.name]!.dataSync();
        const values = variable.dataSync().slice();
        for (let n = 0; n < 2; n++) {
          const i = Math.floor(rng() * values.length);
          const probe = (d: number) => {
            const v = values.slice();
            v[i]! += d;
            variable.assign(tf.tensor(v, variable.shape));
            const l = loss();
            const out = l.dataSync()[0]!;
            l.dispose();
            return out;
          };
          const numeric = (probe(eps) - probe(-eps)) / (2 * eps);
          variable.assign(tf.tensor(values, variable.shape));
          expect(Math.abs(numeric - g[i]!), `${variable.name}[${i}]`).toBeLessThan(1e-2 * Math.max(1, Math.abs(numeric)));
        }
      }
      tf.dispose([xs, starts, target, ...Object.values(grads), ...Object.values(init)]);
      layer.dispose();
    });
});

describe('HqltLayer: resources', () => {
  it('keeps numTensors flat across steps and forward/backward passes', () => {
    for (const blend of BLENDS) {
      const layer = makeLayer({ blend, rope: true, shortConv: true });
      const [xs, starts] = randomInputs(2, 11, layer.dim, 3);
      const vars = layer.namedWeights().map((w) => w.variable);
      const round = () => {
        const init = layer.initialState(2);
        const f = () => tf.tidy(() => tf.sum(layer.forward(xs, init, starts).ys) as tf.Scalar);
        const { grads, value } = tf.variableGrads(f, vars);
        tf.dispose([value, ...Object.values(grads)]);
        const r = runSteps(layer, xs, starts, init);
        tf.dispose([r.ys, ...Object.values(r.state), ...Object.values(init)]);
      };
      round();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) round();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([xs, starts]);
      layer.dispose();
    }
  });

  it('names weights as the spec, with only the weights a branch uses', () => {
    const names = (o: Partial<HqltLayerOptions>) => {
      const l = makeLayer(o);
      const n = l.namedWeights().map((w) => `${w.name}:${w.variable.shape.join('x')}:${w.transposed}`);
      l.dispose();
      return n;
    };
    expect(names({ mixing: 'vector', shortConv: true, keyDim: 4 })).toEqual([
      'q_proj.weight:8x4:true',
      'k_proj.weight:8x4:true',
      'v_proj.weight:8x8:true',
      'b_proj.weight:8x2:true',
      'memory_gate_proj.weight:8x8:true',
      'q_conv1d.weight:4x1x4:false',
      'k_conv1d.weight:4x1x4:false',
      'v_conv1d.weight:8x1x4:false',
      'o_norm.weight:4:false',
      'o_proj.weight:8x8:true',
    ]);
    expect(names({ mixing: 'scalar' })).toContain('memory_mixer.weight:8x4:true');
    expect(names({ memories: 'kv' }).map((n) => n.split(':')[0])).toEqual([
      'q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_norm.weight', 'o_proj.weight',
    ]);
    expect(names({ memories: 'fw', blend: 'synchronous-linear' }).map((n) => n.split(':')[0])).not.toContain('b_proj.weight');
  });

  it('rejects bad options with a clear message', () => {
    expect(() => makeLayer({ heads: 3 })).toThrow(/multiples of heads/);
    expect(() => makeLayer({ window: 0 })).toThrow(/window must be a positive integer/);
    expect(() => makeLayer({ blend: 'nope' as Blend })).toThrow(/blend must be one of/);
    expect(() => makeLayer({ rope: true, keyDim: 6, heads: 2 })).toThrow(/even per-head key width/);
  });
});
