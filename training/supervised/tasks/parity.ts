/**
 * Parity (Delétang et al. 2023, "Neural Networks and the Chomsky Hierarchy", regular task `parity_check`):
 * a uniformly random bit string; the class is the number of 1s modulo 2. We append an end token and predict the
 * class there.
 */
import {
  classificationSample,
  DEFAULT_LENGTH_SPLIT,
  lengthGeneralisationTask,
  randInt,
  type LengthSplit,
  type Sample,
  type SequenceTask,
} from './common.js';

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

/** The parity task: bit strings of the train lengths, tested on the disjoint test lengths. */
export function makeParityTask(seed: number | string, split: LengthSplit = DEFAULT_LENGTH_SPLIT): SequenceTask {
  return lengthGeneralisationTask(
    { name: 'parity', vocabSize: 3, numClasses: 2, drawLength: randInt, sample: paritySample },
    seed,
    split,
  );
}
