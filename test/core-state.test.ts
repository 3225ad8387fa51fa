import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import type { State } from '../memory/core.js';
import {
  cloneState,
  concatStates,
  disposeState,
  keepState,
  prefixState,
  resetStreams,
  sliceState,
  stateBatchSize,
  subState,
} from '../memory/state.js';

beforeAll(async () => {
  await initBackend('wasm');
});

function sample(): State {
  return { 'layers.0.h': tf.tensor2d([[1, 2], [3, 4], [5, 6]]), 'layers.1.W': tf.tensor3d([1, 1, 2, 2, 3, 3], [3, 1, 2]) };
}
const rows = (t: tf.Tensor) => t.arraySync() as number[][];

describe('state helpers', () => {
  it('slices streams by index list and by range', () => {
    const s = sample();
    const picked = sliceState(s, [2, 0]);
    expect(rows(picked['layers.0.h'])).toEqual([[5, 6], [1, 2]]);
    expect(rows(picked['layers.1.W'])).toEqual([[[3, 3]], [[1, 1]]]);
    const range = sliceState(s, 1, 2);
    expect(rows(range['layers.0.h'])).toEqual([[3, 4], [5, 6]]);
    expect(() => sliceState(s, 2, 2)).toThrow(/rows 2\.\.3 are out of range for batch 3/);
    [s, picked, range].forEach(disposeState);
  });

  it('concatenates states and rejects mismatched keys', () => {
    const s = sample();
    const [a, b] = [sliceState(s, 0, 1), sliceState(s, 1, 2)];
    const joined = concatStates([a, b]);
    expect(rows(joined['layers.0.h'])).toEqual(rows(s['layers.0.h']));
    expect(() => concatStates([a, { x: tf.zeros([1]) }])).toThrow(/different keys/);
    [s, a, b, joined].forEach(disposeState);
  });

  it('resets flagged streams only and keeps tensors alive through tidy', () => {
    const s = sample();
    const flags = tf.tensor1d([0, 1, 0]);
    const kept = tf.tidy(() => keepState(resetStreams(s, flags)));
    expect(rows(kept['layers.0.h'])).toEqual([[1, 2], [0, 0], [5, 6]]);
    expect(rows(kept['layers.1.W'])).toEqual([[[1, 1]], [[0, 0]], [[3, 3]]]);
    const copy = cloneState(kept);
    disposeState(kept);
    expect(rows(copy['layers.0.h'])[0]).toEqual([1, 2]);
    [s, copy].forEach(disposeState);
    flags.dispose();
  });

  it('nests and un-nests layer states by prefix', () => {
    const s = sample();
    const inner = subState(s, 'layers.1.');
    expect(Object.keys(inner)).toEqual(['W']);
    expect(Object.keys(prefixState(inner, 'layers.7.'))).toEqual(['layers.7.W']);
    expect(stateBatchSize(s)).toBe(3);
    disposeState(s);
  });

  it('handles empty states (memoryless cores) everywhere without leaking', () => {
    const before = tf.memory().numTensors;
    const empty: State = {};
    expect(sliceState(empty, [0, 1])).toEqual({});
    expect(sliceState(empty, 0, 5)).toEqual({});
    expect(concatStates([empty, {}])).toEqual({});
    const flags = tf.tensor1d([1]);
    expect(resetStreams(empty, flags)).toEqual({});
    flags.dispose();
    expect(cloneState(empty)).toEqual({});
    expect(stateBatchSize(empty)).toBeUndefined();
    disposeState(empty);
    expect(tf.memory().numTensors).toBe(before);
  });
});
