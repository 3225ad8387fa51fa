/**
 * POPGym's HigherLower: cards of `numDecks` shuffled decks are dealt one per step; seeing the current card's
 * rank, the agent guesses whether the next card ranks higher or lower. Counting the cards already dealt helps.
 *
 * - Observation: Discrete(13), the rank of the current card (ace low).
 * - Action: Discrete(2): 0 = higher, 1 = lower.
 * - Reward: +1/(52·numDecks) for a right guess, −1/(52·numDecks) for a wrong one, 0 when the ranks tie.
 * - Episode: 52·numDecks − 1 steps, then terminated.
 * - Difficulty (numDecks): Easy 1, Medium 2, Hard 3 → 51 / 103 / 155 steps.
 * - Info: at reset, `card`: the first card as POPGym's `[suit, rank]` labels (e.g. `['d', '10']`); none at steps.
 */
import { Discrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { Deck, rankOf, cardLabel, cardSquare, popgymCardLabels } from './deck.js';
import { EMPTY_SQUARE, PopgymGameEnv, intOption, type Difficulty, type ReturnBounds } from './game-env.js';

export interface HigherLowerOptions {
  /** Decks shuffled together (episode length 52·numDecks − 1). */
  numDecks?: number;
}

export const HIGHER_LOWER_LEVELS: Readonly<Record<Difficulty, Required<HigherLowerOptions>>> = {
  Easy: { numDecks: 1 },
  Medium: { numDecks: 2 },
  Hard: { numDecks: 3 },
};

export const HIGHER = 0;
export const LOWER = 1;

const countingReturns = new Map<number, number>();

/**
 * The expected return of perfect card counting: guess whichever of higher/lower more of the unseen cards are.
 * Guesses don't change the deal, so this greedy policy is the best any memory can do. Given the current rank r,
 * the R cards left are a uniform R-subset of the other 52d − 1 cards, so the counts H (higher) and L (lower)
 * among them are hypergeometric and the step's expected reward is E|H − L| / R / (52d); summed over
 * R = 52d − 1 … 1 and averaged over r. Exact up to float rounding; memoised per d.
 */
export function countingReturn(numDecks: number): number {
  const cached = countingReturns.get(numDecks);
  if (cached !== undefined) return cached;
  const n = 52 * numDecks;
  const others = n - 1;
  const logFact = [0];
  for (let i = 1; i <= n; i++) logFact.push(logFact[i - 1] + Math.log(i));
  const logChoose = (a: number, b: number) => logFact[a] - logFact[b] - logFact[a - b];
  const ties = 4 * numDecks - 1;
  let total = 0;
  for (let r = 0; r < 13; r++) {
    const higher = 4 * numDecks * (12 - r);
    const lower = 4 * numDecks * r;
    for (let R = 1; R <= others; R++) {
      let expected = 0;
      for (let h = 0; h <= Math.min(higher, R); h++)
        for (let l = Math.max(0, R - h - ties); l <= Math.min(lower, R - h); l++)
          expected += Math.exp(logChoose(higher, h) + logChoose(lower, l) + logChoose(ties, R - h - l) - logChoose(others, R)) * Math.abs(h - l);
      total += expected / R;
    }
  }
  const value = total / 13 / n;
  countingReturns.set(numDecks, value);
  return value;
}

export class HigherLower extends PopgymGameEnv<number, number> {
  readonly observationSpace = new Discrete(13);
  readonly actionSpace = new Discrete(2);
  readonly numDecks: number;
  readonly maxEpisodeLength: number;
  /**
   * Optimal is perfect card counting's expected return (`countingReturn`: 0.528 / 0.516 / 0.511 for d = 1/2/3),
   * not an oracle's: one that sees the next card is right on every non-tie, 12/13, which no memory reaches.
   * A random guess scores 0 in expectation. Computed on first use (the sum grows as d³).
   */
  get returnBounds(): ReturnBounds {
    return {
      optimal: countingReturn(this.numDecks),
      random: 0,
      reachable: true,
      source: { optimal: 'analytic: perfect card counting, countingReturn', random: 'analytic: a random guess scores 0 in expectation' },
    };
  }
  private readonly deck: Deck;
  private readonly rewardScale: number;
  private current = 0;

  constructor(options: HigherLowerOptions = {}) {
    super();
    this.numDecks = intOption('HigherLower', 'numDecks', options.numDecks, 1, 1);
    this.deck = new Deck(this.numDecks);
    this.maxEpisodeLength = this.deck.numCards - 1;
    this.rewardScale = 1 / this.deck.numCards;
  }

  protected resetEnv(): ResetResult<number> {
    this.deck.shuffle(this.rng);
    this.current = this.deck.draw();
    return { obs: rankOf(this.current), info: { card: popgymCardLabels(this.current) } };
  }

  protected stepEnv(action: number): StepResult<number> {
    const terminated = this.deck.remaining === 1;
    const now = rankOf(this.current);
    this.current = this.deck.draw();
    const next = rankOf(this.current);
    const reward = next === now ? 0 : (next > now) === (action === HIGHER) ? this.rewardScale : -this.rewardScale;
    return { obs: next, reward, terminated, truncated: false, info: {} };
  }

  /** The next card (hidden state; for scripted tests and rendering, never observed). */
  peekNext(): number {
    return this.deck.card(this.deck.dealtCount);
  }

  ansi(): string {
    return `HigherLower  dealt ${this.deck.dealtCount}/${this.deck.numCards}  current ${cardLabel(this.current)}`;
  }

  /** The current card, then the next one on grey (hidden state, for people). */
  squares(): Square[][] {
    const next = this.deck.remaining > 0 ? cardSquare(this.peekNext(), EMPTY_SQUARE.fill) : EMPTY_SQUARE;
    return [[cardSquare(this.current), next]];
  }
}
