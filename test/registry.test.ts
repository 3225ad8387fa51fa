import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { CORE_TYPES, coreTypes, createCore, describeCore, resolveCoreConfig } from '../memory/registry.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('core registry', () => {
  it('lists base types and presets', () => {
    expect(coreTypes()).toEqual(expect.arrayContaining([...CORE_TYPES, 'hqlt-sync', 'hqlt-delayed', 'hqlt-chunk']));
  });

  it('fills defaults', () => {
    expect(resolveCoreConfig({ type: 'hqlt' })).toEqual({
      type: 'hqlt',
      dim: 64,
      layers: 2,
      mlp: true,
      mlpHidden: 176,
      heads: 4,
      shortConv: false,
      window: 64,
      blend: 'synchronous',
      mixing: 'vector',
      rope: true,
      allowNegativeEigenvalues: true,
    });
    expect(resolveCoreConfig({ type: 'gru', dim: 16, mlp: false })).toEqual({ type: 'gru', dim: 16, layers: 2, mlp: false });
    expect(resolveCoreConfig({ type: 'transformer' })).toMatchObject({ maxContext: 256, rope: true });
  });

  it('resolves presets to their base type, and refuses contradicting them', () => {
    expect(resolveCoreConfig({ type: 'hqlt-chunk', window: 8 })).toMatchObject({ type: 'hqlt', blend: 'delayed-chunk', window: 8 });
    expect(resolveCoreConfig({ type: 'hqlt-delayed', blend: 'delayed-streaming' })).toMatchObject({ blend: 'delayed-streaming' });
    expect(resolveCoreConfig({ type: 'transformer-full', dim: 16 })).toMatchObject({ type: 'transformer', maxContext: 1024, dim: 16 });
    expect(() => resolveCoreConfig({ type: 'hqlt-sync', blend: 'delayed-chunk' })).toThrow(
      /preset 'hqlt-sync' fixes blend = "synchronous"; drop 'blend' or use type 'hqlt'/,
    );
  });

  it.each([
    ['a non-object', 'hqlt', /must be an object like/],
    ['a missing type', { dim: 8 }, /Unknown core type undefined\. Choose one of: hqlt, deltanet, .*mlp, hqlt-sync/],
    ['an unknown type', { type: 'mamba' }, /Unknown core type "mamba"\. Choose one of: hqlt/],
    ['a bad blend', { type: 'hqlt', blend: 'async' }, /blend: Invalid enum value\. Expected 'synchronous' \| 'delayed-streaming' \| 'delayed-chunk' \| 'synchronous-linear', received 'async'/],
    ['a field of another type', { type: 'gru', window: 4 }, /'window': not a field of type 'gru' \(fields: type, dim, layers, mlp, mlpHidden\)/],
    ['a non-integer width', { type: 'lstm', dim: 7.5 }, /dim: Expected integer, received float \(got 7\.5\)/],
    ['a zero layer count', { type: 'mlp', layers: 0 }, /layers: Number must be greater than 0/],
    ['a wrong field type', { type: 'hqlt', rope: 'yes' }, /rope: Expected boolean, received string/],
    ['heads not dividing dim', { type: 'window-attention', dim: 10, heads: 4 }, /dim: 10 is not divisible by heads \(4\)/],
    ['heads not dividing keyDim', { type: 'deltanet', dim: 8, heads: 2, keyDim: 5 }, /keyDim: 5 is not divisible by heads \(2\)/],
    ['an mlp core without MLP', { type: 'mlp', mlp: false }, /mlp must be true/],
    ['an MLP width without MLP', { type: 'gru', mlp: false, mlpHidden: 8 }, /mlpHidden: set, but mlp is false/],
  ])('rejects %s with a clear message', (_, config, message) => {
    expect(() => resolveCoreConfig(config)).toThrow(message);
  });

  it('lists every bad field at once', () => {
    const attempt = () => resolveCoreConfig({ type: 'hqlt', mixing: 'max', heads: -1 });
    expect(attempt).toThrow(/\n {2}mixing: Invalid enum value/);
    expect(attempt).toThrow(/\n {2}heads: Number must be greater than 0 \(got -1\)/);
  });

  it('names weights in the spec layout, prefixed per layer', () => {
    const names = (config: Record<string, unknown>) => {
      const core = createCore(config, 0);
      const out = core.namedWeights().map((w) => [w.name, w.transposed ? [...w.variable.shape].reverse() : w.variable.shape]);
      core.dispose();
      return Object.fromEntries(out);
    };
    expect(names({ type: 'gru', dim: 4, layers: 1, mlpHidden: 6 })).toEqual({
      'layers.0.attn_norm.weight': [4],
      'layers.0.attn.weight_ih_l0': [12, 4],
      'layers.0.attn.weight_hh_l0': [12, 4],
      'layers.0.attn.bias_ih_l0': [12],
      'layers.0.attn.bias_hh_l0': [12],
      'layers.0.mlp_norm.weight': [4],
      'layers.0.mlp.gate_proj.weight': [6, 4],
      'layers.0.mlp.up_proj.weight': [6, 4],
      'layers.0.mlp.down_proj.weight': [4, 6],
      'norm.weight': [4],
    });
    expect(Object.keys(names({ type: 'lstm', dim: 4, layers: 2, mlp: false }))).toEqual([
      ...['attn_norm.weight', 'attn.weight_ih_l0', 'attn.weight_hh_l0', 'attn.bias_ih_l0', 'attn.bias_hh_l0'].map((n) => `layers.0.${n}`),
      ...['attn_norm.weight', 'attn.weight_ih_l0', 'attn.weight_hh_l0', 'attn.bias_ih_l0', 'attn.bias_hh_l0'].map((n) => `layers.1.${n}`),
      'norm.weight',
    ]);
    expect(Object.keys(names({ type: 'mlp', dim: 4, layers: 1 }))).toEqual([
      'layers.0.mlp_norm.weight',
      'layers.0.mlp.gate_proj.weight',
      'layers.0.mlp.up_proj.weight',
      'layers.0.mlp.down_proj.weight',
      'norm.weight',
    ]);
    const hqlt = names({ type: 'hqlt', dim: 8, heads: 2, layers: 1, mlp: false, window: 4 });
    expect(hqlt['layers.0.attn.q_proj.weight']).toEqual([8, 8]);
    expect(hqlt['layers.0.attn.memory_gate_proj.weight']).toEqual([8, 8]);
    expect(hqlt['layers.0.attn.o_norm.weight']).toEqual([4]);
  });

  it('keeps the resolved config on the core and describes it in one line', () => {
    const core = createCore({ type: 'hqlt-chunk', dim: 8, heads: 2, layers: 1, window: 4, rope: true }, 0);
    expect(core.config).toMatchObject({ type: 'hqlt', blend: 'delayed-chunk', mlpHidden: 24 });
    expect(describeCore(core)).toMatch(/^hqlt L=1 D=8 H=2 S=4 blend=delayed-chunk mixing=vector rope mlp=24 params=\d+$/);
    expect(describeCore({ type: 'gru', dim: 16, mlp: false })).toBe('gru L=2 D=16 no-mlp');
    core.dispose();
  });
});
