/**
 * POPGym's RepeatPrevious: cards are dealt one per step from `numDecks` shuffled decks; the agent sees each
 * card's suit and must answer, at every step, the suit of the card seen k−1 steps before the current one
 * (k = 1 is the card just seen, matching POPGym's `hand[-k]`).
 *
 * - Observation: Discrete(4), the suit of the card just dealt.
 * - Action: Discrete(4), a suit.
 * - Reward: ±1/(52·numDecks − k) for a right/wrong answer, 0 for the first k−1 steps (nothing to recall yet),
 *   so a perfect memory earns exactly 1.
 * - Episode: 52·numDecks − 1 steps (every card dealt), then terminated.
 * - Difficulty (numDecks, k): Easy (1, 4), Medium (2, 32), Hard (3, 64) → 51 / 103 / 155 steps.
 */
import { Discrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { Deck, DECK_SIZE, suitOf, cardLabel, cardSquare, valueLabel } from './deck.js';
import { EMPTY_SQUARE, HIGHLIGHT, PopgymGameEnv, SUIT_RECALL_BOUNDS, intOption, rowsOf, type Difficulty, type ReturnBounds } from './game-env.js';

export interface RepeatPreviousOptions {
  /** Decks shuffled together (episode length 52·numDecks − 1). */
  numDecks?: number;
  /** How far back to recall; 1 ≤ k < 52·numDecks. */
  k?: number;
}

export const REPEAT_PREVIOUS_LEVELS: Readonly<Record<Difficulty, Required<RepeatPreviousOptions>>> = {
  Easy: { numDecks: 1, k: 4 },
  Medium: { numDecks: 2, k: 32 },
  Hard: { numDecks: 3, k: 64 },
};

export class RepeatPrevious extends PopgymGameEnv<number, number> {
  readonly observationSpace = new Discrete(4);
  readonly actionSpace = new Discrete(4);
  readonly numDecks: number;
  readonly k: number;
  readonly maxEpisodeLength: number;
  readonly returnBounds: ReturnBounds = SUIT_RECALL_BOUNDS;
  private readonly deck: Deck;
  private readonly rewardScale: number;

  constructor(options: RepeatPreviousOptions = {}) {
    super();
    this.numDecks = intOption('RepeatPrevious', 'numDecks', options.numDecks, 1, 1);
    this.k = intOption('RepeatPrevious', 'k', options.k, 4, 1, DECK_SIZE * this.numDecks - 1);
    this.deck = new Deck(this.numDecks);
    this.maxEpisodeLength = this.deck.numCards - 1;
    this.rewardScale = 1 / (this.deck.numCards - this.k);
  }

  protected resetEnv(): ResetResult<number> {
    this.deck.shuffle(this.rng);
    return { obs: suitOf(this.deck.draw()), info: {} };
  }

  protected stepEnv(action: number): StepResult<number> {
    const seen = this.deck.dealtCount;
    let reward = 0;
    if (seen >= this.k) reward = action === this.target() ? this.rewardScale : -this.rewardScale;
    const terminated = this.deck.remaining === 1;
    return { obs: suitOf(this.deck.draw()), reward, terminated, truncated: false, info: {} };
  }

  /** The suit to answer now, or -1 while fewer than k cards have been seen. */
  target(): number {
    const seen = this.deck.dealtCount;
    return seen >= this.k ? suitOf(this.deck.card(seen - this.k)) : -1;
  }

  ansi(): string {
    const seen = this.deck.dealtCount;
    const recent = [];
    for (let i = Math.max(0, seen - this.k); i < seen; i++) recent.push(cardLabel(this.deck.card(i)));
    const t = this.target();
    return (
      `RepeatPrevious k=${this.k}  dealt ${seen}/${this.deck.numCards}\n` +
      `last ${recent.length}: ${recent.join(' ')}\n` +
      `answer: ${t < 0 ? '(none yet)' : valueLabel(t, 'suits')}`
    );
  }

  /** The last k cards, 13 to a row, oldest first: the oldest is the answer (highlighted) once k have been dealt. */
  squares(): Square[][] {
    const seen = this.deck.dealtCount;
    const slots = Array.from({ length: this.k }, (_, j) => {
      const i = seen - this.k + j;
      return i < 0 ? EMPTY_SQUARE : cardSquare(this.deck.card(i), j === 0 ? HIGHLIGHT : undefined);
    });
    return rowsOf(slots, Math.min(this.k, 13));
  }
}
