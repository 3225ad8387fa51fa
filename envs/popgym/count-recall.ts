/**
 * POPGym's CountRecall: each step deals a card from a value shoe and a query card from a second, independent
 * shoe; the agent must answer, at the next step, how many cards with the query's value (colour, suit or rank)
 * it has been dealt so far, the card shown with the query included.
 *
 * - Observation: MultiDiscrete([v, v]) = [dealt card's value, query's value], v = distinct values of the field.
 * - Action: Discrete(maxCount + 1), a count in [0, maxCount], maxCount = 52·numDecks / v.
 * - Reward: ±1/(52·numDecks − 1) for a right/wrong count, so perfect counting earns exactly 1.
 * - Episode: 52·numDecks − 1 steps (the value shoe runs out), then terminated.
 * - Difficulty (numDecks, field): Easy (1, colours), Medium (2, suits), Hard (4, ranks) → 51 / 103 / 207 steps.
 * - Info (reset and steps): `counts`, how often each value has been dealt, the card just shown included (hidden
 *   state for logging). A snapshot: POPGym hands out its live array, so its stored infos all end up equal.
 *
 * POPGym's `error_clamp` argument is accepted by it but never used, so it is left out here.
 */
import { Discrete, MultiDiscrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { Deck, FIELD_SIZE, cardValue, valueLabel, valueSquare, type CardField } from './deck.js';
import { HIGHLIGHT, PopgymGameEnv, intOption, choiceOption, type Difficulty, type ReturnBounds } from './game-env.js';

export interface CountRecallOptions {
  /** Decks per shoe (episode length 52·numDecks − 1). */
  numDecks?: number;
  /** What is counted: 'colors', 'suits' or 'ranks'. */
  deckType?: CardField;
}

export const COUNT_RECALL_LEVELS: Readonly<Record<Difficulty, Required<CountRecallOptions>>> = {
  Easy: { numDecks: 1, deckType: 'colors' },
  Medium: { numDecks: 2, deckType: 'suits' },
  Hard: { numDecks: 4, deckType: 'ranks' },
};

export class CountRecall extends PopgymGameEnv<Int32Array, number> {
  readonly observationSpace: MultiDiscrete;
  readonly actionSpace: Discrete;
  readonly numDecks: number;
  readonly deckType: CardField;
  /** Cards of one value in a shoe: the largest possible count. */
  readonly maxCount: number;
  readonly maxEpisodeLength: number;
  /**
   * Perfect counting: 1. A uniformly random count is right with probability 1/(maxCount + 1), so the random
   * return is 2/(maxCount + 1) − 1 (−0.926 for Easy and Medium, −0.882 for Hard).
   */
  readonly returnBounds: ReturnBounds;
  private readonly values: Deck;
  private readonly queries: Deck;
  private readonly counts: Int32Array;
  private readonly rewardScale: number;
  private dealt = 0;
  private query = 0;

  constructor(options: CountRecallOptions = {}) {
    super();
    this.numDecks = intOption('CountRecall', 'numDecks', options.numDecks, 1, 1);
    this.deckType = choiceOption('CountRecall', 'deckType', options.deckType, 'colors', ['colors', 'suits', 'ranks']);
    const distinct = FIELD_SIZE[this.deckType];
    this.values = new Deck(this.numDecks);
    this.queries = new Deck(this.numDecks);
    this.maxCount = this.values.numCards / distinct;
    this.observationSpace = new MultiDiscrete([distinct, distinct]);
    this.actionSpace = new Discrete(this.maxCount + 1);
    this.maxEpisodeLength = this.values.numCards - 1;
    this.rewardScale = 1 / this.maxEpisodeLength;
    this.counts = new Int32Array(distinct);
    this.returnBounds = {
      optimal: 1,
      random: 2 / (this.maxCount + 1) - 1,
      reachable: true,
      source: { optimal: 'analytic: perfect counting answers every query', random: 'analytic: a random count is right 1/(maxCount + 1) of the time' },
    };
  }

  protected resetEnv(): ResetResult<Int32Array> {
    this.values.shuffle(this.rng);
    this.queries.shuffle(this.rng);
    this.counts.fill(0);
    const obs = this.deal();
    return { obs, info: { counts: Array.from(this.counts) } };
  }

  protected stepEnv(action: number): StepResult<Int32Array> {
    const reward = action === this.target() ? this.rewardScale : -this.rewardScale;
    const obs = this.deal();
    return { obs, reward, terminated: this.values.remaining === 0, truncated: false, info: { counts: Array.from(this.counts) } };
  }

  /** The right answer now: how often the current query's value has been dealt. */
  target(): number {
    return this.counts[this.query];
  }

  private deal(): Int32Array {
    this.dealt = cardValue(this.values.draw(), this.deckType);
    this.query = cardValue(this.queries.draw(), this.deckType);
    this.counts[this.dealt]++;
    return Int32Array.of(this.dealt, this.query);
  }

  ansi(): string {
    const t = this.deckType;
    return (
      `CountRecall (${t})  step ${this.values.dealtCount - 1}/${this.maxEpisodeLength}  ` +
      `dealt ${valueLabel(this.dealt, t)}, count of ${valueLabel(this.query, t)}? answer: ${this.target()}`
    );
  }

  /** A column per value: the value (the one just dealt highlighted) over its count (the query's, the answer, highlighted). */
  squares(): Square[][] {
    const values = Array.from(this.counts, (_, v) => valueSquare(v, this.deckType, v === this.dealt ? HIGHLIGHT : undefined));
    const counts = Array.from(this.counts, (c, v) => ({ fill: v === this.query ? HIGHLIGHT : ([250, 250, 240] as const), mark: String(c) }));
    return [values, counts];
  }
}
