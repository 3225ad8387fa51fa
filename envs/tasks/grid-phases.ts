/**
 * The shared frame of Hung et al. (2019)'s three-phase grid tasks (Visual Match, Key-to-Door), after DeepMind's
 * pycolab code (`tvt/pycolab`, as vendored by Memory-RL): a 7×11 board, a phase-1 task, an apple-collecting
 * distractor phase, and a phase-3 task that depends on what happened in phase 1.
 */
import { Env, type RgbImage, type ResetResult, type StepResult } from '../env.js';
import { Discrete, MultiDiscrete } from '../spaces.js';
import { checkPositive } from '../popgym/control-common.js';

/** Board height and width. */
export const BOARD_ROWS = 7;
export const BOARD_COLS = 11;
/** Side of the agent's square view. */
export const VIEW = 5;

/** What a square holds; observations are these codes. */
export const Cell = {
  Empty: 0,
  Wall: 1,
  Agent: 2,
  Apple: 3,
  Key: 4,
  Door: 5,
  Red: 6,
  Green: 7,
  Blue: 8,
} as const;
export const CELL_KINDS = 9;
export const COLOURS = [Cell.Red, Cell.Green, Cell.Blue] as const;

/** Characters of the layouts and `ansi` renders, indexed by cell code. */
const CHARS = [' ', '#', '@', 'a', 'k', 'd', 'R', 'G', 'B'];
/** RGB per cell code (pycolab's palette where it has one; pure red/green/blue for the cues). */
const PALETTE: readonly [number, number, number][] = [
  [204, 204, 204],
  [26, 26, 26],
  [229, 149, 110],
  [140, 178, 0],
  [160, 82, 45],
  [135, 206, 235],
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
];

/** Actions, as pycolab's: 0 north, 1 south, 2 west, 3 east. */
const MOVES: readonly [number, number][] = [
  [-1, 0],
  [1, 0],
  [0, -1],
  [0, 1],
];

export interface Point {
  row: number;
  col: number;
}

/** A parsed layout: board codes plus the squares marked with placeholder characters (e.g. candidate spots). */
export interface Layout {
  board: Uint8Array;
  marks: Record<string, Point[]>;
}

/**
 * Parses a 7×11 ASCII layout: the cell characters (`' '`, `#`, `a`, `k`, `d`, `R`, `G`, `B`) map to their codes;
 * any other character (`@` for the agent, placeholders for random spots) is an empty square listed in `marks`.
 */
export function parseLayout(rows: readonly string[]): Layout {
  if (rows.length !== BOARD_ROWS || rows.some((r) => r.length !== BOARD_COLS))
    throw new Error(`A layout must be ${BOARD_ROWS} rows of ${BOARD_COLS} characters.`);
  const board = new Uint8Array(BOARD_ROWS * BOARD_COLS);
  const marks: Record<string, Point[]> = {};
  rows.forEach((line, row) =>
    [...line].forEach((ch, col) => {
      const code = CHARS.indexOf(ch);
      if (code >= 0 && ch !== CHARS[Cell.Agent]) board[row * BOARD_COLS + col] = code;
      else (marks[ch] ??= []).push({ row, col });
    }),
  );
  return { board, marks };
}

/** The apple room (pycolab's APPLE_DISTRACTOR_GRID): `*` marks the 22 candidate spots, `@` the start. */
const APPLE_ROOM = parseLayout([
  '###########',
  '#* * * * *#',
  '# * * * * #',
  '#* * * * *#',
  '# * * * * #',
  '#* * @ * *#',
  '###########',
]);
const APPLE_SPOTS = APPLE_ROOM.marks['*'];

export interface PhaseOptions {
  /** Steps of phase 1 (cue / key). */
  explorePhaseSteps?: number;
  /** Steps of the apple phase (Irie et al. 2025: 750). */
  applePhaseSteps?: number;
  /** Steps of phase 3 (doors). */
  rewardPhaseSteps?: number;
  /** Apples placed at the start of the apple phase, out of 22 spots. */
  numApples?: number;
  /** Reward per apple. */
  appleReward?: number;
  /** An eaten apple grows back `respawnEvery` + 1 steps after it was eaten (pycolab: frame > eaten + 20). */
  respawnEvery?: number;
  /** Reward of the phase-3 success. */
  finalReward?: number;
}

