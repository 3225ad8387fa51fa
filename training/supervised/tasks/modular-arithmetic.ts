/**
 * Modular arithmetic without brackets (Delétang et al. 2023, regular task `modular_arithmetic`): an expression
 * `n op n op ... n` of numbers in {0..modulus−1} and operators {+, −, ×}, labelled with its value mod `modulus`.
 *
 * Evaluation order, as in Delétang et al.'s reference: ordinary precedence — × binds tighter than + and −, and
 * − negates the term that follows it (so `1 − 2 × 3` = 1 − 6). It is not left-to-right: `1 + 2 × 3` mod 5 is
 * 7 mod 5 = 2, not 9 mod 5 = 4. Expressions have odd length (numbers at even positions, operators at odd ones);
 * the length counts numbers and operators. We append an end token and predict the value there.
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

export const OPERATORS = ['+', '-', '*'] as const;
export type Operator = (typeof OPERATORS)[number];

/**
 * The value of an expression given as numbers and the operators between them (numbers.length − 1 operators),
 * with × before + and −, mod `modulus` (result in [0, modulus)).
 */
export function evaluateModular(numbers: readonly number[], ops: readonly Operator[], modulus: number): number {
  if (ops.length !== numbers.length - 1) throw new Error('evaluateModular: need one operator between each pair of numbers.');
  let total = 0;
  let term = numbers[0];
  let sign = 1;
  for (let i = 0; i < ops.length; i++) {
    const next = numbers[i + 1];
    if (ops[i] === '*') {
      term = (term * next) % modulus;
    } else {
      total = (total + sign * term) % modulus;
      sign = ops[i] === '-' ? -1 : 1;
      term = next;
    }
  }
  total = (total + sign * term) % modulus;
  return ((total % modulus) + modulus) % modulus;
}

/** Odd integer in [lo, hi] chosen uniformly among the odd ones. */
function randOdd(rng: () => number, lo: number, hi: number): number {
  const first = lo % 2 === 1 ? lo : lo + 1;
  const last = hi % 2 === 1 ? hi : hi - 1;
  if (first > last) throw new Error(`No odd length in ${lo}..${hi}: modular arithmetic expressions have odd length.`);
  return first + 2 * randInt(rng, 0, (last - first) / 2);
}

/**
 * The task. Tokens: 0..modulus−1 the numbers, then +, −, ×, then the end token. `length` is an odd token count.
 */
export function makeModularArithmeticTask(
  seed: number | string,
  split: LengthSplit = DEFAULT_LENGTH_SPLIT,
  modulus = 5,
): SequenceTask {
  if (!Number.isInteger(modulus) || modulus < 2) throw new Error(`modulus must be an integer >= 2 (got ${modulus}).`);
  const end = modulus + OPERATORS.length;
  const sample = (rng: () => number, length: number): Sample => {
    const count = (length + 1) / 2;
    const numbers = Array.from({ length: count }, () => randInt(rng, 0, modulus - 1));
    const ops = Array.from({ length: count - 1 }, () => OPERATORS[randInt(rng, 0, OPERATORS.length - 1)]);
    const tokens: number[] = [numbers[0]];
    for (let i = 0; i < ops.length; i++) tokens.push(modulus + OPERATORS.indexOf(ops[i]), numbers[i + 1]);
    return classificationSample(tokens, end, evaluateModular(numbers, ops, modulus));
  };
  return lengthGeneralisationTask(
    { name: 'modular-arithmetic', vocabSize: end + 1, numClasses: modulus, drawLength: randOdd, sample },
    seed,
    split,
  );
}
