import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { dataEquivalence } from '../envs/check.js';
import {
  batchLength,
  batchOf,
  Box,
  copyBatch,
  Dict,
  Discrete,
  flattenSpace,
  MultiBinary,
  MultiDiscrete,
  Space,
  spaceFromJSON,
  Tuple,
  unbatch,
} from '../envs/spaces.js';

const cases: [string, Space][] = [
  ['Discrete', new Discrete(5)],
  ['Discrete with start', new Discrete(3, -1)],
  ['Box bounded', new Box(-1, 2, [2, 3])],
  ['Box per-element', new Box([0, -5], [1, 5])],
  ['Box unbounded', new Box(-Infinity, Infinity, [4])],
  ['Box half-bounded', new Box([0, -Infinity], [Infinity, 3])],
  ['MultiDiscrete', new MultiDiscrete([2, 3, 4])],
  ['MultiDiscrete with start', new MultiDiscrete([2, 3], [1, -2])],
  ['MultiBinary', new MultiBinary(5)],
  ['MultiBinary 2-D', new MultiBinary([2, 3])],
  ['Tuple', new Tuple([new Discrete(2), new Box(0, 1, [2])])],
  ['Dict', new Dict({ b: new Discrete(3), a: new MultiBinary(2), c: new Tuple([new Discrete(2)]) })],
];

describe.each(cases)('%s', (_, space) => {
  const rng = seedrandom('spaces');

  it('samples lie in the space', () => {
    for (let i = 0; i < 200; i++) expect(space.contains(space.sample(rng))).toBe(true);
  });

  it('flatten/unflatten round-trips and has length flatDim', () => {
    for (let i = 0; i < 20; i++) {
      const x = space.sample(rng);
      const flat = space.flatten(x);
      expect(flat).toBeInstanceOf(Float32Array);
      expect(flat.length).toBe(space.flatDim);
      expect(dataEquivalence(space.unflatten(flat), x)).toBe(true);
      // At an offset into a larger buffer too.
      const out = new Float32Array(space.flatDim + 3).fill(7);
      space.flatten(x, out, 2);
      expect(dataEquivalence(space.unflatten(out, 2), x)).toBe(true);
      expect(out[0]).toBe(7);
      expect(out[space.flatDim + 2]).toBe(7);
    }
  });

  it('survives a JSON round trip', () => {
    const back = spaceFromJSON(JSON.parse(JSON.stringify(space.toJSON())));
    expect(back.equals(space)).toBe(true);
    expect(back.toString()).toBe(space.toString());
  });

  it('the flattened space holds flattened samples', () => {
    const flat = flattenSpace(space);
    for (let i = 0; i < 20; i++) expect(flat.contains(space.flatten(space.sample(rng)))).toBe(true);
  });
});

describe('Discrete', () => {
  it('flattens one-hot relative to start and contains only integers in range', () => {
    const s = new Discrete(3, 1);
    expect(Array.from(s.flatten(2))).toEqual([0, 1, 0]);
    expect(s.contains(1)).toBe(true);
    expect(s.contains(3)).toBe(true);
    expect(s.contains(0)).toBe(false);
    expect(s.contains(4)).toBe(false);
    expect(s.contains(1.5)).toBe(false);
    expect(s.contains('1')).toBe(false);
    expect(() => s.unflatten(new Float32Array(3))).toThrow(/not one-hot/);
  });
  it('rejects bad arguments', () => {
    expect(() => new Discrete(0)).toThrow(/positive integer/);
    expect(() => new Discrete(2.5)).toThrow(/positive integer/);
    expect(() => new Discrete(2, 0.5)).toThrow(/start/);
  });
  it('prints as Gymnasium', () => {
    expect(new Discrete(4).toString()).toBe('Discrete(4)');
    expect(new Discrete(4, 2).toString()).toBe('Discrete(4, start=2)');
  });
});

