import { describe, expect, it } from 'vitest';
import { makeRng } from '../util/random.js';
import {
  evaluateModular,
  makeCharLmTask,
  makeModularArithmeticTask,
  makeParityTask,
  makeRecallTask,
  NO_LABEL,
  type Sample,
  type SequenceTask,
} from '../training/supervised/tasks/index.js';
import { sectionSplit, splitText } from '../training/supervised/tasks/char-lm.js';

/** The labelled positions of a sample. */
function labelled(s: Sample): number[] {
  return s.labels.flatMap((l, i) => (l === NO_LABEL ? [] : [i]));
}

function trainSamples(task: SequenceTask, seed: string, batches: number, batch = 16): Sample[] {
  const rng = makeRng(seed);
  return Array.from({ length: batches }, () => task.trainBatch(rng, batch)).flat();
}

/** Decodes modular tokens back to a string and evaluates it with JavaScript's own precedence (independent check). */
function jsEvalModular(tokens: number[], modulus: number): number {
  const text = tokens.map((t) => (t < modulus ? `${t}n` : ['+', '-', '*'][t - modulus])).join(' ');
  // Only BigInt literals and + - * reach eval (exact at any length); JS gives * precedence over + and -.
  const value = Function(`"use strict"; return (${text});`)() as bigint;
  const m = BigInt(modulus);
  return Number(((value % m) + m) % m);
}

describe('parity', () => {
  const task = makeParityTask(7);
  it('labels are the count of ones mod 2, at the end token only', () => {
    for (const s of [...trainSamples(task, 'a', 20), ...task.evalSets().test]) {
      const bits = s.tokens.slice(0, -1);
      expect(s.tokens.at(-1)).toBe(2);
      expect(labelled(s)).toEqual([s.tokens.length - 1]);
      expect(s.labels.at(-1)).toBe(bits.filter((b) => b === 1).length % 2);
      expect(bits.every((b) => b === 0 || b === 1)).toBe(true);
    }
  });
  it('train lengths are 3..39 (one per batch), test lengths 40..256, and both ends occur', () => {
    const rng = makeRng('lengths');
    const trainLengths = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const batch = task.trainBatch(rng, 4);
      expect(new Set(batch.map((s) => s.tokens.length)).size).toBe(1);
      trainLengths.add(batch[0].tokens.length - 1);
    }
    expect(Math.min(...trainLengths)).toBe(3);
    expect(Math.max(...trainLengths)).toBe(39);
    const testLengths = task.evalSets().test.map((s) => s.tokens.length - 1);
    expect(Math.min(...testLengths)).toBeGreaterThanOrEqual(40);
    expect(Math.max(...testLengths)).toBeLessThanOrEqual(256);
    expect(Math.max(...testLengths)).toBeGreaterThan(240);
  });
  it('is balanced enough and deterministic per seed', () => {
    const test = task.evalSets().test;
    const ones = test.filter((s) => s.labels.at(-1) === 1).length / test.length;
    expect(ones).toBeGreaterThan(0.4);
    expect(ones).toBeLessThan(0.6);
    expect(makeParityTask(7).evalSets()).toEqual(task.evalSets());
    expect(makeParityTask(8).evalSets()).not.toEqual(task.evalSets());
    expect(trainSamples(task, 's', 3)).toEqual(trainSamples(makeParityTask(7), 's', 3));
  });
  it('rejects overlapping length ranges', () => {
    expect(() => makeParityTask(1, { trainMin: 3, trainMax: 40, testMin: 40, testMax: 256, testSize: 8 })).toThrow(/overlap/);
  });
});

