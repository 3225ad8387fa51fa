/**
 * T-mazes for memory RL (Bakker 2001, in the "classic" form of Ni et al. 2023, Memory-RL `envs/tmaze.py`).
 *
 * ```
 *                      G(+1)
 *   O - S - - - - - - J
 *                      G(−1)
 * ```
 * O is the oracle square (x = 0), S the start (x = o), J the junction (x = o + L), and the two goal candidates sit
 * above and below J.
 */
import { Env, type ResetResult, type ReturnBounds, type RgbImage, type StepResult } from '../env.js';
import { paintCells, type Rgb } from '../render.js';
import { Box, Discrete } from '../spaces.js';
import { checkPositive } from '../popgym/control-common.js';

/** Actions, as Ni et al.: 0 right (+x), 1 up (+y), 2 left (−x), 3 down (−y). */
const MOVES: readonly [number, number][] = [
  [1, 0],
  [0, 1],
  [-1, 0],
  [0, -1],
];

export interface TMazeOptions {
  /** Corridor length L: squares from the start to the junction. */
  corridorLength?: number;
  /** Reward for ending on the cued goal. */
  goalReward?: number;
  /**
   * Total lag penalty: each non-final step where the agent is behind the fastest schedule (x < t − o) costs
   * −lagPenalty/L (Ni et al. use 1, so dawdling all the way costs about −1). 0 disables it.
   */
  lagPenalty?: number;
}

/** One T-maze move: the corridor row y = 0 spans x ∈ [0, J]; the goals are (J, ±1); other moves stay put. */
export function tMazeMove(x: number, y: number, action: number, junction: number): [number, number] {
  const nx = x + MOVES[action][0];
  const ny = y + MOVES[action][1];
  const valid = (ny === 0 && nx >= 0 && nx <= junction) || (nx === junction && Math.abs(ny) === 1);
  return valid ? [nx, ny] : [x, y];
}

/**
 * The classic T-maze with oracle distance o (0: passive, 1: active).
 *
 * Rules implemented (Ni et al. 2023's TMazeClassic with `ambiguous_position`):
 * - The goal side g ∈ {+1 (up), −1 (down)} is drawn uniformly at reset. The agent starts at x = o.
 * - Observation: Box(2) in [−1, 1]: `[0, g]` on the first visit to the oracle (x = 0) only, `[0, 0]` on the oracle
 *   later and along the corridor (x < J), `[1, y]` at the junction and the goals (x = J). So the cue is seen once:
 *   at reset in the passive maze, after stepping left in the active one.
 * - Action: Discrete(4) — right, up, left, down; moves off the map (walls, or up/down in the corridor) do nothing.
 * - Episode: exactly T = L + 1 + 2o steps (passive L + 1, active L + 3), the fastest time to reach a goal, then
 *   terminated (a fixed horizon that is part of the task).
 * - Reward: at the last step, goalReward if the agent stands on the cued goal (y = g), else 0. At earlier steps t,
 *   −lagPenalty/L if x < t − o (behind the fastest schedule: straight to the oracle, then straight to J).
 * - returnBounds: optimal = goalReward (the fastest schedule never lags and ends on the goal); random is the exact
 *   expected return of the uniform-random policy, computed by dynamic programming over the position distribution.
 */
export class TMaze extends Env<Float32Array, number> {
  readonly observationSpace = new Box(-1, 1, [2]);
  readonly actionSpace = new Discrete(4);
  override readonly metadata = { renderModes: ['ansi', 'rgb_array'] };
  readonly corridorLength: number;
  readonly goalReward: number;
  readonly lagPenalty: number;
  /** Episode length T = L + 1 + 2o. */
  readonly episodeLength: number;
  readonly junction: number;
  readonly returnBounds: ReturnBounds;

  private x = 0;
  private y = 0;
  private goal = 1;
  private t = 0;
  private oracleSeen = false;

  constructor(
    readonly oracleDistance: 0 | 1,
    opts: TMazeOptions = {},
  ) {
    super();
    this.corridorLength = checkPositive('corridorLength', opts.corridorLength ?? 10, true);
    this.goalReward = opts.goalReward ?? 1;
    this.lagPenalty = checkPositive('lagPenalty', opts.lagPenalty ?? 1, false, true);
    this.junction = oracleDistance + this.corridorLength;
    this.episodeLength = this.corridorLength + 1 + 2 * oracleDistance;
    this.returnBounds = {
      optimal: this.goalReward,
      random: this.randomPolicyReturn(),
      reachable: true,
      source: { optimal: 'analytic: the fastest schedule to the cued goal', random: 'analytic: dynamic programming over the random walk' },
    };
  }

