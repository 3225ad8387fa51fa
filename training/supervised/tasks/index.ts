/**
 * Supervised sequence tasks for benchmarking memory cores as plain sequence models (the secondary benchmarks of
 * the seed paper): formal-language tasks, associative recall and character-level language modelling.
 *
 * A task produces token sequences with a class label (or none) per position; the trainer in
 * `training/supervised/trainer.ts` embeds the tokens, runs a core and scores the labelled positions.
 */
export * from './common.js';
import { DEFAULT_LENGTH_SPLIT, type LengthSplit, type SequenceTask } from './common.js';

export { makeParityTask, parityLabel } from './parity.js';
export { makeModularArithmeticTask, evaluateModular } from './modular-arithmetic.js';
export { makeRecallTask } from './associative-recall.js';
export { makeCharLmTask } from './char-lm.js';

import { makeParityTask as parity } from './parity.js';
import { makeModularArithmeticTask as modular } from './modular-arithmetic.js';
import { makeRecallTask as recall, type RecallOptions } from './associative-recall.js';
import { makeCharLmTask as charLm, type CharLmOptions } from './char-lm.js';

export const TASK_NAMES = ['parity', 'modular-arithmetic', 'associative-recall', 'char-lm'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/** Builds a task by name; `options` are the task's own (length split, recall sizes, LM context). */
export function makeTask(name: string, seed: number | string, options: Record<string, unknown> = {}): SequenceTask {
  switch (name) {
    case 'parity':
      return parity(seed, { ...DEFAULT_LENGTH_SPLIT, ...(options as Partial<LengthSplit>) });
    case 'modular-arithmetic':
      return modular(seed, { ...DEFAULT_LENGTH_SPLIT, ...(options as Partial<LengthSplit>) });
    case 'associative-recall':
      return recall(seed, options as Partial<RecallOptions>);
    case 'char-lm':
      return charLm(options as Partial<CharLmOptions>);
    default:
      throw new Error(`Unknown task '${name}'. Choose one of: ${TASK_NAMES.join(', ')}.`);
  }
}
