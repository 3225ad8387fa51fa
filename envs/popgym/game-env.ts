/**
 * Shared base of the POPGym game and memory ports (Autoencode, Battleship, ...): difficulty levels, reference
 * returns, rendering (ANSI text, and `rgb_array` pictures painted from squares), and checked constructor options.
 */
import { Env, type ReturnBounds, type RgbImage } from '../env.js';
import { paintBoard, type Rgb, type Square } from '../render.js';
import { register, type EnvKwargs } from '../registry.js';

export type { ReturnBounds } from '../env.js';

/** POPGym's three difficulty levels; each env exports its parameters per level. */
export type Difficulty = 'Easy' | 'Medium' | 'Hard';
export const DIFFICULTIES: readonly Difficulty[] = ['Easy', 'Medium', 'Hard'];

/**
 * Bounds of the suit-recall games (Autoencode, RepeatFirst, RepeatPrevious): a perfect memory answers every
 * query right (1); a random suit is right 1/4 of the time, (1/4 − 3/4)·1 = −0.5.
 */
export const SUIT_RECALL_BOUNDS: ReturnBounds = Object.freeze({
  optimal: 1,
  random: -0.5,
  reachable: true,
  source: Object.freeze({ optimal: 'analytic: perfect memory answers every query', random: 'analytic: a random suit is right 1/4 of the time' }),
});

/** Squares the game pictures share: an empty slot, a face-down card, and the fill that picks out what matters now. */
export const EMPTY_SQUARE: Square = { fill: [170, 170, 170] };
export const CARD_BACK: Square = { fill: [50, 80, 160] };
export const HIGHLIGHT: Rgb = [255, 215, 60];

/** A POPGym env: renders to ANSI text or an RGB picture of squares, and states its reference returns. */
export abstract class PopgymGameEnv<O, A> extends Env<O, A> {
  override readonly metadata = { renderModes: ['ansi', 'rgb_array'] };
  /** Reference returns for this env's parameters. */
  abstract readonly returnBounds: ReturnBounds;
  /** Most steps an episode can take. */
  abstract readonly maxEpisodeLength: number;
  /**
   * POPGym's `obs_requires_prev_action`: the observation only makes sense next to the action that caused it
   * (e.g. a hit/miss flag without the shot's coordinates), so agents should see the previous action.
   */
  readonly obsRequiresPrevAction: boolean = false;

  /** `ansi` (default): `ansi()`; `rgb_array`: `squares()` painted at 16 pixels a square. */
  override render(): string | RgbImage {
    return this.renderMode === 'rgb_array' ? paintBoard(this.squares()) : this.ansi();
  }

  /** A text picture of the current state (hidden state included, for people, not agents). */
  abstract ansi(): string;

  /**
   * The same state as rows of squares (cards as tiles with rank and suit, boards as grids), with as many rows and
   * columns at every step of an episode, so frames keep their size.
   */
  abstract squares(): Square[][];
}

/** `items` laid out `perRow` to a row, the last row padded with `pad`. */
export function rowsOf(items: readonly Square[], perRow: number, pad: Square = EMPTY_SQUARE): Square[][] {
  const rows: Square[][] = [];
  for (let i = 0; i < items.length; i += perRow) rows.push(Array.from({ length: perRow }, (_, j) => items[i + j] ?? pad));
  return rows;
}

/** Reads an integer option in [min, max], or `fallback` when absent. */
export function intOption(owner: string, name: string, value: unknown, fallback: number, min: number, max = Infinity): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new Error(
      `${owner}: option '${name}' must be an integer in [${min}, ${max === Infinity ? '∞' : max}], got ${show(value)}.`,
    );
  return value;
}

/** Reads one of `choices`, or `fallback` when absent. */
export function choiceOption<T extends string>(owner: string, name: string, value: unknown, fallback: T, choices: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value))
    throw new Error(`${owner}: option '${name}' must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${show(value)}.`);
  return value as T;
}

function show(x: unknown): string {
  return typeof x === 'string' ? `'${x}'` : JSON.stringify(x) ?? String(x);
}

/** One POPGym env family: a base id taking its options as kwargs, and its three fixed difficulty levels. */
export interface PopgymFamily {
  name: string;
  /** Builds the env; its constructor checks the options. */
  create: (options: EnvKwargs) => Env;
  /** POPGym's base-class defaults: the kwargs of `popgym-<Name>-v0`. */
  defaults: EnvKwargs;
  /** The options of Easy, Medium and Hard, in that order. */
  levels: readonly EnvKwargs[];
  description: string;
}

function describeOptions(o: EnvKwargs): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`)
    .join(', ');
}

/** Registers `popgym-<Name>-v0` (options as kwargs) and `popgym-<Name><Easy|Medium|Hard>-v0` (no kwargs). */
export function registerPopgymFamily(family: PopgymFamily): void {
  register({
    id: `popgym-${family.name}-v0`,
    entryPoint: (kw) => family.create(kw),
    kwargs: { ...family.defaults },
    description: `${family.description} (POPGym)`,
  });
  DIFFICULTIES.forEach((level, i) => {
    const options = family.levels[i];
    register({
      id: `popgym-${family.name}${level}-v0`,
      entryPoint: () => family.create({ ...options }),
      kwargs: {},
      description: `${family.description} (POPGym ${level}: ${describeOptions(options)})`,
    });
  });
}
