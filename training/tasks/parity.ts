/**
 * Parity (Delétang et al. 2023, "Neural Networks and the Chomsky Hierarchy", regular task `parity_check`):
 * a uniformly random bit string; the class is the number of 1s modulo 2. We append an end token and predict the
 * class there.
 */
import { makeRng, deriveSeed, type Rng } from '../../memory/random.js';
import {
  checkLengthSplit,
  classificationSample,
  DEFAULT_LENGTH_SPLIT,
  randInt,
  type LengthSplit,
  type Sample,
  type SequenceTask,
} from './index.js';

/** Tokens: 0 and 1 are the bits, 2 the end token. */
const END = 2;

/** The class of a bit string: the count of 1s modulo 2. */
export function parityLabel(bits: readonly number[]): number {
  let ones = 0;
  for (const b of bits) ones += b;
  return ones % 2;
}

function paritySample(rng: () => number, length: number): Sample {
  const bits = Array.from({ length }, () => (rng() < 0.5 ? 0 : 1));
  return classificationSample(bits, END, parityLabel(bits));
}

/**
 * The parity task. Each training batch has one length drawn uniformly from the train range (as Delétang et
 * al.), so batches need no padding; the test set draws lengths uniformly from the disjoint test range.
 */
export function makeParityTask(seed: number | string, split: LengthSplit = DEFAULT_LENGTH_SPLIT): SequenceTask {
  checkLengthSplit(split);
  let cache: Record<string, Sample[]> | undefined;
  return {
    name: 'parity',
    vocabSize: 3,
    numClasses: 2,
    metric: 'accuracy',
    trainBatch(rng: Rng, batchSize: number): Sample[] {
      const length = randInt(rng, split.trainMin, split.trainMax);
      return Array.from({ length: batchSize }, () => paritySample(rng, length));
    },
    evalSets() {
      if (!cache) {
        const rng = makeRng(deriveSeed(seed, 'parity/test'));
        const draw = (lo: number, hi: number) =>
          Array.from({ length: split.testSize }, () => paritySample(rng, randInt(rng, lo, hi)));
        cache = { test: draw(split.testMin, split.testMax), valid: draw(split.trainMin, split.trainMax) };
      }
      return cache;
    },
  };
}
