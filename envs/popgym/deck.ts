/**
 * Playing cards for the POPGym card envs, as POPGym's `core/deck.py`: `numDecks` standard 52-card decks
 * shuffled together and dealt one card at a time.
 *
 * A card is an id in [0, 52·numDecks) laid out as POPGym's: rank ⌊(id mod 52) / 4⌋ (ace … king), suit
 * id mod 4 (♠ ♦ ♣ ♥), colour id mod 2 (black, red; so ♠ ♣ black, ♦ ♥ red).
 */

/** A card attribute an env can use: POPGym's `deck_type`. */
export type CardField = 'colors' | 'suits' | 'ranks';
export const CARD_FIELDS: readonly CardField[] = ['colors', 'suits', 'ranks'];

import type { Rgb, Square } from '../render.js';

export const DECK_SIZE = 52;
/** Distinct values of each field. */
export const FIELD_SIZE: Readonly<Record<CardField, number>> = { colors: 2, suits: 4, ranks: 13 };

const RANK_LABELS = ['A', '2', '3', '4', '5', '6', '7', '8', '9', '10', 'J', 'Q', 'K'];
const SUIT_LABELS = ['♠', '♦', '♣', '♥'];
const COLOR_LABELS = ['b', 'r'];

export function rankOf(card: number): number {
  return ((card % DECK_SIZE) / 4) | 0;
}
export function suitOf(card: number): number {
  return card % 4;
}
export function colorOf(card: number): number {
  return card % 2;
}

/** The card's value in `field`: an integer in [0, FIELD_SIZE[field]). */
export function cardValue(card: number, field: CardField): number {
  return field === 'ranks' ? rankOf(card) : field === 'suits' ? suitOf(card) : colorOf(card);
}

/** A field value as text: 'b'/'r', a suit symbol or a rank. */
export function valueLabel(value: number, field: CardField): string {
  return (field === 'ranks' ? RANK_LABELS : field === 'suits' ? SUIT_LABELS : COLOR_LABELS)[value] ?? '?';
}

/** POPGym's own labels (`core/deck.py` RANKS and SUITS), as its infos report cards. */
const POPGYM_RANKS = ['a', '2', '3', '4', '5', '6', '7', '8', '9', '10', 'j', 'q', 'k'];
const POPGYM_SUITS = ['s', 'd', 'c', 'h'];

/** A card as POPGym's HigherLower reset info shows it: `[suit, rank]`, e.g. `['d', '10']`. */
export function popgymCardLabels(card: number): [string, string] {
  return [POPGYM_SUITS[suitOf(card)], POPGYM_RANKS[rankOf(card)]];
}

/** A card as text, e.g. '10♦'. */
export function cardLabel(card: number): string {
  return RANK_LABELS[rankOf(card)] + SUIT_LABELS[suitOf(card)];
}

const CARD_FACE: Rgb = [250, 250, 240];
const RED: Rgb = [200, 30, 30];
const BLACK: Rgb = [20, 20, 20];

/** A card face up: rank over suit in red or black, on `fill` (e.g. a highlight for the answer). */
export function cardSquare(card: number, fill: Rgb = CARD_FACE): Square {
  return { fill, mark: `${RANK_LABELS[rankOf(card)]}\n${SUIT_LABELS[suitOf(card)]}`, ink: colorOf(card) ? RED : BLACK };
}

/** A field value alone: a colour as a red or black block, a suit in its colour, or a rank. */
export function valueSquare(value: number, field: CardField, fill: Rgb = CARD_FACE): Square {
  const red = field === 'ranks' ? false : value % 2 === 1; // suits and colours share the parity of the card id
  return { fill, mark: field === 'colors' ? '■' : valueLabel(value, field), ink: red ? RED : BLACK };
}

/** A shuffled shoe of `numDecks` decks, dealt front to back; no allocation after construction. */
export class Deck {
  readonly numCards: number;
  private readonly order: Int32Array;
  private next = 0;

  constructor(readonly numDecks: number) {
    if (!Number.isInteger(numDecks) || numDecks < 1) throw new Error(`Deck: numDecks must be a positive integer, got ${numDecks}.`);
    this.numCards = DECK_SIZE * numDecks;
    this.order = new Int32Array(this.numCards);
  }

  /** Gathers every card back and shuffles uniformly (Fisher–Yates) with `rng` (floats in [0, 1)). */
  shuffle(rng: () => number): void {
    const order = this.order;
    for (let i = 0; i < order.length; i++) order[i] = i;
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    this.next = 0;
  }

  /** Deals the next card. */
  draw(): number {
    if (this.next >= this.numCards) throw new Error('Deck: no cards left to deal; shuffle() first.');
    return this.order[this.next++];
  }

  /** Cards dealt since the shuffle. */
  get dealtCount(): number {
    return this.next;
  }

  /** Cards still to deal. */
  get remaining(): number {
    return this.numCards - this.next;
  }

  /** The i-th card of the shuffled order (the i-th dealt, or the card at table position i). */
  card(i: number): number {
    if (i < 0 || i >= this.numCards) throw new RangeError(`Deck: card index ${i} out of [0, ${this.numCards}).`);
    return this.order[i];
  }
}
