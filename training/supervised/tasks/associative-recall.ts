/**
 * Multi-query associative recall (MQAR, as in Arora et al. 2023 "Zoology"): N key–value pairs
 * `k1 v1 k2 v2 ... kN vN`, then every key once more in a random order; at each repeated key the model must
 * output the value that was paired with it. Keys within a sequence are distinct; values may repeat.
 *
 * Tokens: keys are 0..keys−1, values keys..keys+values−1; labels are value indices 0..values−1.
 * The evaluation sets (one per number of pairs) are drawn first from the task's seed, and training samples that
 * happen to equal an evaluation sequence are redrawn, so no sequence is in both.
 */
import { makeRng, deriveSeed, type Rng } from '../../../util/random.js';
import { checkRange, NO_LABEL, randInt, type Sample, type SequenceTask } from './common.js';

export interface RecallOptions {
  /** Key vocabulary size (must be at least the largest number of pairs). */
  keys: number;
  /** Value vocabulary size (chance accuracy is 1/values). */
  values: number;
  /** Training draws a number of pairs uniformly in [minPairs, maxPairs]. */
  minPairs: number;
  maxPairs: number;
  /** Numbers of pairs to evaluate at (may exceed maxPairs to test extrapolation). */
  evalPairs: number[];
  /** Evaluation sequences per number of pairs. */
  evalSize: number;
}

export const DEFAULT_RECALL: RecallOptions = {
  keys: 64,
  values: 64,
  minPairs: 2,
  maxPairs: 32,
  evalPairs: [4, 8, 16, 32],
  evalSize: 128,
};

/** Distinct integers drawn from [0, n) (partial Fisher–Yates). */
function distinct(rng: () => number, n: number, count: number): number[] {
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = randInt(rng, i, n - 1);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}

/** One MQAR sequence with `pairs` pairs (length 3·pairs: the pairs, then the queries). */
export function recallSample(rng: () => number, pairs: number, opts: Pick<RecallOptions, 'keys' | 'values'>): Sample {
  const keys = distinct(rng, opts.keys, pairs);
  const values = keys.map(() => randInt(rng, 0, opts.values - 1));
  const tokens: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < pairs; i++) {
    tokens.push(keys[i], opts.keys + values[i]);
    labels.push(NO_LABEL, NO_LABEL);
  }
  for (const q of distinct(rng, pairs, pairs)) {
    tokens.push(keys[q]);
    labels.push(values[q]);
  }
  return { tokens, labels };
}

export function makeRecallTask(seed: number | string, options: Partial<RecallOptions> = {}): SequenceTask {
  const opts = { ...DEFAULT_RECALL, ...options };
  checkRange('recall pairs', opts.minPairs, opts.maxPairs);
  const largest = Math.max(opts.maxPairs, ...opts.evalPairs);
  if (opts.keys < largest) {
    throw new Error(`recall: ${largest} pairs need at least ${largest} distinct keys (got keys=${opts.keys}).`);
  }
  if (opts.values < 2) throw new Error(`recall: values must be >= 2 (got ${opts.values}).`);
  for (const p of opts.evalPairs) checkRange('recall eval pairs', p, p);

  const rng = makeRng(deriveSeed(seed, 'recall/eval'));
  const evalSets: Record<string, Sample[]> = {};
  const seen = new Set<string>();
  for (const pairs of opts.evalPairs) {
    evalSets[`pairs=${pairs}`] = Array.from({ length: opts.evalSize }, () => {
      const s = recallSample(rng, pairs, opts);
      seen.add(s.tokens.join(','));
      return s;
    });
  }
  return {
    name: 'associative-recall',
    vocabSize: opts.keys + opts.values,
    numClasses: opts.values,
    metric: 'accuracy',
    trainBatch(trainRng: Rng, batchSize: number): Sample[] {
      // One number of pairs per batch, so a batch needs no padding.
      const pairs = randInt(trainRng, opts.minPairs, opts.maxPairs);
      return Array.from({ length: batchSize }, () => {
        for (;;) {
          const s = recallSample(trainRng, pairs, opts);
          if (!seen.has(s.tokens.join(','))) return s;
        }
      });
    },
    evalSets: () => evalSets,
  };
}
