/**
 * Memory introspection (`step(..., { introspect: true })`) against the layer's own computation, and saliency
 * through the sequence form: what the viewer shows must be what the layer computed.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { RecurrentAgent } from '../agents/agent.js';
import { Box, Discrete } from '../envs/spaces.js';
import { initBackend } from '../memory/backend.js';
import type { State } from '../memory/core.js';
import { BLENDS, HqltLayer, type HqltLayerOptions } from '../memory/hqlt.js';
import { createCore } from '../memory/registry.js';
import { disposeState } from '../memory/state.js';
import { makeRng } from '../util/random.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const base: HqltLayerOptions = {
  dim: 8,
  heads: 2,
  window: 3,
  blend: 'synchronous',
  mixing: 'vector',
  rope: true,
  shortConv: false,
  allowNegativeEigenvalues: true,
};

/** Steps a layer through T inputs for B = 2 streams; stream 1 starts a new episode at `restart`. */
function run(layer: HqltLayer, T: number, restart: number, introspect: boolean) {
  const rng = makeRng('inputs');
  let state: State = layer.initialState(2);
  const out: { y: Float32Array; state: Record<string, Float32Array>; intro: Record<string, tf.Tensor> }[] = [];
  const xs: number[][][] = [];
  for (let t = 0; t < T; t++) {
    const x = Array.from({ length: 2 }, () => Array.from({ length: layer.dim }, () => rng() * 2 - 1));
    xs.push(x);
    const starts = tf.tensor1d([t === 0 ? 1 : 0, t === 0 || t === restart ? 1 : 0]);
    const xt = tf.tensor2d(x);
    const r = layer.step(xt, state, starts, introspect ? { introspect } : undefined);
    tf.dispose([xt, starts]);
    disposeState(state);
    state = r.state;
    out.push({
      y: r.y.dataSync() as Float32Array,
      state: Object.fromEntries(Object.entries(r.state).map(([k, v]) => [k, v.dataSync() as Float32Array])),
      intro: r.introspection ?? {},
    });
    r.y.dispose();
  }
  disposeState(state);
  return { out, xs };
}