describe('Box', () => {
  it('infers the shape, and rejects bad bounds', () => {
    expect(new Box(0, 1).shape).toEqual([1]);
    expect(new Box([0, 0, 0], 1).shape).toEqual([3]);
    expect(() => new Box([0, 0], [1, 1, 1])).toThrow(/high has 3 elements/);
    expect(() => new Box(1, 0, [2])).toThrow(/greater than/);
    expect(() => new Box(NaN, 0, [2])).toThrow(/NaN/);
    expect(() => new Box(0, 1, [-1])).toThrow(/shape/);
  });
  it('contains only Float32Arrays of the right size within bounds', () => {
    const s = new Box([0, -1], [1, 1]);
    expect(s.contains(new Float32Array([0.5, -1]))).toBe(true);
    expect(s.contains(new Float32Array([1.5, 0]))).toBe(false);
    expect(s.contains(new Float32Array([NaN, 0]))).toBe(false);
    expect(s.contains(new Float32Array([0.5]))).toBe(false);
    expect(s.contains([0.5, 0])).toBe(false);
    expect(s.contains(new Float64Array([0.5, 0]))).toBe(false);
  });
  it('samples as Gymnasium: uniform when bounded, exponential when half-bounded, normal when unbounded', () => {
    const rng = seedrandom('box');
    const s = new Box([2, 0, -Infinity, -Infinity], [4, Infinity, 0, Infinity]);
    const n = 4000;
    const sums = [0, 0, 0, 0];
    const sq = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      const x = s.sample(rng);
      x.forEach((v, j) => {
        sums[j] += v;
        sq[j] += v * v;
      });
    }
    const mean = sums.map((v) => v / n);
    const variance = sq.map((v, j) => v / n - mean[j] ** 2);
    expect(mean[0]).toBeCloseTo(3, 1); // U(2, 4)
    expect(variance[0]).toBeCloseTo(1 / 3, 1);
    expect(mean[1]).toBeCloseTo(1, 1); // 0 + Exp(1)
    expect(mean[2]).toBeCloseTo(-1, 1); // 0 - Exp(1)
    expect(mean[3]).toBeCloseTo(0, 1); // N(0, 1)
    expect(variance[3]).toBeCloseTo(1, 1);
  });
  it('keeps infinite bounds through JSON and prints as Gymnasium', () => {
    const s = new Box(-Infinity, Infinity, [2]);
    expect(JSON.stringify(s.toJSON())).toContain('"-inf"');
    expect(spaceFromJSON(JSON.parse(JSON.stringify(s.toJSON()))).equals(s)).toBe(true);
    expect(s.toString()).toBe('Box(-inf, inf, (2,), float32)');
    expect(new Box(0, 1, [2, 3]).toString()).toBe('Box(0.0, 1.0, (2, 3), float32)');
    expect(new Box([0, 0.5], [1, 2]).toString()).toBe('Box([0. 0.5], [1. 2.], (2,), float32)');
    expect(s.isBounded()).toBe(false);
    expect(new Box(0, 1, [2]).isBounded()).toBe(true);
  });
});

describe('MultiDiscrete and MultiBinary', () => {
  it('MultiDiscrete flattens to concatenated one-hots', () => {
    const s = new MultiDiscrete([2, 3], [0, 1]);
    expect(Array.from(s.flatten(Int32Array.from([1, 3])))).toEqual([0, 1, 0, 0, 1]);
    expect(s.flatDim).toBe(5);
    expect(s.contains(Int32Array.from([1, 0]))).toBe(false);
    expect(s.contains([1, 1])).toBe(false);
    expect(s.toString()).toBe('MultiDiscrete([2 3], start=[0 1])');
    expect(() => new MultiDiscrete([2, 0])).toThrow(/positive/);
    expect(() => new MultiDiscrete([])).toThrow(/empty/);
    expect(() => new MultiDiscrete([2, 2], [0])).toThrow(/start/);
  });
  it('MultiBinary holds 0/1 Int8Arrays', () => {
    const s = new MultiBinary(3);
    expect(s.contains(Int8Array.from([0, 1, 1]))).toBe(true);
    expect(s.contains(Int8Array.from([0, 2, 1]))).toBe(false);
    expect(Array.from(s.flatten(Int8Array.from([1, 0, 1])))).toEqual([1, 0, 1]);
    expect(s.toString()).toBe('MultiBinary(3)');
    expect(() => new MultiBinary(0)).toThrow(/positive/);
  });
});

