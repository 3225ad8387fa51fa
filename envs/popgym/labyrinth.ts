/**
 * POPGym's labyrinths: LabyrinthEscape (find the exit) and LabyrinthExplore (visit every square), on one maze
 * generator (`maze-generator.ts`).
 */
import { Env, type ResetResult, type RgbImage, type StepResult } from '../env.js';
import { Discrete, MultiDiscrete } from '../spaces.js';
import { checkPositive } from './control-common.js';
import type { ReturnBounds } from './game-env.js';
import { paintCells, type Rgb } from '../render.js';
import { checkMazeDims, generateMaze, MazeCell, type Maze, type Point } from './maze-generator.js';

/** Actions, as POPGym's: 0 left, 1 right, 2 up, 3 down; 4 is the "no previous action" code in observations. */
export const LABYRINTH_NO_ACTION = 4;
const MOVES: readonly [number, number][] = [
  [0, -1],
  [0, 1],
  [-1, 0],
  [1, 0],
];

export interface LabyrinthOptions {
  /** [height, width] in blocks, even: POPGym's Easy/Medium/Hard use 10/14/18 (grids of 11/15/19 squares). */
  mazeDims?: [number, number];
  /** Steps before truncation (POPGym: 1024). */
  episodeLength?: number;
}

/** A snapshot of the maze for scripted policies and tests (privileged: agents see only `obs`). */
export interface LabyrinthView {
  maze: Maze;
  position: Point;
  explored: Uint8Array;
}

/**
 * Shared rules of POPGym's maze envs.
 *
 * - Observation: MultiDiscrete([5 × 9, 5]): the 3×3 squares around the agent, row-major, as cell codes (0 free,
 *   1 wall, 2 start, 3 goal; squares off the grid read as walls), then the previous action (4 at reset).
 *   POPGym pads off-grid squares only at the bottom/right, shifting the view at the top/left border; here every
 *   square keeps its place.
 * - Action: Discrete(4) — left, right, up, down; moves into walls or off the grid leave the agent in place.
 * - The agent starts on an entrance in the outer wall; a new maze is drawn at every reset from the env's seed
 *   (POPGym seeds the global generators instead).
 */
abstract class Labyrinth extends Env<Int32Array, number> {
  readonly observationSpace = new MultiDiscrete([...Array<number>(9).fill(5), 5]);
  readonly actionSpace = new Discrete(4);
  override readonly metadata = { renderModes: ['ansi', 'rgb_array'] };
  readonly mazeDims: [number, number];
  readonly episodeLength: number;
  /** POPGym's `obs_requires_prev_action` (the observation already carries it; POPGym still sets the flag). */
  readonly obsRequiresPrevAction = true;

  protected maze!: Maze;
  protected position: Point = { row: 0, col: 0 };
  protected explored = new Uint8Array(0);
  protected steps = 0;

  constructor(opts: LabyrinthOptions = {}) {
    super();
    this.mazeDims = checkMazeDims(opts.mazeDims ?? [10, 10]);
    this.episodeLength = checkPositive('episodeLength', opts.episodeLength ?? 1024, true);
  }

  /** Privileged snapshot of the maze, position and explored squares. */
  get view(): LabyrinthView {
    return { maze: this.maze, position: { ...this.position }, explored: this.explored };
  }

  protected resetEnv(): ResetResult<Int32Array> {
    this.maze = generateMaze(this.mazeDims, this.rng);
    const { start, cols } = this.maze;
    this.maze.grid[start.row * cols + start.col] = MazeCell.Start;
    this.onNewMaze();
    this.position = { ...start };
    this.explored = new Uint8Array(this.maze.grid.length);
    this.explored[start.row * cols + start.col] = 1;
    this.steps = 0;
    return { obs: this.observe(LABYRINTH_NO_ACTION), info: {} };
  }

  /** Per-maze setup after the start is marked: Escape marks the exit as the goal; Explore counts free squares. */
  protected abstract onNewMaze(): void;

  /** The square `action` leads to (the current one when blocked). */
  protected target(action: number): Point {
    const { rows, cols, grid } = this.maze;
    const [dr, dc] = MOVES[action];
    const row = Math.min(rows - 1, Math.max(0, this.position.row + dr));
    const col = Math.min(cols - 1, Math.max(0, this.position.col + dc));
    return grid[row * cols + col] === MazeCell.Wall ? { ...this.position } : { row, col };
  }

  /** Moves the agent and counts the step; returns whether the square was new. */
  protected move(action: number): boolean {
    this.position = this.target(action);
    const i = this.position.row * this.maze.cols + this.position.col;
    const isNew = this.explored[i] === 0;
    this.explored[i] = 1;
    this.steps++;
    return isNew;
  }

  protected observe(prevAction: number): Int32Array {
    const { rows, cols, grid } = this.maze;
    const obs = new Int32Array(10);
    let k = 0;
    for (let dr = -1; dr <= 1; dr++) {
      for (let dc = -1; dc <= 1; dc++) {
        const r = this.position.row + dr;
        const c = this.position.col + dc;
        obs[k++] = r < 0 || r >= rows || c < 0 || c >= cols ? MazeCell.Wall : grid[r * cols + c];
      }
    }
    obs[9] = prevAction;
    return obs;
  }

  protected get truncated(): boolean {
    return this.steps >= this.episodeLength;
  }

