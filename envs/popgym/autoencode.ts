/**
 * POPGym's Autoencode (Simon, backwards): in a watch phase the agent is shown every card of `numDecks`
 * shuffled decks, one suit per step; in the recall phase it must answer the suits in reverse order.
 *
 * - Observation: Tuple(Discrete(2) mode, Discrete(4) suit). Mode 1 = watching, 0 = recall. The last card
 *   shown already carries mode 0 (it says "recall starts next step"); during recall the observation is (0, 0).
 * - Action: Discrete(4), a suit; ignored while watching.
 * - Reward: 0 while watching, ±1/(52·numDecks) per recall step, so a perfect memory earns exactly 1.
 * - Episode: 52·numDecks − 1 watch steps + 52·numDecks recall steps = 2·52·numDecks − 1, then terminated.
 * - Difficulty (numDecks): Easy 1, Medium 2, Hard 3 → 103 / 207 / 311 steps.
 */
import { Discrete, Tuple } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { Deck, suitOf, cardLabel, cardSquare, valueLabel } from './deck.js';
import { CARD_BACK, EMPTY_SQUARE, HIGHLIGHT, PopgymGameEnv, SUIT_RECALL_BOUNDS, intOption, rowsOf, type Difficulty, type ReturnBounds } from './game-env.js';

export interface AutoencodeOptions {
  /** Decks to watch and recall. */
  numDecks?: number;
}

export const AUTOENCODE_LEVELS: Readonly<Record<Difficulty, Required<AutoencodeOptions>>> = {
  Easy: { numDecks: 1 },
  Medium: { numDecks: 2 },
  Hard: { numDecks: 3 },
};

const RECALL = 0;
const WATCH = 1;

export class Autoencode extends PopgymGameEnv<unknown[], number> {
  readonly observationSpace = new Tuple([new Discrete(2), new Discrete(4)]);
  readonly actionSpace = new Discrete(4);
  readonly numDecks: number;
  readonly maxEpisodeLength: number;
  readonly returnBounds: ReturnBounds = SUIT_RECALL_BOUNDS;
  private readonly deck: Deck;
  private readonly rewardScale: number;
  private recalled = 0;

  constructor(options: AutoencodeOptions = {}) {
    super();
    this.numDecks = intOption('Autoencode', 'numDecks', options.numDecks, 1, 1);
    this.deck = new Deck(this.numDecks);
    this.maxEpisodeLength = 2 * this.deck.numCards - 1;
    this.rewardScale = 1 / this.deck.numCards;
  }

  protected resetEnv(): ResetResult<unknown[]> {
    this.deck.shuffle(this.rng);
    this.recalled = 0;
    return { obs: [WATCH, suitOf(this.deck.draw())], info: {} };
  }

  protected stepEnv(action: number): StepResult<unknown[]> {
    if (this.deck.remaining > 0) {
      const card = this.deck.draw();
      const mode = this.deck.remaining > 0 ? WATCH : RECALL;
      return { obs: [mode, suitOf(card)], reward: 0, terminated: false, truncated: false, info: {} };
    }
    const reward = action === this.target() ? this.rewardScale : -this.rewardScale;
    this.recalled++;
    const terminated = this.recalled === this.deck.numCards;
    return { obs: [RECALL, 0], reward, terminated, truncated: false, info: {} };
  }

  /** The suit to answer now, or -1 while watching. */
  target(): number {
    if (this.deck.remaining > 0 || this.recalled >= this.deck.numCards) return -1;
    return suitOf(this.deck.card(this.deck.numCards - 1 - this.recalled));
  }

  ansi(): string {
    const n = this.deck.numCards;
    if (this.deck.remaining > 0) {
      const seen = this.deck.dealtCount;
      return `Autoencode  watching ${seen}/${n}  shown ${seen > 0 ? cardLabel(this.deck.card(seen - 1)) : '-'}`;
    }
    const t = this.target();
    return `Autoencode  recalling ${this.recalled}/${n}  answer: ${t < 0 ? '(done)' : valueLabel(t, 'suits')}`;
  }

  /** Every card in deal order, 13 to a row: shown ones face up, recalled ones face down, the answer highlighted. */
  squares(): Square[][] {
    const n = this.deck.numCards;
    const answer = this.target() < 0 ? -1 : n - 1 - this.recalled;
    const cards = Array.from({ length: n }, (_, i) =>
      i >= this.deck.dealtCount ? EMPTY_SQUARE : i > n - 1 - this.recalled ? CARD_BACK : cardSquare(this.deck.card(i), i === answer ? HIGHLIGHT : undefined),
    );
    return rowsOf(cards, 13);
  }
}
