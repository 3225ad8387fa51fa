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
import { Deck, rankOf, cardLabel, popgymCardLabels } from './deck.js';
import { PopgymGameEnv, intOption, type Difficulty, type ReturnBounds } from './game-env.js';

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

export class HigherLower extends PopgymGameEnv<number, number> {
  readonly observationSpace = new Discrete(13);
  readonly actionSpace = new Discrete(2);
  readonly numDecks: number;
  readonly maxEpisodeLength: number;
  /**
   * Optimal is an oracle bound (the next card is random even to perfect card counting): one that knows the
   * next card is right on every non-tie. Consecutive cards tie with probability (4d − 1)/(52d − 1), so of the
   * 52d − 1 guesses 48d are expected to be non-ties: 48d/52d = 12/13 at any d. A random guess scores 0 in
   * expectation.
   */
  readonly returnBounds: ReturnBounds = { optimal: 12 / 13, random: 0 };
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

  render(): string {
    return `HigherLower  dealt ${this.deck.dealtCount}/${this.deck.numCards}  current ${cardLabel(this.current)}`;
  }
}