describe('HqltLayer introspection', () => {
  it('changes nothing the layer computes, and off returns nothing and leaks nothing', () => {
    for (const blend of BLENDS) {
      for (const mixing of ['vector', 'scalar', 'sum'] as const) {
        const layer = new HqltLayer({ ...base, blend, mixing }, makeRng(`w-${blend}`));
        const before = tf.memory().numTensors;
        const off = run(layer, 7, 4, false);
        expect(tf.memory().numTensors).toBe(before);
        expect(off.out.every((o) => Object.keys(o.intro).length === 0)).toBe(true);
        const on = run(layer, 7, 4, true);
        for (let t = 0; t < 7; t++) {
          expect(on.out[t]!.y).toEqual(off.out[t]!.y);
          expect(on.out[t]!.state).toEqual(off.out[t]!.state);
          tf.dispose(Object.values(on.out[t]!.intro));
        }
        expect(tf.memory().numTensors).toBe(before);
        layer.dispose();
      }
    }
  });

  it('attention rows sum to 1 over the window, with no weight before an episode start or outside the chunk', () => {
    for (const blend of BLENDS) {
      const S = 3;
      const layer = new HqltLayer({ ...base, blend, window: S }, makeRng('w'));
      const { out } = run(layer, 9, 5, true);
      out.forEach((o, t) => {
        const a = o.intro.attention!.arraySync() as number[][][]; // [B, H, S]
        expect(o.intro.attention!.shape).toEqual([2, 2, S]);
        a.forEach((heads, b) => {
          const pos = b === 1 && t >= 5 ? t - 5 : t; // steps since the episode start
          const limit = blend === 'delayed-chunk' ? pos % S : Math.min(pos, S - 1); // farthest visible distance
          for (const row of heads) {
            expect(row.reduce((s, w) => s + w, 0)).toBeCloseTo(1, 5);
            row.forEach((w, i) => {
              if (S - 1 - i > limit) expect(w).toBe(0);
              else expect(w).toBeGreaterThan(0);
            });
          }
        });
      });
      for (const o of out) tf.dispose(Object.values(o.intro));
      layer.dispose();
    }
  });

  it('attention equals softmax(q·k/√K) over the window computed from the weights (no RoPE)', () => {
    const layer = new HqltLayer({ ...base, rope: false, memories: 'kv', window: 4 }, makeRng('w'));
    const { out, xs } = run(layer, 6, 99, true);
    const w = Object.fromEntries(layer.namedWeights().map((n) => [n.name, n.variable.arraySync() as number[][]]));
    const proj = (m: number[][], x: number[]) => m[0]!.map((_, j) => x.reduce((s, xi, i) => s + xi * m[i]![j]!, 0)); // [in, out]
    const K = 4;
    for (let t = 0; t < 6; t++) {
      const a = out[t]!.intro.attention!.arraySync() as number[][][];
      const q = proj(w['q_proj.weight']!, xs[t]![0]!);
      for (let h = 0; h < 2; h++) {
        const keys = [3, 2, 1, 0].map((d) => t - d); // slot i holds the step 3 − i back
        const scores = keys.map((j) => (j < 0 ? -Infinity : proj(w['k_proj.weight']!, xs[j]![0]!).slice(h * K, (h + 1) * K).reduce((s, k, i) => s + k * q[h * K + i]!, 0) / Math.sqrt(K)));
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((s, v) => s + v, 0);
        e.forEach((v, i) => expect(a[0]![h]![i]).toBeCloseTo(v / z, 5));
      }
    }
    for (const o of out) tf.dispose(Object.values(o.intro));
    layer.dispose();
  });

  it('gates, β and the FW update are in range and match the state the layer wrote', () => {
    for (const [mixing, allowNegativeEigenvalues] of [['vector', true], ['scalar', false]] as const) {
      const layer = new HqltLayer({ ...base, mixing, allowNegativeEigenvalues }, makeRng('w'));
      const { out } = run(layer, 6, 3, true);
      out.forEach((o, t) => {
        const gate = o.intro[mixing === 'vector' ? 'gate' : 'alpha']!;
        expect(gate.shape).toEqual(mixing === 'vector' ? [2, 2, 4] : [2, 2, 2]);
        for (const g of gate.dataSync()) expect(g > 0 && g < 1).toBe(true);
        for (const b of o.intro.beta!.dataSync()) expect(b > 0 && b < (allowNegativeEigenvalues ? 2 : 1)).toBe(true);
        // ‖W_t − W_{t−1}‖ per head from the states themselves (W_{t−1} is zero at an episode start).
        const norms = o.intro.fwUpdate!.arraySync() as number[][];
        const now = o.state.fw!;
        const prev = t === 0 ? new Float32Array(now.length) : out[t - 1]!.state.fw!;
        const per = now.length / 4; // [B, H, V, K] → B·H blocks
        for (let b = 0; b < 2; b++)
          for (let h = 0; h < 2; h++) {
            const reset = t === 0 || (b === 1 && t === 3);
            let s = 0;
            for (let i = 0; i < per; i++) {
              const j = (b * 2 + h) * per + i;
              s += (now[j]! - (reset ? 0 : prev[j]!)) ** 2;
            }
            expect(norms[b]![h]).toBeCloseTo(Math.sqrt(s), 4);
          }
      });
      for (const o of out) tf.dispose(Object.values(o.intro));
      layer.dispose();
    }
  });

  it('a stacked core nests each layer’s internals, and the agent reads them to the host', async () => {
    const core = createCore({ type: 'hqlt', dim: 8, heads: 2, window: 3, layers: 2 }, 1);
    const agent = new RecurrentAgent(core, new Box(-1, 1, [3]), new Discrete(3), { seed: 1 });
    const state = agent.initialState(2);
    const obs = Float32Array.from([0.1, 0.2, 0.3, -0.5, 0, 0.5]); // a batch of two Box(3) observations
    const plain = await agent.act(obs, state, [1, 1], { deterministic: true });
    const before = tf.memory().numTensors;
    const seen = await agent.act(obs, state, [1, 1], { deterministic: true, introspect: true });
    expect(tf.memory().numTensors - before).toBe(Object.keys(seen.state).length); // only the next state
    expect(plain.introspection).toBeUndefined();
    expect(Object.keys(seen.introspection!).sort()).toEqual(
      ['attention', 'beta', 'fwUpdate', 'gate'].flatMap((k) => [`layers.0.${k}`, `layers.1.${k}`]).sort(),
    );
    expect(seen.introspection!['layers.1.attention']!.shape).toEqual([2, 2, 3]);
    expect(Array.from(seen.actionData)).toEqual(Array.from(plain.actionData));
    expect(seen.policy[0]! + seen.policy[1]! + seen.policy[2]!).toBeCloseTo(1, 5);
    for (const s of [state, plain.state, seen.state]) disposeState(s);
    agent.dispose();
  });
});

describe('saliency', () => {
  /** Saliency of every step of one 6-step episode for a core; returns rows [t][j]. */
  async function saliencyOf(core: Record<string, unknown>) {
    const agent = new RecurrentAgent(createCore(core, 3), new Box(-1, 1, [4]), new Discrete(3), { seed: 3, previousAction: false });
    const rng = makeRng('obs');
    const L = 6;
    const batch = {
      batch: 1,
      length: L,
      features: Float32Array.from({ length: L * 4 }, () => rng() * 2 - 1),
      actions: Float32Array.from({ length: L }, (_, t) => t % 3),
      episodeStart: Float32Array.from({ length: L }, (_, t) => (t === 0 ? 1 : 0)),
    };
    const state = agent.initialState(1);
    const before = tf.memory().numTensors;
    const rows: number[][] = [];
    for (let t = 0; t < L; t++) rows.push(Array.from(await agent.saliency(batch, state, t)));
    expect(tf.memory().numTensors).toBe(before);
    disposeState(state);
    agent.dispose();
    return rows;
  }

  it('reaches exactly the past the memory can see', async () => {
    // No memory: only the current observation matters.
    const mlp = await saliencyOf({ type: 'mlp', dim: 8, layers: 1 });
    // A window of 2 steps, one layer: the current and the previous observation.
    const win = await saliencyOf({ type: 'window-attention', dim: 8, heads: 2, window: 2, layers: 1 });
    // DeltaNet fast weights: the whole episode.
    const fw = await saliencyOf({ type: 'deltanet', dim: 8, heads: 2, layers: 1 });
    for (let t = 0; t < 6; t++) {
      for (let j = 0; j < 6; j++) {
        if (j > t) for (const rows of [mlp, win, fw]) expect(rows[t]![j]).toBe(0);
        else {
          expect(mlp[t]![j]! > 0).toBe(j === t);
          expect(win[t]![j]! > 0).toBe(j >= t - 1);
          expect(fw[t]![j]).toBeGreaterThan(0);
        }
      }
    }
  });
});
