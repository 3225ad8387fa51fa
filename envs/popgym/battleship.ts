/**
 * POPGym's Battleship, played blind: ships are hidden on a B×B board and the agent fires at one cell per step,
 * learning only whether that shot hit. It must remember where it fired (the previous action) and what it found.
 *
 * - Observation: Discrete(2), 1 if the last shot hit a ship cell not hit before (0 at reset).
 * - Action: MultiDiscrete([B, B]) = [row, column].
 * - Reward: +1/S for a new hit (S = ship cells, 12 for ships [2, 3, 3, 4]), −1/(B² − S) for a miss or a repeat
 *   shot. Sinking everything without a miss gives 1; firing at every cell once gives 0; all misses give
 *   −B²/(B² − S).
 * - Episode: terminated when every ship cell is hit; truncated after B² shots.
 * - Difficulty (B): Easy 8, Medium 10, Hard 12, ships [2, 3, 3, 4] → at most 64 / 100 / 144 steps.
 *
 * Ships are placed as POPGym's: a random start cell, axis and direction; placements off the board or
 * overlapping another ship are redrawn.
 */
import { Discrete, MultiDiscrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { PopgymGameEnv, intOption, type Difficulty, type ReturnBounds } from './game-env.js';

export interface BattleshipOptions {
  /** Board width and height B. */
  boardSize?: number;
  /** Ship lengths, in cells. */
  shipSizes?: number[];
}

export const BATTLESHIP_LEVELS: Readonly<Record<Difficulty, Required<BattleshipOptions>>> = {
  Easy: { boardSize: 8, shipSizes: [2, 3, 3, 4] },
  Medium: { boardSize: 10, shipSizes: [2, 3, 3, 4] },
  Hard: { boardSize: 12, shipSizes: [2, 3, 3, 4] },
};

/** Placement attempts per ship before giving up (only crowded custom boards get near it). */
const MAX_PLACEMENT_TRIES = 100_000;

export class Battleship extends PopgymGameEnv<number, Int32Array> {
  readonly observationSpace = new Discrete(2);
  readonly actionSpace: MultiDiscrete;
  override readonly obsRequiresPrevAction = true;
  readonly boardSize: number;
  readonly shipSizes: readonly number[];
  readonly maxEpisodeLength: number;
  /**
   * Optimal is an oracle bound, not reachable (a first shot can't know where ships are): hitting every ship cell
   * without a miss returns 1. Random: a uniformly random shot each step (repeats allowed) hits a given cell within B²
   * shots with probability q = 1 − (1 − 1/B²)^(B²), so E[return] ≈ q − (B² − qS)/(B² − S): −0.449 / −0.416 /
   * −0.400 for B = 8 / 10 / 12 (early termination, all S cells hit, is negligible; a 10⁴-episode Monte Carlo
   * run agrees to ±0.002).
   */
  readonly returnBounds: ReturnBounds;
  private readonly cells: number;
  private readonly shipCells: number;
  /** 1 where a ship is. */
  private readonly board: Uint8Array;
  /** 1 where the agent has fired. */
  private readonly shots: Uint8Array;
  private hits = 0;
  private steps = 0;

  constructor(options: BattleshipOptions = {}) {
    super();
    this.boardSize = intOption('Battleship', 'boardSize', options.boardSize, 10, 1);
    const sizes = options.shipSizes ?? [2, 3, 3, 4];
    if (!Array.isArray(sizes) || sizes.length === 0)
      throw new Error(`Battleship: option 'shipSizes' must be a non-empty array of ship lengths, got ${JSON.stringify(sizes)}.`);
    this.shipSizes = sizes.map((s, i) => intOption('Battleship', `shipSizes[${i}]`, s, 1, 1, this.boardSize));
    this.cells = this.boardSize * this.boardSize;
    this.shipCells = this.shipSizes.reduce((a, b) => a + b, 0);
    if (this.shipCells >= this.cells)
      throw new Error(
        `Battleship: ships cover ${this.shipCells} cells but the ${this.boardSize}×${this.boardSize} board has ` +
          `${this.cells}; use a larger boardSize or fewer/smaller ships.`,
      );
    this.actionSpace = new MultiDiscrete([this.boardSize, this.boardSize]);
    this.maxEpisodeLength = this.cells;
    this.board = new Uint8Array(this.cells);
    this.shots = new Uint8Array(this.cells);
    const q = 1 - Math.pow(1 - 1 / this.cells, this.cells);
    this.returnBounds = {
      optimal: 1,
      random: q - (this.cells - q * this.shipCells) / (this.cells - this.shipCells),
      reachable: false,
      source: {
        optimal: 'oracle: hits every ship cell without a miss',
        random: 'analytic, early termination ignored; a 10⁴-episode Monte Carlo agrees to ±0.002',
      },
    };
  }

  protected resetEnv(): ResetResult<number> {
    this.board.fill(0);
    this.shots.fill(0);
    for (const size of this.shipSizes) this.placeShip(size);
    this.hits = 0;
    this.steps = 0;
    return { obs: 0, info: {} };
  }

  protected stepEnv(action: Int32Array): StepResult<number> {
    const cell = action[0] * this.boardSize + action[1];
    const hit = this.board[cell] === 1 && this.shots[cell] === 0;
    this.shots[cell] = 1;
    if (hit) this.hits++;
    this.steps++;
    const reward = hit ? 1 / this.shipCells : -1 / (this.cells - this.shipCells);
    return {
      obs: hit ? 1 : 0,
      reward,
      terminated: this.hits === this.shipCells,
      truncated: this.steps >= this.maxEpisodeLength,
      info: {},
    };
  }

  /** Whether a ship occupies (row, col) (hidden state; for scripted tests and rendering, never observed). */
  isShip(row: number, col: number): boolean {
    return this.board[row * this.boardSize + col] === 1;
  }

  private placeShip(size: number): void {
    const n = this.boardSize;
    const rng = this.rng;
    for (let tries = 0; tries < MAX_PLACEMENT_TRIES; tries++) {
      const r0 = Math.floor(rng() * n);
      const c0 = Math.floor(rng() * n);
      const vertical = rng() < 0.5;
      const sign = rng() < 0.5 ? 1 : -1;
      const r1 = vertical ? r0 + sign * (size - 1) : r0;
      const c1 = vertical ? c0 : c0 + sign * (size - 1);
      if (r1 < 0 || r1 >= n || c1 < 0 || c1 >= n) continue;
      const [rLo, rHi] = r0 <= r1 ? [r0, r1] : [r1, r0];
      const [cLo, cHi] = c0 <= c1 ? [c0, c1] : [c1, c0];
      let free = true;
      for (let r = rLo; r <= rHi && free; r++) for (let c = cLo; c <= cHi; c++) if (this.board[r * n + c]) free = false;
      if (!free) continue;
      for (let r = rLo; r <= rHi; r++) for (let c = cLo; c <= cHi; c++) this.board[r * n + c] = 1;
      return;
    }
    throw new Error(
      `Battleship: could not place a ship of length ${size} on the ${n}×${n} board after ${MAX_PLACEMENT_TRIES} ` +
        'tries; use a larger boardSize or fewer ships.',
    );
  }

  /** · water, ☐ unhit ship, ☒ hit ship, ⚬ missed shot. */
  ansi(): string {
    const n = this.boardSize;
    const rows: string[] = [`Battleship  shot ${this.steps}/${this.maxEpisodeLength}  hits ${this.hits}/${this.shipCells}`];
    for (let r = 0; r < n; r++) {
      let line = '';
      for (let c = 0; c < n; c++) {
        const i = r * n + c;
        line += (this.board[i] ? (this.shots[i] ? '☒' : '☐') : this.shots[i] ? '⚬' : '·') + (c < n - 1 ? ' ' : '');
      }
      rows.push(line);
    }
    return rows.join('\n');
  }

  /** The board: water blue, shots at water white, ships grey, hit ship cells red. */
  squares(): Square[][] {
    const n = this.boardSize;
    return Array.from({ length: n }, (_, r) =>
      Array.from({ length: n }, (_, c): Square => {
        const i = r * n + c;
        if (this.board[i]) return { fill: this.shots[i] ? [220, 50, 50] : [120, 120, 120] };
        return { fill: this.shots[i] ? [245, 245, 245] : [70, 130, 200] };
      }),
    );
  }
}