/** What happens when the agent enters a square in phase 1 or 3. */
export interface Interaction {
  reward: number;
  /** Ends the episode (the final reward was earned or forfeited). */
  end?: boolean;
}

/**
 * Base of the three-phase tasks.
 *
 * - Observation: MultiDiscrete(25 × 9): the 5×5 squares centred on the agent (pycolab's scrolling 5×5 crop),
 *   row-major, as cell codes (0 empty, 1 wall, 2 agent, 3 apple, 4 key, 5 door, 6 red, 7 green, 8 blue); squares
 *   off the board read as empty, as pycolab pads with the background.
 * - Action: Discrete(4) — north, south, west, east; walls (and whatever the task blocks) stop the agent.
 * - Phases last exactly their step counts; the step that ends a phase returns the first view of the next. The
 *   episode ends (terminated) when phase 3 runs out or its task ends it early.
 * - Apple phase: the agent starts at the bottom centre of a walled room with `numApples` apples on random spots;
 *   entering an apple eats it (+appleReward); it grows back once more than `respawnEvery` steps have passed.
 */
export abstract class ThreePhaseGridTask extends Env<Int32Array, number> {
  readonly observationSpace = new MultiDiscrete(Array<number>(VIEW * VIEW).fill(CELL_KINDS));
  readonly actionSpace = new Discrete(4);
  override readonly metadata = { renderModes: ['ansi', 'rgb_array'] };
  /** Steps of the three phases. */
  readonly phaseSteps: readonly [number, number, number];
  readonly numApples: number;
  readonly appleReward: number;
  readonly respawnEvery: number;
  readonly finalReward: number;

  protected board = new Uint8Array(BOARD_ROWS * BOARD_COLS);
  protected agent: Point = { row: 0, col: 0 };
  /** The current phase: 0, 1, 2 for phases 1, 2 (apples), 3. */
  protected stage = 0;
  private phaseStep = 0;
  /** Phase step each apple spot was eaten at (−1: not eaten). */
  private eatenAt = new Int32Array(BOARD_ROWS * BOARD_COLS);

  constructor(opts: PhaseOptions, defaults: { finalReward: number; applePhaseSteps: number }) {
    super();
    this.phaseSteps = [
      checkPositive('explorePhaseSteps', opts.explorePhaseSteps ?? 15, true),
      checkPositive('applePhaseSteps', opts.applePhaseSteps ?? defaults.applePhaseSteps, true),
      checkPositive('rewardPhaseSteps', opts.rewardPhaseSteps ?? 15, true),
    ];
    this.numApples = checkPositive('numApples', opts.numApples ?? 10, true, true);
    if (this.numApples > APPLE_SPOTS.length)
      throw new Error(`numApples must be at most ${APPLE_SPOTS.length}, got ${this.numApples}.`);
    this.appleReward = opts.appleReward ?? 1;
    this.respawnEvery = checkPositive('respawnEvery', opts.respawnEvery ?? 20, true);
    this.finalReward = opts.finalReward ?? defaults.finalReward;
  }

  /** Total steps of an episode that runs to the end. */
  get episodeLength(): number {
    return this.phaseSteps[0] + this.phaseSteps[1] + this.phaseSteps[2];
  }

  /** Privileged snapshot (for scripted policies and tests): phase (0-2), board codes, agent position. */
  get snapshot(): { phase: number; phaseStep: number; board: Uint8Array; agent: Point } {
    return { phase: this.stage, phaseStep: this.phaseStep, board: this.board.slice(), agent: { ...this.agent } };
  }

  /** Draws the episode's hidden choices and lays out phase 1 (sets `board` and `agent`). */
  protected abstract startEpisode(): void;
  /** Lays out phase 3. */
  protected abstract layoutRewardPhase(): void;
  /** Whether the agent may not enter a square holding `cell` (walls always block). */
  protected abstract blocks(cell: number): boolean;
  /** Handles the agent entering a non-empty square in phase 1 or 3. */
  protected abstract interact(cell: number, at: Point): Interaction;

  protected resetEnv(): ResetResult<Int32Array> {
    this.stage = 0;
    this.phaseStep = 0;
    this.startEpisode();
    return { obs: this.observe(), info: { phase: 0 } };
  }