describe('Tuple and Dict', () => {
  it('Dict sorts the keys of a plain object, keeps the order of pairs, and flattens in key order', () => {
    const sorted = new Dict({ z: new Discrete(2), a: new Discrete(3) });
    expect(sorted.keys()).toEqual(['a', 'z']);
    expect(Array.from(sorted.flatten({ z: 1, a: 0 }))).toEqual([1, 0, 0, 0, 1]);
    expect(sorted.toString()).toBe("Dict('a': Discrete(3), 'z': Discrete(2))");
    const ordered = new Dict([
      ['z', new Discrete(2)],
      ['a', new Discrete(3)],
    ]);
    expect(ordered.keys()).toEqual(['z', 'a']);
    expect(ordered.equals(sorted)).toBe(false);
    // Integer-like keys keep their order through JSON.
    const numeric = new Dict([
      ['10', new Discrete(2)],
      ['2', new Discrete(3)],
    ]);
    expect((spaceFromJSON(JSON.parse(JSON.stringify(numeric.toJSON()))) as Dict).keys()).toEqual(['10', '2']);
  });
  it('Dict contains exactly its keys', () => {
    const s = new Dict({ a: new Discrete(2) });
    expect(s.contains({ a: 1 })).toBe(true);
    expect(s.contains({ a: 1, b: 0 })).toBe(false);
    expect(s.contains({})).toBe(false);
    expect(s.contains(new Map([['a', 1]]))).toBe(false);
  });
  it('Tuple checks length and parts, and prints as Gymnasium', () => {
    const s = new Tuple([new Discrete(2), new MultiBinary(1)]);
    expect(s.contains([1, Int8Array.from([1])])).toBe(true);
    expect(s.contains([1])).toBe(false);
    expect(s.contains([2, Int8Array.from([1])])).toBe(false);
    expect(s.toString()).toBe('Tuple(Discrete(2), MultiBinary(1))');
  });
  it('rejects non-space parts', () => {
    expect(() => new Tuple([new Discrete(2), 3 as unknown as Space])).toThrow(/element 1 is not a Space/);
    expect(() => new Dict({ a: {} as Space })).toThrow(/key 'a' is not a Space/);
    expect(() => spaceFromJSON({ type: 'Graph' })).toThrow(/unknown space type 'Graph'/);
  });
  it('equals compares structure', () => {
    expect(new Box(0, 1, [2]).equals(new Box([0, 0], [1, 1]))).toBe(true);
    expect(new Box(0, 1, [2]).equals(new Box(0, 2, [2]))).toBe(false);
    expect(new Discrete(2).equals(new MultiBinary(2))).toBe(false);
  });
});

describe('batches (Gymnasium batch_space)', () => {
  it.each(cases)('%s: batchOf / unbatch round-trip, flattenBatch equals flatten per value', (_name, space) => {
    const rng = seedrandom('batch');
    const values = Array.from({ length: 4 }, () => space.sample(rng));
    const batch = batchOf(space, values);
    expect(space.batchContains(batch, 4)).toBe(true);
    expect(space.batchContains(batch, 3)).toBe(false);
    expect(batchLength(space, batch)).toBe(4);
    expect(dataEquivalence(unbatch(space, batch), values)).toBe(true);
    const rows = new Float32Array(4 * space.flatDim);
    values.forEach((v, i) => space.flatten(v, rows, i * space.flatDim));
    expect(Array.from(space.flattenBatch(batch, 4))).toEqual(Array.from(rows));
    // Joining two batches (as workers' or servers' parts are joined) keeps the env order.
    const joined = space.createBatch(6);
    copyBatch(batch, 4, joined, 0);
    copyBatch(batchOf(space, values.slice(0, 2)), 2, joined, 4);
    expect(dataEquivalence(unbatch(space, joined), [...values, ...values.slice(0, 2)])).toBe(true);
  });

  it('lays out leaves as typed arrays, env index first, and nests Tuple and Dict', () => {
    expect(batchOf(new Discrete(3), [2, 0])).toEqual(Int32Array.of(2, 0));
    expect(batchOf(new Box(0, 9, [2]), [Float32Array.of(1, 2), Float32Array.of(3, 4)])).toEqual(Float32Array.of(1, 2, 3, 4));
    expect(batchOf(new MultiDiscrete([2, 3]), [Int32Array.of(1, 2), Int32Array.of(0, 1)])).toEqual(Int32Array.of(1, 2, 0, 1));
    expect(batchOf(new MultiBinary(2), [Int8Array.of(1, 0), Int8Array.of(0, 1)])).toEqual(Int8Array.of(1, 0, 0, 1));
    const dict = new Dict({ b: new Tuple([new Discrete(2), new MultiBinary(1)]), a: new Discrete(4) });
    expect(batchOf(dict, [{ a: 3, b: [1, Int8Array.of(1)] }, { a: 0, b: [0, Int8Array.of(0)] }])).toEqual({
      a: Int32Array.of(3, 0),
      b: [Int32Array.of(1, 0), Int8Array.of(1, 0)],
    });
  });

  it('batchContains checks values and layout', () => {
    expect(new Discrete(3, 1).batchContains(Int32Array.of(1, 3), 2)).toBe(true);
    expect(new Discrete(3, 1).batchContains(Int32Array.of(0, 3), 2)).toBe(false);
    expect(new Discrete(3).batchContains([0, 1], 2)).toBe(false);
    expect(new Box(0, 1, [2]).batchContains(Float32Array.of(0, 1, 1, 2), 2)).toBe(false);
    expect(new Dict({ a: new Discrete(2) }).batchContains({ a: Int32Array.of(1), b: Int32Array.of(1) }, 1)).toBe(false);
  });
});
