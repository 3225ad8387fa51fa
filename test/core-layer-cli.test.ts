/** `hqlt layer`: one HQLT layer from config + safetensors weights, run on a safetensors input. */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { HqltLayer } from '../memory/hqlt.js';
import { makeRng } from '../util/random.js';
import { readSafetensors, writeSafetensors } from '../util/safetensors.js';
import { disposeState } from '../memory/state.js';
import { exportWeights } from '../memory/weights.js';
import { runLayer } from '../memory/layer-file.js';

let dir: string;
const [B, T, D] = [2, 7, 8];
const path = (name: string) => join(dir, name);

beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'hqlt-layer-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeJson(name: string, value: unknown): string {
  writeFileSync(path(name), JSON.stringify(value));
  return path(name);
}

describe('hqlt layer command', () => {
  it('reproduces the layer run in-process, widths inferred from the weights, episode starts honoured', async () => {
    const config = { blend: 'delayed-chunk', mixing: 'scalar', window: 3, rope: true } as const;
    const layer = new HqltLayer(
      { dim: D, heads: 2, keyDim: 4, valueDim: 6, window: 3, blend: 'delayed-chunk', mixing: 'scalar', rope: true, shortConv: false, allowNegativeEigenvalues: true },
      makeRng(5),
    );
    await exportWeights(layer, path('w.safetensors'));
    const x = Float32Array.from({ length: B * T * D }, (_, i) => Math.sin(i * 1.3));
    const start = new Float32Array(B * T);
    start[1 * T + 4] = 1;
    writeSafetensors(path('x.safetensors'), { x: { shape: [B, T, D], data: x }, episode_start: { shape: [B, T], data: start } });
    const shape = await runLayer({
      config: writeJson('layer.json', config),
      weights: path('w.safetensors'),
      input: path('x.safetensors'),
      out: path('y.safetensors'),
      backend: 'wasm',
    });
    expect(shape).toEqual([B, T, D]);
    const y = readSafetensors(path('y.safetensors')).tensors.y;

    const xs = tf.tensor3d(x, [B, T, D]);
    const es = tf.tensor2d(start, [B, T]);
    const state = layer.initialState(B);
    const want = layer.forward(xs, state, es);
    const wantData = want.ys.dataSync();
    expect(Math.max(...y.data.map((v, i) => Math.abs(v - wantData[i])))).toBeLessThan(1e-6);
    // Without the episode start, stream 1's later outputs change.
    const noStart = tf.zeros([B, T]) as tf.Tensor2D;
    const other = layer.forward(xs, state, noStart);
    expect(tf.max(tf.abs(tf.sub(other.ys, want.ys))).dataSync()[0]).toBeGreaterThan(1e-4);
    tf.dispose([xs, es, noStart, want.ys, other.ys]);
    [state, want.state, other.state].forEach(disposeState);
    layer.dispose();
  });

  /** Weights of a scalar-mixing layer with 2 heads, for the failure cases. */
  beforeAll(async () => {
    const layer = new HqltLayer(
      { dim: D, heads: 2, window: 4, blend: 'synchronous', mixing: 'scalar', rope: false, shortConv: false, allowNegativeEigenvalues: true },
      makeRng(1),
    );
    await exportWeights(layer, path('w2.safetensors'));
    layer.dispose();
  });

  it.each([
    ['an unknown config field', { blend: 'synchronous', windw: 4 }, /Invalid layer config .*layer-bad\.json:\n {2}\(config\): Unrecognized key\(s\) in object: 'windw'/],
    ['a bad blend', { blend: 'later' }, /blend: Invalid enum value\. Expected 'synchronous' \| /],
    ['heads contradicting the weights', { heads: 4 }, /config says heads = 4 but the weights have 2/],
    ['a mixing whose weights are absent', { mixing: 'vector' }, /missing: memory_gate_proj\.weight; unexpected: memory_mixer\.weight/],
  ])('fails clearly on %s', async (_, config, message) => {
    writeSafetensors(path('x2.safetensors'), { x: { shape: [1, 2, D], data: new Float32Array(2 * D) } });
    await expect(
      runLayer({ config: writeJson('layer-bad.json', { mixing: 'scalar', ...config }), weights: path('w2.safetensors'), input: path('x2.safetensors'), out: path('y2.safetensors'), backend: 'wasm' }),
    ).rejects.toThrow(message);
  });

  it("accepts and ignores the authors' b_proj.weight where the layer has no β (synchronous-linear)", async () => {
    const layer = new HqltLayer(
      { dim: D, heads: 2, window: 4, blend: 'synchronous-linear', mixing: 'vector', rope: false, shortConv: false, allowNegativeEigenvalues: true },
      makeRng(3),
    );
    await exportWeights(layer, path('lin.safetensors'));
    layer.dispose();
    const { tensors } = readSafetensors(path('lin.safetensors'));
    const withBeta = (shape: number[]) => ({ ...tensors, 'b_proj.weight': { shape, data: new Float32Array(shape[0] * shape[1]).fill(0.5) } });
    writeSafetensors(path('lin-b.safetensors'), withBeta([2, D]));
    writeSafetensors(path('lin-bad.safetensors'), withBeta([3, D]));
    writeSafetensors(path('x4.safetensors'), { x: { shape: [1, 3, D], data: Float32Array.from({ length: 3 * D }, (_, i) => Math.cos(i)) } });
    const run = (weights: string, out: string) =>
      runLayer({ config: writeJson('lin.json', { blend: 'synchronous-linear' }), weights: path(weights), input: path('x4.safetensors'), out: path(out), backend: 'wasm' });
    await run('lin.safetensors', 'y4.safetensors');
    await run('lin-b.safetensors', 'y4b.safetensors');
    expect(readSafetensors(path('y4b.safetensors')).tensors.y.data).toEqual(readSafetensors(path('y4.safetensors')).tensors.y.data);
    await expect(run('lin-bad.safetensors', 'y4c.safetensors')).rejects.toThrow(/'b_proj\.weight' has shape \[3, 8\], expected \[2, 8\]/);
  });

  it('fails clearly on a badly shaped input', async () => {
    writeSafetensors(path('x3.safetensors'), { x: { shape: [1, 2, D + 1], data: new Float32Array(2 * (D + 1)) } });
    await expect(
      runLayer({ config: writeJson('layer3.json', { mixing: 'scalar' }), weights: path('w2.safetensors'), input: path('x3.safetensors'), out: path('y3.safetensors'), backend: 'wasm' }),
    ).rejects.toThrow(/'x' has shape \[1, 2, 9\]; expected \[B, T, 8\]/);
  });
});