  protected stepEnv(action: number): StepResult<Int32Array> {
    const row = this.agent.row + MOVES[action][0];
    const col = this.agent.col + MOVES[action][1];
    const inside = row >= 0 && row < BOARD_ROWS && col >= 0 && col < BOARD_COLS;
    const target = inside ? this.board[row * BOARD_COLS + col] : Cell.Wall;
    if (target !== Cell.Wall && !this.blocks(target)) this.agent = { row, col };
    this.phaseStep++;

    const here = this.agent.row * BOARD_COLS + this.agent.col;
    let reward = 0;
    let end = false;
    if (this.stage === 1) {
      reward = this.eatAndRegrow(here);
    } else if (this.board[here] !== Cell.Empty) {
      ({ reward, end = false } = this.interact(this.board[here], { ...this.agent }));
    }
    if (!end && this.phaseStep >= this.phaseSteps[this.stage]) {
      if (this.stage === 2) end = true;
      else this.nextPhase();
    }
    // Success (as the T-mazes report it): the episode ended on the phase-3 reward.
    const success = end && this.stage === 2 && reward === this.finalReward;
    return { obs: this.observe(), reward, terminated: end, truncated: false, info: { phase: this.stage, success } };
  }

  private nextPhase(): void {
    this.stage++;
    this.phaseStep = 0;
    if (this.stage === 1) {
      this.board = APPLE_ROOM.board.slice();
      this.agent = { ...APPLE_ROOM.marks['@'][0] };
      this.eatenAt.fill(-1);
      for (const p of this.pick(APPLE_SPOTS, this.numApples)) this.board[p.row * BOARD_COLS + p.col] = Cell.Apple;
    } else {
      this.layoutRewardPhase();
    }
  }

  private eatAndRegrow(here: number): number {
    let reward = 0;
    if (this.board[here] === Cell.Apple) {
      this.board[here] = Cell.Empty;
      this.eatenAt[here] = this.phaseStep;
      reward = this.appleReward;
    }
    for (let i = 0; i < this.eatenAt.length; i++) {
      if (this.eatenAt[i] >= 0 && this.phaseStep > this.eatenAt[i] + this.respawnEvery) {
        this.board[i] = Cell.Apple;
        this.eatenAt[i] = -1;
      }
    }
    return reward;
  }

  /** `n` distinct random elements of `items` (partial Fisher-Yates on `rng`). */
  protected pick<T>(items: readonly T[], n: number): T[] {
    const a = [...items];
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.rng() * (a.length - i));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, n);
  }

  private observe(): Int32Array {
    const obs = new Int32Array(VIEW * VIEW);
    const half = (VIEW - 1) / 2;
    let k = 0;
    for (let dr = -half; dr <= half; dr++) {
      for (let dc = -half; dc <= half; dc++) {
        const r = this.agent.row + dr;
        const c = this.agent.col + dc;
        const inside = r >= 0 && r < BOARD_ROWS && c >= 0 && c < BOARD_COLS;
        obs[k++] = dr === 0 && dc === 0 ? Cell.Agent : inside ? this.board[r * BOARD_COLS + c] : Cell.Empty;
      }
    }
    return obs;
  }

  /** The board's cell codes with the agent drawn in. */
  private picture(): Uint8Array {
    const codes = this.board.slice();
    codes[this.agent.row * BOARD_COLS + this.agent.col] = Cell.Agent;
    return codes;
  }

  /** `ansi` (default): the whole board as text; `rgb_array`: the board at 8 pixels per square (88×56). */
  override render(): string | RgbImage {
    const codes = this.picture();
    if (this.renderMode === 'rgb_array') return renderRgb(codes, 8);
    const lines: string[] = [];
    for (let r = 0; r < BOARD_ROWS; r++)
      lines.push(Array.from(codes.subarray(r * BOARD_COLS, (r + 1) * BOARD_COLS), (c) => CHARS[c]).join(''));
    return `${lines.join('\n')}\nphase ${this.stage + 1}, step ${this.phaseStep}/${this.phaseSteps[this.stage]}`;
  }
}

/** Paints cell codes (a BOARD_ROWS×BOARD_COLS board) as an RGB image with `scale` pixels per square. */
export function renderRgb(codes: Uint8Array, scale: number): RgbImage {
  const width = BOARD_COLS * scale;
  const height = BOARD_ROWS * scale;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const rgb = PALETTE[codes[Math.floor(y / scale) * BOARD_COLS + Math.floor(x / scale)]];
      data.set(rgb, (y * width + x) * 3);
    }
  }
  return { width, height, data };
}
