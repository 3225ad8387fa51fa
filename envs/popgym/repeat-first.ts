/**
 * POPGym's RepeatFirst: cards are dealt one per step from `numDecks` shuffled decks; the agent sees each
 * card's suit and must answer, at every step, the suit of the first card of the episode.
 *
 * - Observation: Discrete(4), the suit of the card just dealt (the first observation is the card to remember).
 * - Action: Discrete(4), a suit.
 * - Reward: ±1/(52·numDecks − 1) per step for a right/wrong answer, so a perfect memory earns exactly 1.
 * - Episode: 52·numDecks − 1 steps, then terminated.
 * - Difficulty (numDecks): Easy 1, Medium 8, Hard 16 → 51 / 415 / 831 steps.
 */
import { Discrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { Deck, suitOf, cardLabel, cardSquare, valueLabel } from './deck.js';
import { HIGHLIGHT, PopgymGameEnv, SUIT_RECALL_BOUNDS, intOption, type Difficulty, type ReturnBounds } from './game-env.js';

export interface RepeatFirstOptions {
  /** Decks shuffled together (episode length 52·numDecks − 1). */
  numDecks?: number;
}

export const REPEAT_FIRST_LEVELS: Readonly<Record<Difficulty, Required<RepeatFirstOptions>>> = {
  Easy: { numDecks: 1 },
  Medium: { numDecks: 8 },
  Hard: { numDecks: 16 },
};

export class RepeatFirst extends PopgymGameEnv<number, number> {
  readonly observationSpace = new Discrete(4);
  readonly actionSpace = new Discrete(4);
  readonly numDecks: number;
  readonly maxEpisodeLength: number;
  readonly returnBounds: ReturnBounds = SUIT_RECALL_BOUNDS;
  private readonly deck: Deck;
  private readonly rewardScale: number;

  constructor(options: RepeatFirstOptions = {}) {
    super();
    this.numDecks = intOption('RepeatFirst', 'numDecks', options.numDecks, 1, 1);
    this.deck = new Deck(this.numDecks);
    this.maxEpisodeLength = this.deck.numCards - 1;
    this.rewardScale = 1 / (this.deck.numCards - 1);
  }

  protected resetEnv(): ResetResult<number> {
    this.deck.shuffle(this.rng);
    return { obs: suitOf(this.deck.draw()), info: {} };
  }

  protected stepEnv(action: number): StepResult<number> {
    const reward = action === this.target() ? this.rewardScale : -this.rewardScale;
    const terminated = this.deck.remaining === 1;
    return { obs: suitOf(this.deck.draw()), reward, terminated, truncated: false, info: {} };
  }

  /** The suit to answer: the first card's. */
  target(): number {
    return suitOf(this.deck.card(0));
  }

  ansi(): string {
    const seen = this.deck.dealtCount;
    const last = seen > 0 ? cardLabel(this.deck.card(seen - 1)) : '-';
    return `RepeatFirst  dealt ${seen}/${this.deck.numCards}  last ${last}  answer: ${valueLabel(this.target(), 'suits')}`;
  }

  /** The first card (the answer, highlighted), then the card just dealt. */
  squares(): Square[][] {
    return [[cardSquare(this.deck.card(0), HIGHLIGHT), cardSquare(this.deck.card(this.deck.dealtCount - 1))]];
  }
}