  /** `ansi` (default): `#` wall, `.` visited, `S` start, `G` goal, `A` agent; `rgb_array`: the same, 8 pixels a square. */
  override render(): string | RgbImage {
    const { rows, cols, grid } = this.maze;
    if (this.renderMode === 'rgb_array') {
      return paintCells(cols, rows, 8, (c, r): Rgb => {
        const i = r * cols + c;
        if (r === this.position.row && c === this.position.col) return [40, 90, 220];
        if (grid[i] === MazeCell.Wall) return [40, 40, 40];
        if (grid[i] === MazeCell.Start) return [240, 200, 40];
        if (grid[i] === MazeCell.Goal) return [60, 180, 75];
        return this.explored[i] ? [170, 190, 230] : [230, 230, 230];
      });
    }
    const lines: string[] = [];
    for (let r = 0; r < rows; r++) {
      let line = '';
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        if (r === this.position.row && c === this.position.col) line += 'A';
        else if (grid[i] === MazeCell.Wall) line += '#';
        else if (grid[i] === MazeCell.Start) line += 'S';
        else if (grid[i] === MazeCell.Goal) line += 'G';
        else line += this.explored[i] ? '.' : ' ';
      }
      lines.push(line);
    }
    return lines.join('\n');
  }
}

/**
 * POPGym LabyrinthEscape: find the exit of a random maze.
 *
 * - Reward: −1/L every step, plus +1 on reaching the exit (which terminates the episode).
 * - Ends: terminated at the exit; truncated after L = 1024 steps (POPGym's check fires one step early, at 1023).
 * - Difficulty: maze 10×10 / 14×14 / 18×18 blocks (grids 11/15/19 squares).
 * - returnBounds: optimal 1 is an upper bound, not reachable (the best return is 1 − d/L for a shortest path of
 *   d steps); random is the uniform-random policy's mean return per difficulty (RANDOM_RETURNS); both only at
 *   POPGym's settings.
 */
export class LabyrinthEscape extends Labyrinth {
  readonly returnBounds?: ReturnBounds;

  constructor(opts: LabyrinthOptions = {}) {
    super(opts);
    this.returnBounds = bounds('escape', this.mazeDims, this.episodeLength);
  }

  protected onNewMaze(): void {
    const { end, cols, grid } = this.maze;
    grid[end.row * cols + end.col] = MazeCell.Goal;
  }

  protected stepEnv(action: number): StepResult<Int32Array> {
    this.move(action);
    const { cols, grid } = this.maze;
    const atGoal = grid[this.position.row * cols + this.position.col] === MazeCell.Goal;
    return {
      obs: this.observe(action),
      reward: -1 / this.episodeLength + (atGoal ? 1 : 0),
      terminated: atGoal,
      truncated: this.truncated,
      info: { position: { ...this.position } },
    };
  }
}

/**
 * POPGym LabyrinthExplore: visit every open square of a random maze.
 *
 * - Reward: +1/F for each step onto a square not visited before (F = free squares, excluding the start, so full
 *   exploration sums to 1), otherwise −1/L.
 * - Ends: terminated once every open square is visited; truncated after L = 1024 steps.
 * - Difficulty: maze 10×10 / 14×14 / 18×18 blocks.
 * - returnBounds: optimal 1 is an upper bound, not reachable (revisits needed to leave dead ends cost −1/L each);
 *   random is the uniform-random policy's mean return per difficulty (RANDOM_RETURNS); only at POPGym's settings.
 */
export class LabyrinthExplore extends Labyrinth {
  readonly returnBounds?: ReturnBounds;
  private newSquareReward = 0;
  private remaining = 0;

  constructor(opts: LabyrinthOptions = {}) {
    super(opts);
    this.returnBounds = bounds('explore', this.mazeDims, this.episodeLength);
  }

  protected onNewMaze(): void {
    const free = this.maze.grid.reduce((n, v) => n + (v === MazeCell.Free ? 1 : 0), 0);
    this.newSquareReward = 1 / free;
    this.remaining = free;
  }

  protected stepEnv(action: number): StepResult<Int32Array> {
    const isNew = this.move(action);
    if (isNew) this.remaining--;
    return {
      obs: this.observe(action),
      reward: isNew ? this.newSquareReward : -1 / this.episodeLength,
      terminated: this.remaining === 0,
      truncated: this.truncated,
      info: { position: { ...this.position } },
    };
  }
}

/**
 * The uniform-random policy's mean return at POPGym's settings (square mazes, L = 1024), keyed by maze side,
 * from 1,000 seeded episodes each (standard errors: Escape 0.024/0.015/0.008, Explore 0.006/0.004/0.003; the test
 * re-estimates one).
 */
export const RANDOM_RETURNS: Record<'escape' | 'explore', Record<number, number>> = {
  escape: { 10: -0.396, 14: -0.821, 18: -0.948 },
  explore: { 10: -0.353, 14: -0.614, 18: -0.749 },
};

/** Return bounds at POPGym's settings; undefined elsewhere (no estimate of the random return). */
function bounds(kind: 'escape' | 'explore', dims: [number, number], length: number): ReturnBounds | undefined {
  const random = dims[0] === dims[1] && length === 1024 ? RANDOM_RETURNS[kind][dims[0]] : undefined;
  if (random === undefined) return undefined;
  const source = {
    optimal: `upper bound: ${kind === 'escape' ? 'the exit without step costs' : 'every square without a revisit'}`,
    random: 'measured: 1,000 seeded uniform-random episodes per size; re-checked in test/popgym-control.test.ts',
  };
  return { optimal: 1, random, reachable: false, source };
}
