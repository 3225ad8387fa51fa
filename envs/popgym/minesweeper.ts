/**
 * POPGym's MineSweeper, played blind: mines are hidden in a rows×cols grid; the agent clicks one cell per step
 * and sees only how many mines touch it. It must remember which cells it clicked (the previous actions) and
 * what they showed, and click every free cell without hitting a mine.
 *
 * - Observation: Discrete(min(mines + 1, 10)): mines in the 3×3 block around the clicked cell (0 at reset).
 * - Action: MultiDiscrete([rows, cols]) = [row, column].
 * - Reward (L = free cells = rows·cols − mines): +1/L for a new free cell; a mine costs −0.5 − 1/L and ends
 *   the episode; re-clicking a revealed cell costs −0.5/(L − 2). Clearing the board returns 1; the worst
 *   episode (a free cell, L − 2 re-clicks, then a mine) returns −1.
 * - Episode: terminated on a mine or when every free cell is revealed; truncated after L steps unless the last
 *   step also terminated (as POPGym: `truncated = at the limit and not terminated`).
 * - Difficulty (rows×cols, mines): Easy 4×4, 2; Medium 6×6, 6; Hard 8×8, 10 → L = 14 / 30 / 54.
 */
import { Discrete, MultiDiscrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { HIGHLIGHT, PopgymGameEnv, intOption, type Difficulty, type ReturnBounds } from './game-env.js';

export interface MineSweeperOptions {
  rows?: number;
  cols?: number;
  numMines?: number;
}

export const MINESWEEPER_LEVELS: Readonly<Record<Difficulty, Required<MineSweeperOptions>>> = {
  Easy: { rows: 4, cols: 4, numMines: 2 },
  Medium: { rows: 6, cols: 6, numMines: 6 },
  Hard: { rows: 8, cols: 8, numMines: 10 },
};

/** Monte Carlo returns of the uniform random policy (see `returnBounds`), keyed by `${rows}x${cols}-${mines}`. */
const RANDOM_RETURNS: Readonly<Record<string, number>> = { '4x4-2': -0.233, '6x6-6': -0.401, '8x8-10': -0.433 };
const RANDOM_SOURCE = 'measured: 10⁴ uniform-random episodes, SE ≤ 0.003; re-checked in test/popgym-games.test.ts';

const CLEAR = 0;
const MINE = 1;
const REVEALED = 2;

export class MineSweeper extends PopgymGameEnv<number, Int32Array> {
  readonly observationSpace: Discrete;
  readonly actionSpace: MultiDiscrete;
  override readonly obsRequiresPrevAction = true;
  readonly rows: number;
  readonly cols: number;
  readonly numMines: number;
  readonly maxEpisodeLength: number;
  /**
   * Optimal is an oracle bound, not reachable (the first click can hit a mine whatever the memory): clicking
   * every free cell returns 1. Random is a Monte Carlo estimate of the uniform random policy on this port (10⁴ episodes,
   * standard error ≤ 0.003); NaN for parameters other than the three levels.
   */
  readonly returnBounds: ReturnBounds;
  private readonly cells: Uint8Array;
  /** Mines in each cell's 3×3 block (the cell included). */
  private readonly neighbours: Uint8Array;
  /** Scratch for drawing mine positions. */
  private readonly order: Int32Array;
  private readonly newCellReward: number;
  private readonly mineReward: number;
  private readonly repeatReward: number;
  private steps = 0;
  private revealed = 0;
  /** The cell clicked last, or -1 (for the picture: a click on a mine or a revealed cell changes nothing else). */
  private lastCell = -1;

  constructor(options: MineSweeperOptions = {}) {
    super();
    this.rows = intOption('MineSweeper', 'rows', options.rows, 4, 1);
    this.cols = intOption('MineSweeper', 'cols', options.cols, 4, 1);
    const n = this.rows * this.cols;
    // L − 2 > 0 keeps the re-click penalty finite.
    this.numMines = intOption('MineSweeper', 'numMines', options.numMines, 2, 0, n - 3);
    this.maxEpisodeLength = n - this.numMines;
    this.observationSpace = new Discrete(Math.min(this.numMines + 1, 10));
    this.actionSpace = new MultiDiscrete([this.rows, this.cols]);
    this.cells = new Uint8Array(n);
    this.neighbours = new Uint8Array(n);
    this.order = new Int32Array(n);
    const L = this.maxEpisodeLength;
    this.newCellReward = 1 / L;
    this.mineReward = -0.5 - 1 / L;
    this.repeatReward = -0.5 / (L - 2);
    this.returnBounds = {
      optimal: 1,
      random: RANDOM_RETURNS[`${this.rows}x${this.cols}-${this.numMines}`] ?? NaN,
      reachable: false,
      source: { optimal: 'oracle: clicks every free cell, never a mine', random: RANDOM_SOURCE },
    };
  }

  protected resetEnv(): ResetResult<number> {
    const n = this.cells.length;
    const rng = this.rng;
    // A partial Fisher–Yates shuffle: the first numMines entries are a uniform sample without replacement.
    for (let i = 0; i < n; i++) this.order[i] = i;
    this.cells.fill(CLEAR);
    for (let i = 0; i < this.numMines; i++) {
      const j = i + Math.floor(rng() * (n - i));
      const t = this.order[i];
      this.order[i] = this.order[j];
      this.order[j] = t;
      this.cells[this.order[i]] = MINE;
    }
    for (let r = 0; r < this.rows; r++)
      for (let c = 0; c < this.cols; c++) {
        let count = 0;
        for (let dr = -1; dr <= 1; dr++)
          for (let dc = -1; dc <= 1; dc++) {
            const rr = r + dr;
            const cc = c + dc;
            if (rr >= 0 && rr < this.rows && cc >= 0 && cc < this.cols && this.cells[rr * this.cols + cc] === MINE) count++;
          }
        this.neighbours[r * this.cols + c] = count;
      }
    this.steps = 0;
    this.revealed = 0;
    this.lastCell = -1;
    return { obs: 0, info: {} };
  }

  protected stepEnv(action: Int32Array): StepResult<number> {
    const cell = action[0] * this.cols + action[1];
    this.lastCell = cell;
    let reward: number;
    let terminated = false;
    if (this.cells[cell] === MINE) {
      reward = this.mineReward;
      terminated = true;
    } else if (this.cells[cell] === REVEALED) {
      reward = this.repeatReward;
    } else {
      this.cells[cell] = REVEALED;
      this.revealed++;
      reward = this.newCellReward;
    }
    this.steps++;
    terminated ||= this.revealed === this.maxEpisodeLength;
    return {
      obs: this.neighbours[cell],
      reward,
      terminated,
      truncated: this.steps >= this.maxEpisodeLength && !terminated,
      info: {},
    };
  }

  /** Whether (row, col) holds a mine (hidden state; for scripted tests, never observed). */
  isMine(row: number, col: number): boolean {
    return this.cells[row * this.cols + col] === MINE;
  }

  /** Revealed cells show their mine count, hidden ones '.'. */
  ansi(): string {
    const lines = [`MineSweeper  step ${this.steps}/${this.maxEpisodeLength}  revealed ${this.revealed}/${this.maxEpisodeLength}`];
    for (let r = 0; r < this.rows; r++) {
      const row: string[] = [];
      for (let c = 0; c < this.cols; c++) {
        const i = r * this.cols + c;
        row.push(this.cells[i] === REVEALED ? String(this.neighbours[i]) : '.');
      }
      lines.push(row.join(' '));
    }
    return lines.join('\n');
  }

  /**
   * Revealed cells white with their mine count, hidden ones grey, mines (hidden state, for people) marked *, the
   * cell clicked last highlighted.
   */
  squares(): Square[][] {
    return Array.from({ length: this.rows }, (_, r) =>
      Array.from({ length: this.cols }, (_, c): Square => {
        const i = r * this.cols + c;
        const fill = i === this.lastCell ? HIGHLIGHT : this.cells[i] === REVEALED ? ([245, 245, 245] as const) : ([150, 150, 150] as const);
        if (this.cells[i] === REVEALED) return { fill, mark: this.neighbours[i] ? String(this.neighbours[i]) : undefined };
        return this.cells[i] === MINE ? { fill, mark: '*', ink: [150, 20, 20] } : { fill };
      }),
    );
  }
}
