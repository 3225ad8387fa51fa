/**
 * What every supervised sequence task shares: samples, the task interface, and the length-generalisation split
 * and builder used by the formal-language tasks. Tasks import this module; `index.ts` imports the tasks.
 */
import { deriveSeed, makeRng, type Rng } from '../../../util/random.js';

/** Marks a position that carries no label (no loss, not scored). */
export const NO_LABEL = -1;

/** One sequence: input token ids and, per position, a class id or `NO_LABEL`. */
export interface Sample {
  tokens: number[];
  labels: number[];
}

/** How a task is scored: classification accuracy (normalised so chance is 0) or bits per character. */
export type TaskMetric = 'accuracy' | 'bpc';

/** A supervised sequence task. */
export interface SequenceTask {
  readonly name: string;
  /** Input token ids are in [0, vocabSize). */
  readonly vocabSize: number;
  /** Labels are in [0, numClasses). */
  readonly numClasses: number;
  readonly metric: TaskMetric;
  /** A fresh training batch (never overlapping the evaluation sets). */
  trainBatch(rng: Rng, batchSize: number): Sample[];
  /** Fixed evaluation groups, by name (e.g. `test`, `pairs=16`); deterministic for the task's seed. */
  evalSets(): Record<string, Sample[]>;
}

/** An integer uniform in [lo, hi] (inclusive). */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Checks an inclusive integer range and says how to fix it. */
export function checkRange(what: string, lo: number, hi: number, min = 1): void {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < min || hi < lo) {
    throw new Error(`${what}: invalid range ${lo}..${hi} (need integers with ${min} <= min <= max).`);
  }
}

/** A labelled classification sample: the tokens, an end token, and the label at the end token only. */
export function classificationSample(tokens: number[], endToken: number, label: number): Sample {
  const labels = new Array<number>(tokens.length + 1).fill(NO_LABEL);
  labels[tokens.length] = label;
  return { tokens: [...tokens, endToken], labels };
}

/**
 * Length-generalisation splits of the formal-language tasks: train on lengths 3–39, test on 40–256 (the seed
 * paper's "train 3–40, test 40–256" with the shared length 40 assigned to test only, so no length — hence no
 * sequence — is in both).
 */
export interface LengthSplit {
  trainMin: number;
  trainMax: number;
  testMin: number;
  testMax: number;
  /** Number of test sequences (lengths uniform over the test range); as many validation sequences are drawn
   * from the train range (in-distribution fit, which may repeat short training strings). */
  testSize: number;
}

export const DEFAULT_LENGTH_SPLIT: LengthSplit = { trainMin: 3, trainMax: 39, testMin: 40, testMax: 256, testSize: 512 };

export function checkLengthSplit(split: LengthSplit): void {
  checkRange('train lengths', split.trainMin, split.trainMax);
  checkRange('test lengths', split.testMin, split.testMax);
  if (split.testMin <= split.trainMax) {
    throw new Error(
      `Test lengths (${split.testMin}..${split.testMax}) overlap train lengths (${split.trainMin}..${split.trainMax}): ` +
        'make the test minimum larger than the train maximum.',
    );
  }
  if (!Number.isInteger(split.testSize) || split.testSize < 1) throw new Error('testSize must be a positive integer.');
}

/** What distinguishes one length-generalisation task (Delétang et al.) from another. */
export interface LengthTaskSpec {
  name: string;
  vocabSize: number;
  numClasses: number;
  /** A length in [lo, hi] that the task can make a sample of. */
  drawLength: (rng: () => number, lo: number, hi: number) => number;
  sample: (rng: () => number, length: number) => Sample;
}

/**
 * A classification task trained on short sequences and tested on longer ones: each training batch has one
 * length drawn from the train range (as Delétang et al., so batches need no padding); the test set draws its
 * lengths from the disjoint test range, and `valid` from the train range (in-distribution fit).
 */
export function lengthGeneralisationTask(spec: LengthTaskSpec, seed: number | string, split: LengthSplit): SequenceTask {
  checkLengthSplit(split);
  let cache: Record<string, Sample[]> | undefined;
  return {
    name: spec.name,
    vocabSize: spec.vocabSize,
    numClasses: spec.numClasses,
    metric: 'accuracy',
    trainBatch(rng: Rng, batchSize: number): Sample[] {
      const length = spec.drawLength(rng, split.trainMin, split.trainMax);
      return Array.from({ length: batchSize }, () => spec.sample(rng, length));
    },
    evalSets() {
      if (!cache) {
        const rng = makeRng(deriveSeed(seed, `${spec.name}/test`));
        const draw = (lo: number, hi: number) =>
          Array.from({ length: split.testSize }, () => spec.sample(rng, spec.drawLength(rng, lo, hi)));
        cache = { test: draw(split.testMin, split.testMax), valid: draw(split.trainMin, split.trainMax) };
      }
      return cache;
    },
  };
}