describe('modular arithmetic', () => {
  const task = makeModularArithmeticTask(3);
  it('evaluates with × before + and − (not left to right)', () => {
    expect(evaluateModular([1, 2, 3], ['+', '*'], 5)).toBe(2); // 1 + 6 = 7
    expect(evaluateModular([1, 1, 1], ['-', '-'], 5)).toBe(4); // -1
    expect(evaluateModular([0, 1, 4, 3, 2], ['*', '+', '*', '-'], 5)).toBe(0); // 0 + 12 − 2 = 10
    expect(evaluateModular([1, 2, 3], ['-', '*'], 5)).toBe(0); // 1 − 6 = −5
  });
  it('labels match an independent evaluation; odd lengths in the right ranges', () => {
    const train = trainSamples(task, 'b', 40);
    const test = task.evalSets().test;
    for (const [set, lo, hi] of [
      [train, 3, 39],
      [test, 41, 255],
    ] as const) {
      for (const s of set) {
        const expr = s.tokens.slice(0, -1);
        expect(expr.length % 2).toBe(1);
        expect(expr.length).toBeGreaterThanOrEqual(lo);
        expect(expr.length).toBeLessThanOrEqual(hi);
        expect(s.tokens.at(-1)).toBe(8);
        expect(labelled(s)).toEqual([expr.length]);
        expr.forEach((t, i) => expect(i % 2 === 0 ? t < 5 : t >= 5 && t < 8).toBe(true));
        expect(s.labels.at(-1)).toBe(jsEvalModular(expr, 5));
      }
    }
  });
  it('is deterministic per seed', () => {
    expect(makeModularArithmeticTask(3).evalSets()).toEqual(task.evalSets());
    expect(trainSamples(task, 's', 2)).toEqual(trainSamples(makeModularArithmeticTask(3), 's', 2));
  });
});

describe('associative recall', () => {
  const opts = { keys: 16, values: 4, minPairs: 1, maxPairs: 3, evalPairs: [2, 3], evalSize: 64 };
  const task = makeRecallTask(5, opts);
  it('each query is labelled with the value paired with its key', () => {
    const all = [...trainSamples(task, 'c', 50), ...Object.values(task.evalSets()).flat()];
    for (const s of all) {
      const pairs = s.tokens.length / 3;
      const map = new Map<number, number>();
      for (let i = 0; i < pairs; i++) {
        expect(map.has(s.tokens[2 * i])).toBe(false); // keys distinct
        map.set(s.tokens[2 * i], s.tokens[2 * i + 1] - opts.keys);
        expect(s.labels[2 * i]).toBe(NO_LABEL);
        expect(s.labels[2 * i + 1]).toBe(NO_LABEL);
      }
      const queries = s.tokens.slice(2 * pairs);
      expect(new Set(queries)).toEqual(new Set(map.keys()));
      queries.forEach((q, i) => expect(s.labels[2 * pairs + i]).toBe(map.get(q)));
    }
    expect(task.evalSets()['pairs=2'].every((s) => s.tokens.length === 6)).toBe(true);
  });
  it('training never produces an evaluation sequence, even where collisions are likely', () => {
    // 16·4 = 64 one-pair sequences exist and 128 two-pair eval sequences are drawn from 16·15·16·2 = 7680.
    const small = makeRecallTask(9, { ...opts, minPairs: 2, maxPairs: 2, evalPairs: [2], evalSize: 128 });
    const evalKeys = new Set(small.evalSets()['pairs=2'].map((s) => s.tokens.join(',')));
    const train = trainSamples(small, 'd', 200, 32);
    expect(train.some((s) => evalKeys.has(s.tokens.join(',')))).toBe(false);
  });
  it('rejects too few keys', () => {
    expect(() => makeRecallTask(1, { keys: 4, maxPairs: 8 })).toThrow(/distinct keys/);
  });
});

describe('char-lm (Moby-Dick)', () => {
  const task = makeCharLmTask({ context: 64, evalChars: 2000 });
  it('splits sections deterministically with no shared section text', () => {
    expect([0, 1, 8, 9, 18, 19].map(sectionSplit)).toEqual(['train', 'train', 'valid', 'test', 'valid', 'test']);
    const train = splitText('train');
    const valid = splitText('valid');
    const test = splitText('test');
    expect(train.length).toBeGreaterThan(800_000);
    expect(valid.length).toBeGreaterThan(50_000);
    expect(test.length).toBeGreaterThan(50_000);
    // A long held-out passage never appears in the training text.
    expect(train.includes(valid.slice(5000, 5200))).toBe(false);
    expect(train.includes(test.slice(5000, 5200))).toBe(false);
  });
  it('labels are the next character; eval windows tile the held-out text', () => {
    const rng = makeRng('e');
    for (const s of task.trainBatch(rng, 8)) {
      expect(s.tokens.length).toBe(64);
      expect(s.tokens.slice(1)).toEqual(s.labels.slice(0, -1));
    }
    const valid = task.evalSets().valid;
    expect(valid.reduce((n, s) => n + s.labels.length, 0)).toBe(2000);
    const decoded = valid.map((s) => s.tokens.map((t) => task.chars[t] ?? '?').join('')).join('');
    expect(decoded).toBe(splitText('valid').slice(0, 2000));
    expect(task.vocabSize).toBe(task.chars.length + 1);
  });
});
