import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import '../envs/tasks/register.js';
import type { Env, RgbImage } from '../envs/env.js';
import { make } from '../envs/registry.js';
import { Box, Discrete, MultiDiscrete } from '../envs/spaces.js';
import { shortestPath } from '../envs/popgym/maze-generator.js';
import { BOARD_COLS, BOARD_ROWS, Cell, COLOURS, type Point } from '../envs/tasks/grid-phases.js';
import { KeyToDoor } from '../envs/tasks/key-to-door.js';
import { ActiveTMaze, PassiveTMaze, TMaze } from '../envs/tasks/t-maze.js';
import { PassiveVisualMatch } from '../envs/tasks/visual-match.js';

interface Episode {
  obs: unknown[];
  rewards: number[];
  terminated: boolean;
  truncated: boolean;
}

function rollout(env: Env, seed: number, policy?: (t: number) => unknown, policySeed = 'p'): Episode {
  const rng = seedrandom(policySeed);
  const first = env.reset({ seed });
  const ep: Episode = { obs: [first.obs], rewards: [], terminated: false, truncated: false };
  for (let t = 0; ; t++) {
    const r = env.step(policy ? policy(t) : env.actionSpace.sample(rng));
    expect(env.observationSpace.contains(r.obs)).toBe(true);
    ep.obs.push(r.obs);
    ep.rewards.push(r.reward);
    if (r.terminated || r.truncated) {
      ep.terminated = r.terminated;
      ep.truncated = r.truncated;
      return ep;
    }
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const RIGHT = 0;
const UP = 1;
const LEFT = 2;
const DOWN = 3;

describe('T-maze', () => {
  /** The fastest schedule: (active: left first), right to the junction, then turn `side` (+1 up, −1 down). */
  function schedule(env: TMaze, turnCorrectly: boolean): (t: number) => number {
    return (t) => {
      if (env.oracleDistance === 1 && t === 0) return LEFT;
      if (t < env.episodeLength - 1) return RIGHT;
      const up = env.goalSide === 1 === turnCorrectly;
      return up ? UP : DOWN;
    };
  }

  it('has the classic spaces and observations', () => {
    const env = new PassiveTMaze({ corridorLength: 4 });
    expect(env.observationSpace.toJSON()).toEqual(new Box(-1, 1, [2]).toJSON());
    expect(env.actionSpace).toEqual(new Discrete(4));
    const ep = rollout(env, 3, schedule(env, true));
    const g = env.goalSide;
    const obs = ep.obs.map((o) => Array.from(o as Float32Array));
    // Cue at the oracle, ambiguous corridor, junction flag, then the goal square.
    expect(obs).toEqual([[0, g], [0, 0], [0, 0], [0, 0], [1, 0], [1, g]]);
  });

  it('passive: the right turn earns the optimal return in L + 1 steps, the wrong turn earns nothing', () => {
    for (const L of [1, 5, 20]) {
      const env = new PassiveTMaze({ corridorLength: L });
      for (let seed = 0; seed < 6; seed++) {
        const good = rollout(env, seed, schedule(env, true));
        expect(good.rewards.length).toBe(L + 1);
        expect(good.terminated).toBe(true);
        expect(sum(good.rewards)).toBe(env.returnBounds.optimal);
        expect(sum(good.rewards)).toBe(1);
        const bad = rollout(env, seed, schedule(env, false));
        expect(sum(bad.rewards)).toBe(0);
      }
    }
  });

  it('active: the cue appears only after stepping back to the oracle; episodes take L + 3 steps', () => {
    const env = new ActiveTMaze({ corridorLength: 6 });
    const first = env.reset({ seed: 1 });
    expect(Array.from(first.obs)).toEqual([0, 0]);
    const seen = env.step(LEFT);
    expect(Array.from(seen.obs)).toEqual([0, env.goalSide]);
    env.step(RIGHT);
    expect(Array.from(env.step(LEFT).obs)).toEqual([0, 0]); // the oracle shows the cue once
    for (let seed = 0; seed < 6; seed++) {
      const good = rollout(env, seed, schedule(env, true));
      expect(good.rewards.length).toBe(9);
      expect(sum(good.rewards)).toBe(1);
      expect(sum(rollout(env, seed, schedule(env, false)).rewards)).toBe(0);
    }
  });

  it('charges −lagPenalty/L for each step behind the fastest schedule', () => {
    const env = new PassiveTMaze({ corridorLength: 8 });
    // Bumping into the oracle's wall lags at every non-final step: 8 × (−1/8).
    expect(sum(rollout(env, 0, () => LEFT).rewards)).toBeCloseTo(-1, 12);
    const free = new PassiveTMaze({ corridorLength: 8, lagPenalty: 0 });
    expect(sum(rollout(free, 0, () => LEFT).rewards)).toBe(0);
  });

  it("states the random policy's exact expected return", () => {
    for (const env of [new PassiveTMaze({ corridorLength: 3 }), new ActiveTMaze({ corridorLength: 2 })]) {
      const n = 20_000;
      const rng = seedrandom('random policy');
      const returns = Array.from({ length: n }, (_, i) => {
        env.reset({ seed: i });
        let total = 0;
        for (let done = false; !done; ) {
          const r = env.step(env.actionSpace.sample(rng));
          total += r.reward;
          done = r.terminated || r.truncated;
        }
        return total;
      });
      const mean = sum(returns) / n;
      const se = Math.sqrt(sum(returns.map((r) => (r - mean) ** 2)) / (n - 1) / n);
      expect(Math.abs(mean - env.returnBounds.random)).toBeLessThan(4 * se);
      expect(env.returnBounds.random).toBeLessThan(0);
    }
  });

  it('is deterministic under a seed and draws both sides', () => {
    const env = new PassiveTMaze();
    const sides = (seed0: number) => Array.from({ length: 20 }, (_, i) => (env.reset({ seed: seed0 + i }), env.goalSide));
    expect(sides(0)).toEqual(sides(0));
    expect(new Set(sides(0))).toEqual(new Set([1, -1]));
  });

  it('registers the ids, including a short one, and renders ansi', () => {
    const short = make('PassiveTMazeShort-v0').unwrapped as TMaze;
    expect(short.corridorLength).toBe(5);
    expect(short.episodeLength).toBe(6);
    expect((make('ActiveTMaze-v0', { corridorLength: 30 }).unwrapped as TMaze).episodeLength).toBe(33);
    expect(() => make('PassiveTMaze-v0', { corridorLength: 0 })).toThrow(/corridorLength/);
    short.reset({ seed: 0 });
    expect((short.render() as string).split('\n').slice(0, 3).join('\n')).toMatch(/A----J/);
  });
});

/** BFS moves (0 N, 1 S, 2 W, 3 E) on the board from `from` to `to` over squares `passable` allows. */
function pathActions(board: Uint8Array, from: Point, to: Point, passable: (cell: number) => boolean): number[] {
  const path = shortestPath(BOARD_ROWS, BOARD_COLS, (i) => passable(board[i]) || i === to.row * BOARD_COLS + to.col, from, to);
  if (!path) throw new Error('no path');
  return path.slice(1).map((p, i) => {
    const q = path[i];
    return p.row < q.row ? 0 : p.row > q.row ? 1 : p.col < q.col ? 2 : 3;
  });
}

function find(board: Uint8Array, cell: number): Point {
  const i = board.indexOf(cell);
  return { row: Math.floor(i / BOARD_COLS), col: i % BOARD_COLS };
}

const SHORT = { explorePhaseSteps: 15, applePhaseSteps: 12, rewardPhaseSteps: 15 };
const STAY_SOUTH = 1; // the phase-3 start squares have a wall to the south in both tasks

describe('Passive Visual Match', () => {
  /** Phase 3: walk to the square of `colour` (privileged map); elsewhere bump south. */
  function toColour(env: PassiveVisualMatch, colour: () => number): (t: number) => number {
    let plan: number[] = [];
    return () => {
      const { phase, board, agent } = env.snapshot;
      if (phase !== 2) return STAY_SOUTH;
      if (!plan.length) plan = pathActions(board, agent, find(board, colour()), (c) => c === Cell.Empty);
      return plan.shift()!;
    };
  }

  it('shows the cue in phase 1 and pays +100 at the cued colour (scripted, privileged)', () => {
    const env = new PassiveVisualMatch(SHORT);
    expect(env.observationSpace.toJSON()).toEqual(new MultiDiscrete(Array(25).fill(9)).toJSON());
    expect(env.actionSpace).toEqual(new Discrete(4));
    const cues = new Set<number>();
    for (let seed = 0; seed < 8; seed++) {
      const ep = rollout(env, seed, toColour(env, () => env.cue));
      cues.add(env.cue);
      // Phase-1 views contain the cue and no other colour.
      for (const o of ep.obs.slice(0, 15) as Int32Array[]) {
        expect(o.includes(env.cue)).toBe(true);
        expect(COLOURS.filter((c) => c !== env.cue).some((c) => o.includes(c))).toBe(false);
        expect(o[12]).toBe(Cell.Agent);
      }
      expect(ep.terminated).toBe(true);
      expect(ep.rewards.at(-1)).toBe(100);
      expect(sum(ep.rewards.slice(0, 27))).toBe(0); // no apples eaten while bumping south
    }
    expect(cues.size).toBe(3);
  });

  it('ends with no reward at a wrong colour, and after all three phases when no colour is touched', () => {
    const env = new PassiveVisualMatch(SHORT);
    const wrong = rollout(env, 4, toColour(env, () => COLOURS.find((c) => c !== env.cue)!));
    expect(wrong.terminated).toBe(true);
    expect(sum(wrong.rewards)).toBe(0);
    expect(wrong.rewards.length).toBeLessThan(15 + 12 + 15);
    const idle = rollout(env, 4, () => STAY_SOUTH);
    expect(idle.rewards.length).toBe(15 + 12 + 15);
    expect(idle.terminated).toBe(true);
    expect(sum(idle.rewards)).toBe(0);
  });

  it('pays +1 per apple and regrows an eaten apple after respawnEvery + 1 steps', () => {
    const env = new PassiveVisualMatch({ ...SHORT, explorePhaseSteps: 1, applePhaseSteps: 40, respawnEvery: 5, numApples: 22 });
    env.reset({ seed: 2 });
    env.step(STAY_SOUTH); // phase 1 ends
    const { board, agent } = env.snapshot;
    expect(board.filter((c) => c === Cell.Apple).length).toBe(22);
    // Every spot holds an apple; the start's west-west neighbour (5, 3) is one.
    expect(board[agent.row * BOARD_COLS + agent.col - 2]).toBe(Cell.Apple);
    expect(env.step(2).reward).toBe(0); // west onto an empty square
    expect(env.step(2).reward).toBe(1); // west onto the apple at (5, 3)
    const spot = 5 * BOARD_COLS + 3;
    expect(env.snapshot.board[spot]).toBe(Cell.Empty);
    env.step(3); // east, off the spot (phase step 3)
    // Eaten at phase step 2, the apple is back once the phase step exceeds 2 + 5: at step 8.
    for (let step = 4; step <= 9; step++) {
      expect(env.step(STAY_SOUTH).reward).toBe(0);
      expect(env.snapshot.board[spot] === Cell.Apple).toBe(step >= 8);
    }
  });

  it('is deterministic under a seed and renders ansi and rgb_array', () => {
    const a = rollout(new PassiveVisualMatch(SHORT), 5);
    const b = rollout(new PassiveVisualMatch(SHORT), 5);
    expect(a).toEqual(b);
    expect(rollout(new PassiveVisualMatch(SHORT), 6).obs).not.toEqual(a.obs);

    const env = make('PassiveVisualMatch-v0', { renderMode: 'rgb_array', applePhaseSteps: 5 }).unwrapped as PassiveVisualMatch;
    env.reset({ seed: 1 });
    const img = env.render() as RgbImage;
    expect([img.width, img.height, img.data.length]).toEqual([88, 56, 88 * 56 * 3]);
    const cue = find(env.snapshot.board, env.cue);
    const px = ((cue.row * 8 + 4) * 88 + cue.col * 8 + 4) * 3;
    const rgb = { [Cell.Red]: [255, 0, 0], [Cell.Green]: [0, 255, 0], [Cell.Blue]: [0, 0, 255] }[env.cue];
    expect(Array.from(img.data.subarray(px, px + 3))).toEqual(rgb);
    env.renderMode = 'ansi';
    expect((env.render() as string).split('\n').length).toBe(BOARD_ROWS + 1);
  });

  it('keeps the paper setting available: 15 / 750 / 15 steps', () => {
    const env = make('PassiveVisualMatch-v0').unwrapped as PassiveVisualMatch;
    expect(env.phaseSteps).toEqual([15, 750, 15]);
    expect(env.episodeLength).toBe(780);
    expect((make('PassiveVisualMatchShort-v0').unwrapped as PassiveVisualMatch).episodeLength).toBe(90);
  });
});

describe('Key-to-Door', () => {
  /** Phase 1: fetch the key if `fetch`; phase 3: walk to the door; elsewhere bump south. */
  function policy(env: KeyToDoor, fetch: boolean): (t: number) => number {
    let plan: number[] = [];
    let planned = -1;
    return () => {
      const { phase, board, agent } = env.snapshot;
      if (phase !== planned) {
        planned = phase;
        plan =
          phase === 0 && fetch
            ? pathActions(board, agent, find(board, Cell.Key), (c) => c === Cell.Empty)
            : phase === 2
              ? pathActions(board, agent, find(board, Cell.Door), (c) => c === Cell.Empty)
              : [];
      }
      return plan.shift() ?? STAY_SOUTH;
    };
  }

  it('opens the door for the final reward only with the key', () => {
    const env = new KeyToDoor(SHORT);
    for (let seed = 0; seed < 8; seed++) {
      const ep = rollout(env, seed, policy(env, true));
      expect(ep.terminated).toBe(true);
      expect(ep.rewards.at(-1)).toBe(5);
      expect(ep.rewards.length).toBe(15 + 12 + 2);
      expect(env.hasKey).toBe(false); // used up

      const noKey = rollout(env, seed, policy(env, false));
      expect(noKey.rewards.length).toBe(15 + 12 + 15); // the door blocks; the phase runs out
      expect(sum(noKey.rewards)).toBe(0);
    }
  });

  it('hides the key state from phase-3 observations', () => {
    const env = new KeyToDoor(SHORT);
    const withKey = rollout(env, 3, policy(env, true));
    const without = rollout(env, 3, policy(env, false));
    expect(withKey.obs[15 + 12]).toEqual(without.obs[15 + 12]);
  });

  it('registers ids with the paper and short distractor phases', () => {
    expect((make('KeyToDoor-v0').unwrapped as KeyToDoor).episodeLength).toBe(780);
    const short = make('KeyToDoorShort-v0', { finalReward: 10 }).unwrapped as KeyToDoor;
    expect(short.episodeLength).toBe(90);
    expect(short.finalReward).toBe(10);
    expect(() => make('KeyToDoor-v0', { applePhaseSteps: 0 })).toThrow(/applePhaseSteps/);
  });
});
