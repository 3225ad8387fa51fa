/**
 * Registers the POPGym game and memory ports (side effect on import): `popgym-<Name>-v0` takes the env's
 * options as kwargs (POPGym's base-class defaults), and `popgym-<Name><Easy|Medium|Hard>-v0` are POPGym's
 * fixed difficulty levels (no kwargs).
 */
import type { Env } from '../env.js';
import type { EnvKwargs } from '../registry.js';
import { DIFFICULTIES, registerPopgymFamily, type Difficulty } from './game-env.js';
import { Autoencode, AUTOENCODE_LEVELS, type AutoencodeOptions } from './autoencode.js';
import { Battleship, BATTLESHIP_LEVELS, type BattleshipOptions } from './battleship.js';
import { Concentration, CONCENTRATION_LEVELS, type ConcentrationOptions } from './concentration.js';
import { CountRecall, COUNT_RECALL_LEVELS, type CountRecallOptions } from './count-recall.js';
import { HigherLower, HIGHER_LOWER_LEVELS, type HigherLowerOptions } from './higher-lower.js';
import { MineSweeper, MINESWEEPER_LEVELS, type MineSweeperOptions } from './minesweeper.js';
import { MultiarmedBandit, MULTIARMED_BANDIT_LEVELS, type MultiarmedBanditOptions } from './multiarmed-bandit.js';
import { RepeatFirst, REPEAT_FIRST_LEVELS, type RepeatFirstOptions } from './repeat-first.js';
import { RepeatPrevious, REPEAT_PREVIOUS_LEVELS, type RepeatPreviousOptions } from './repeat-previous.js';

interface GameEntry {
  name: string;
  /** Builds the env; its constructor checks the options. */
  create: (options: EnvKwargs) => Env;
  /** POPGym's base-class defaults: the kwargs of `popgym-<Name>-v0`. */
  defaults: EnvKwargs;
  levels: Readonly<Record<Difficulty, EnvKwargs>>;
  description: string;
}

/** The nine games, with POPGym's base defaults; exported for listings and tests. */
export const POPGYM_GAMES: readonly GameEntry[] = [
  {
    name: 'Autoencode',
    create: (o) => new Autoencode(o as AutoencodeOptions),
    defaults: { numDecks: 1 },
    levels: AUTOENCODE_LEVELS,
    description: 'Watch a shuffled deck suit by suit, then recite the suits in reverse order',
  },
  {
    name: 'Battleship',
    create: (o) => new Battleship(o as BattleshipOptions),
    defaults: { boardSize: 10, shipSizes: [2, 3, 3, 4] },
    levels: BATTLESHIP_LEVELS,
    description: 'Blind Battleship: fire at cells, observe only hit or miss',
  },
  {
    name: 'Concentration',
    create: (o) => new Concentration(o as ConcentrationOptions),
    defaults: { numDecks: 1, deckType: 'ranks' },
    levels: CONCENTRATION_LEVELS,
    description: 'Pairs: flip two face-down cards per turn, matching ones stay up',
  },
  {
    name: 'CountRecall',
    create: (o) => new CountRecall(o as CountRecallOptions),
    defaults: { numDecks: 1, deckType: 'colors' },
    levels: COUNT_RECALL_LEVELS,
    description: 'Count how many cards of the queried value have been dealt',
  },
  {
    name: 'HigherLower',
    create: (o) => new HigherLower(o as HigherLowerOptions),
    defaults: { numDecks: 1 },
    levels: HIGHER_LOWER_LEVELS,
    description: 'Guess whether the next card ranks higher or lower (card counting helps)',
  },
  {
    name: 'MineSweeper',
    create: (o) => new MineSweeper(o as MineSweeperOptions),
    defaults: { rows: 4, cols: 4, numMines: 2 },
    levels: MINESWEEPER_LEVELS,
    description: 'Blind MineSweeper: click cells, observe only the adjacent-mine count',
  },
  {
    name: 'MultiarmedBandit',
    create: (o) => new MultiarmedBandit(o as MultiarmedBanditOptions),
    defaults: { numBandits: 10, episodeLength: 200 },
    levels: MULTIARMED_BANDIT_LEVELS,
    description: 'Episodic multi-armed bandit with fresh payout probabilities each episode',
  },
  {
    name: 'RepeatFirst',
    create: (o) => new RepeatFirst(o as RepeatFirstOptions),
    defaults: { numDecks: 1 },
    levels: REPEAT_FIRST_LEVELS,
    description: "Repeat the first card's suit at every step",
  },
  {
    name: 'RepeatPrevious',
    create: (o) => new RepeatPrevious(o as RepeatPreviousOptions),
    defaults: { numDecks: 1, k: 4 },
    levels: REPEAT_PREVIOUS_LEVELS,
    description: "Repeat the suit of the card seen k steps ago",
  },
];

for (const game of POPGYM_GAMES) registerPopgymFamily({ ...game, levels: DIFFICULTIES.map((d) => game.levels[d]) });
