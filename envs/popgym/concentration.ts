/**
 * POPGym's Concentration (memory, pairs): the cards of `numDecks` shuffled decks lie face down; each turn the
 * agent flips two, one per step. If their values (colour or rank) match they stay face up, otherwise they are
 * turned back after being shown.
 *
 * - Observation: MultiDiscrete(n entries of v + 1 values), n = 52·numDecks table positions: a face-up or
 *   just-flipped card shows its value in [0, v), a face-down card shows v (v = 2 colours or 13 ranks).
 * - Action: Discrete(n), the position to flip.
 * - Reward: +1/(n/2) for a matching pair (all pairs matched → 1); −2/L for a non-matching pair (flipping the
 *   same position twice included); flipping a card that is already face up costs −1/L per card flipped this
 *   turn and ends the turn.
 * - Episode: terminated when every card is face up; truncated after L = ⌈2n − n/(2n − 1)⌉ steps (POPGym's
 *   estimate of a perfect player's expected flips).
 * - Difficulty (numDecks, field): Easy (1, colours), Medium (2, colours), Hard (1, ranks) → L = 104 / 208 / 104.
 */
import { Discrete, MultiDiscrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { Deck, DECK_SIZE, FIELD_SIZE, cardSquare, cardValue, valueLabel } from './deck.js';
import { CARD_BACK, HIGHLIGHT, PopgymGameEnv, intOption, rowsOf, choiceOption, type Difficulty, type ReturnBounds } from './game-env.js';

/** Suits can't be played: 13 cards of a suit leave one unpaired. */
export type ConcentrationField = 'colors' | 'ranks';

export interface ConcentrationOptions {
  numDecks?: number;
  /** What makes a pair: 'colors' or 'ranks'. */
  deckType?: ConcentrationField;
}

export const CONCENTRATION_LEVELS: Readonly<Record<Difficulty, Required<ConcentrationOptions>>> = {
  Easy: { numDecks: 1, deckType: 'colors' },
  Medium: { numDecks: 2, deckType: 'colors' },
  Hard: { numDecks: 1, deckType: 'ranks' },
};

/** Monte Carlo returns of the uniform random policy (see `returnBounds`), keyed by `${numDecks}-${deckType}`. */
const RANDOM_RETURNS: Readonly<Record<string, number>> = { '1-colors': -0.192, '2-colors': -0.186, '1-ranks': -0.833 };
const RANDOM_SOURCE = 'measured: 10⁴ uniform-random episodes, SE ≤ 0.003; re-checked in test/popgym-games.test.ts';

export class Concentration extends PopgymGameEnv<Int32Array, number> {
  readonly observationSpace: MultiDiscrete;
  readonly actionSpace: Discrete;
  override readonly obsRequiresPrevAction = true;
  readonly numDecks: number;
  readonly deckType: ConcentrationField;
  readonly maxEpisodeLength: number;
  /**
   * Optimal is an oracle bound, not reachable (a perfect memory still has to turn unseen cards): flipping the
   * pairs in order returns 1. Random is a Monte Carlo estimate of the uniform random policy on this port (10⁴ episodes,
   * standard error ≤ 0.003); NaN for parameters other than the three levels.
   */
  readonly returnBounds: ReturnBounds;
  private readonly deck: Deck;
  private readonly faceDown: number;
  /** What the agent sees: a value per position, `faceDown` where hidden. */
  private readonly view: Int32Array;
  private readonly faceUp: Uint8Array;
  private readonly matchReward: number;
  private readonly failReward: number;
  /** Position flipped first this turn, or -1. */
  private first = -1;
  private steps = 0;
  private matched = 0;

  constructor(options: ConcentrationOptions = {}) {
    super();
    this.numDecks = intOption('Concentration', 'numDecks', options.numDecks, 1, 1);
    this.deckType = choiceOption('Concentration', 'deckType', options.deckType, 'ranks', ['colors', 'ranks']);
    const n = DECK_SIZE * this.numDecks;
    this.deck = new Deck(this.numDecks);
    this.faceDown = FIELD_SIZE[this.deckType];
    this.observationSpace = new MultiDiscrete(new Array<number>(n).fill(this.faceDown + 1));
    this.actionSpace = new Discrete(n);
    this.maxEpisodeLength = Math.ceil(2 * n - n / (2 * n - 1));
    this.matchReward = 1 / (n / 2);
    this.failReward = -1 / this.maxEpisodeLength;
    this.view = new Int32Array(n);
    this.faceUp = new Uint8Array(n);
    this.returnBounds = {
      optimal: 1,
      random: RANDOM_RETURNS[`${this.numDecks}-${this.deckType}`] ?? NaN,
      reachable: false,
      source: { optimal: 'oracle: flips known pairs in order', random: RANDOM_SOURCE },
    };
  }

  protected resetEnv(): ResetResult<Int32Array> {
    this.deck.shuffle(this.rng);
    this.view.fill(this.faceDown);
    this.faceUp.fill(0);
    this.first = -1;
    this.steps = 0;
    this.matched = 0;
    return { obs: this.view.slice(), info: {} };
  }

  protected stepEnv(pos: number): StepResult<Int32Array> {
    this.steps++;
    const truncated = this.steps >= this.maxEpisodeLength;
    this.view[pos] = this.valueAt(pos);
    const obs = this.view.slice(); // shows this turn's cards before they are turned back
    let reward = 0;
    let terminated = false;
    const first = this.first;
    if (this.faceUp[pos]) {
      // The first card of a turn is never face up (that turn would have ended), so only `pos` can be.
      reward = this.failReward * (first >= 0 ? 2 : 1);
      this.endTurn(pos);
    } else if (first >= 0) {
      if (first !== pos && this.valueAt(first) === this.valueAt(pos)) {
        reward = this.matchReward;
        this.faceUp[first] = this.faceUp[pos] = 1;
        this.matched += 2;
        terminated = this.matched === this.deck.numCards;
      } else reward = 2 * this.failReward;
      this.endTurn(pos);
    } else this.first = pos;
    return { obs, reward, terminated, truncated, info: {} };
  }

  /** The value of the card at table position `pos` (hidden state; for scripted tests, never observed). */
  valueAt(pos: number): number {
    return cardValue(this.deck.card(pos), this.deckType);
  }

  /** Turns this turn's unmatched cards back face down. */
  private endTurn(pos: number): void {
    if (!this.faceUp[pos]) this.view[pos] = this.faceDown;
    if (this.first >= 0 && !this.faceUp[this.first]) this.view[this.first] = this.faceDown;
    this.first = -1;
  }

  /** Rows of 13 positions: value if face up or flipped this turn, '?' if face down. */
  ansi(): string {
    const rows: string[] = [`Concentration (${this.deckType})  step ${this.steps}/${this.maxEpisodeLength}  matched ${this.matched}/${this.deck.numCards}`];
    for (let r = 0; r < this.view.length; r += 13) {
      const cells = Array.from(this.view.subarray(r, r + 13), (v) => (v === this.faceDown ? '?' : valueLabel(v, this.deckType)));
      rows.push(cells.map((c) => c.padStart(2)).join(' '));
    }
    return rows.join('\n');
  }

  /** The table, 13 to a row: matched cards face up, the card flipped this turn highlighted, the rest face down. */
  squares(): Square[][] {
    const cards = Array.from(this.view, (v, pos) =>
      v === this.faceDown ? CARD_BACK : cardSquare(this.deck.card(pos), this.faceUp[pos] ? undefined : HIGHLIGHT),
    );
    return rowsOf(cards, 13);
  }
}