  /** The cued side (+1 up, −1 down): privileged, for scripted policies and tests. */
  get goalSide(): number {
    return this.goal;
  }

  protected resetEnv(): ResetResult<Float32Array> {
    this.goal = this.rng() < 0.5 ? 1 : -1;
    this.x = this.oracleDistance;
    this.y = 0;
    this.t = 0;
    this.oracleSeen = false;
    return { obs: this.observe(), info: {} };
  }

  protected stepEnv(action: number): StepResult<Float32Array> {
    [this.x, this.y] = tMazeMove(this.x, this.y, action, this.junction);
    this.t++;
    const done = this.t >= this.episodeLength;
    const reward = done
      ? this.y === this.goal
        ? this.goalReward
        : 0
      : this.x < this.t - this.oracleDistance
        ? -this.lagPenalty / this.corridorLength
        : 0;
    return { obs: this.observe(), reward, terminated: done, truncated: false, info: { success: done && this.y === this.goal } };
  }

  private observe(): Float32Array {
    if (this.x === 0) {
      const cue = this.oracleSeen ? 0 : this.goal;
      this.oracleSeen = true;
      return Float32Array.of(0, cue);
    }
    return this.x < this.junction ? Float32Array.of(0, 0) : Float32Array.of(1, this.y);
  }

  /** Exact expected return of the uniform-random policy: the position distribution pushed through T steps. */
  private randomPolicyReturn(): number {
    const J = this.junction;
    // States: (x, 0) for x in [0, J] at index x; (J, +1) at J + 1; (J, −1) at J + 2.
    const index = (x: number, y: number) => (y === 0 ? x : y === 1 ? J + 1 : J + 2);
    const coords = (i: number): [number, number] => (i <= J ? [i, 0] : [J, i === J + 1 ? 1 : -1]);
    let p = new Float64Array(J + 3);
    p[index(this.oracleDistance, 0)] = 1;
    let expected = 0;
    for (let t = 1; t <= this.episodeLength; t++) {
      const next = new Float64Array(p.length);
      for (let i = 0; i < p.length; i++) {
        if (p[i] === 0) continue;
        const [x, y] = coords(i);
        for (let a = 0; a < 4; a++) next[index(...tMazeMove(x, y, a, J))] += p[i] / 4;
      }
      p = next;
      if (t === this.episodeLength) {
        // The goal side is uniform and independent of a random walk, so P(y = g) = (P(y = +1) + P(y = −1)) / 2.
        expected += (this.goalReward * (p[J + 1] + p[J + 2])) / 2;
      } else {
        for (let i = 0; i < p.length; i++) {
          if (coords(i)[0] < t - this.oracleDistance) expected -= (p[i] * this.lagPenalty) / this.corridorLength;
        }
      }
    }
    return expected;
  }

  /**
   * `ansi` (default): oracle `O`, junction `J`, agent `A`, the cued goal `G` and the other `x`; `rgb_array`: the same
   * at 16 pixels per square (agent blue, oracle yellow, cued goal green, the other red, walls dark).
   */
  override render(): string | RgbImage {
    const J = this.junction;
    if (this.renderMode === 'rgb_array') {
      return paintCells(J + 1, 3, 16, (x, row): Rgb => {
        const y = 1 - row;
        if (x === this.x && y === this.y) return [40, 90, 220];
        if (y !== 0) return x !== J ? [40, 40, 40] : y === this.goal ? [60, 180, 75] : [200, 60, 50];
        return x === 0 ? [240, 200, 40] : [210, 210, 210];
      });
    }
    const row = (y: number) =>
      Array.from({ length: J + 1 }, (_, x) => {
        if (x === this.x && y === this.y) return 'A';
        if (y !== 0) return x === J ? (y === this.goal ? 'G' : 'x') : ' ';
        return x === 0 ? 'O' : x === J ? 'J' : '-';
      }).join('');
    return `${row(1)}\n${row(0)}\n${row(-1)}\nt=${this.t}/${this.episodeLength}`;
  }
}

/** Passive T-maze: the cue is shown at the first step (the agent starts on the oracle); T = L + 1. */
export class PassiveTMaze extends TMaze {
  constructor(opts: TMazeOptions = {}) {
    super(0, opts);
  }
}

/** Active T-maze: the oracle is one square behind the start, so the agent must step back to see it; T = L + 3. */
export class ActiveTMaze extends TMaze {
  constructor(opts: TMazeOptions = {}) {
    super(1, opts);
  }
}
