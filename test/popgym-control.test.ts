import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import type { Env } from '../envs/env.js';
import { make } from '../envs/registry.js';
import { Box, Discrete, MultiDiscrete } from '../envs/spaces.js';
import {
  cartPoleStep,
  NoisyPositionOnlyCartPole,
  PartialCartPole,
  PositionOnlyCartPole,
  RANDOM_EPISODE_LENGTH,
  VelocityOnlyCartPole,
} from '../envs/popgym/cartpole.js';
import { LabyrinthEscape, LabyrinthExplore, RANDOM_RETURNS } from '../envs/popgym/labyrinth.js';
import { generateMaze, MazeCell, shortestPath, type Point } from '../envs/popgym/maze-generator.js';
import { pendulumStep, PositionOnlyPendulum, RANDOM_PENDULUM_RETURN } from '../envs/popgym/pendulum.js';
import { POPGYM_CONTROL } from '../envs/popgym/register-control.js';

const LEVELS = ['Easy', 'Medium', 'Hard'];

interface Episode {
  obs: unknown[];
  rewards: number[];
  terminated: boolean;
  truncated: boolean;
}

/** Runs one episode with `policy` (default: uniform random actions from `policySeed`). */
function rollout(env: Env, seed: number, policy?: (obs: unknown, t: number) => unknown, policySeed = 'p'): Episode {
  const rng = seedrandom(policySeed);
  const first = env.reset({ seed });
  const ep: Episode = { obs: [first.obs], rewards: [], terminated: false, truncated: false };
  let obs = first.obs;
  for (let t = 0; ; t++) {
    const r = env.step(policy ? policy(obs, t) : env.actionSpace.sample(rng));
    ep.obs.push(r.obs);
    ep.rewards.push(r.reward);
    obs = r.obs;
    if (r.terminated || r.truncated) {
      ep.terminated = r.terminated;
      ep.truncated = r.truncated;
      return ep;
    }
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Mean and standard error of the uniform-random policy's return over `n` episodes. */
function randomReturn(env: Env, n: number, seed0: number): { mean: number; se: number } {
  const returns = Array.from({ length: n }, (_, i) => sum(rollout(env, seed0 + i, undefined, `r${i}`).rewards));
  const mean = sum(returns) / n;
  const sd = Math.sqrt(sum(returns.map((r) => (r - mean) ** 2)) / (n - 1));
  return { mean, se: sd / Math.sqrt(n) };
}

describe('registration', () => {
  it('registers every env at every level with POPGym spaces', () => {
    for (const entry of POPGYM_CONTROL) {
      for (const level of LEVELS) {
        const env = make(`popgym-${entry.name}${level}-v0`);
        const { obs } = env.reset({ seed: 3 });
        expect(env.observationSpace.contains(obs)).toBe(true);
        for (let i = 0; i < 5; i++) {
          const r = env.step(env.actionSpace.sample(seedrandom(String(i))));
          expect(env.observationSpace.contains(r.obs)).toBe(true);
          if (r.terminated || r.truncated) break;
        }
        if (entry.name.includes('CartPole')) {
          expect(env.observationSpace).toBeInstanceOf(Box);
          expect(env.actionSpace).toEqual(new Discrete(2));
        } else if (entry.name.includes('Pendulum')) {
          expect(env.observationSpace.toJSON()).toEqual(new Box(-1, 1, [2]).toJSON());
          expect(env.actionSpace.toJSON()).toEqual(new Box(-2, 2, [1]).toJSON());
        } else {
          expect(env.observationSpace.toJSON()).toEqual(new MultiDiscrete(Array(10).fill(5)).toJSON());
          expect(env.actionSpace).toEqual(new Discrete(4));
        }
      }
    }
  });

  it('accepts difficulty kwargs on the base ids and rejects bad values', () => {
    expect((make('popgym-PositionOnlyCartPole-v0', { maxEpisodeLength: 50 }).unwrapped as PartialCartPole).maxEpisodeLength).toBe(50);
    expect(() => make('popgym-PositionOnlyCartPole-v0', { maxEpisodeLength: -3 })).toThrow(/maxEpisodeLength/);
    expect(() => make('popgym-LabyrinthEscape-v0', { mazeDims: [9, 9] })).toThrow(/even/);
    expect(() => make('popgym-NoisyPositionOnlyPendulum-v0', { noiseSigma: 'x' })).toThrow(/noiseSigma/);
  });

  it('is deterministic under a seed', () => {
    for (const entry of POPGYM_CONTROL) {
      const id = `popgym-${entry.name}Easy-v0`;
      const a = rollout(make(id), 11);
      const b = rollout(make(id), 11);
      const c = rollout(make(id), 12);
      expect(a).toEqual(b);
      expect(c.obs).not.toEqual(a.obs);
    }
  });
});

describe('CartPole', () => {
  it('matches one explicit Euler step of the cart-pole equations', () => {
    const s = { x: 0.1, xDot: -0.2, theta: 0.05, thetaDot: 0.3 };
    // Gymnasium's constants: g 9.8, cart 1.0, pole 0.1, half-length 0.5, force 10, tau 0.02; action 1 = +10 N.
    const cos = Math.cos(0.05);
    const sin = Math.sin(0.05);
    const temp = (10 + 0.1 * 0.5 * 0.3 ** 2 * sin) / 1.1;
    const thetaAcc = (9.8 * sin - cos * temp) / (0.5 * (4 / 3 - (0.1 * cos ** 2) / 1.1));
    const xAcc = temp - (0.1 * 0.5 * thetaAcc * cos) / 1.1;
    const next = cartPoleStep(s, 1);
    expect(next.x).toBeCloseTo(0.1 + 0.02 * -0.2, 14);
    expect(next.xDot).toBeCloseTo(-0.2 + 0.02 * xAcc, 14);
    expect(next.theta).toBeCloseTo(0.05 + 0.02 * 0.3, 14);
    expect(next.thetaDot).toBeCloseTo(0.3 + 0.02 * thetaAcc, 14);
    // Pushing left mirrors pushing right from the mirrored state.
    const mirrored = cartPoleStep({ x: -0.1, xDot: 0.2, theta: -0.05, thetaDot: -0.3 }, 0);
    expect(mirrored.thetaDot).toBeCloseTo(-next.thetaDot, 14);
    expect(mirrored.xDot).toBeCloseTo(-next.xDot, 14);
  });

  it("observes positions or velocities after every step, and POPGym's positions at reset", () => {
    for (const env of [new PositionOnlyCartPole(), new VelocityOnlyCartPole()]) {
      const pick = (s: typeof env.physicalState) => (env.view === 'position' ? [s.x, s.theta] : [s.xDot, s.thetaDot]);
      const { obs } = env.reset({ seed: 5 });
      const s0 = env.physicalState;
      expect(Array.from(obs)).toEqual(Array.from(Float32Array.from([s0.x, s0.theta])));
      for (let t = 0; t < 10; t++) {
        const before = { ...env.physicalState };
        const r = env.step(t % 2);
        expect({ ...env.physicalState }).toEqual(cartPoleStep(before, t % 2));
        expect(Array.from(r.obs)).toEqual(Array.from(Float32Array.from(pick(env.physicalState))));
      }
    }
  });

  it('starts uniformly within ±0.05', () => {
    const env = new PositionOnlyCartPole();
    for (let seed = 0; seed < 50; seed++) {
      env.reset({ seed });
      for (const v of Object.values(env.physicalState)) expect(Math.abs(v)).toBeLessThanOrEqual(0.05);
    }
  });

  it('truncates at L per difficulty with return 1, and pays 1/L on the falling step', () => {
    // A privileged PD controller balances indefinitely.
    for (const [level, L] of [
      ['Easy', 200],
      ['Medium', 400],
      ['Hard', 600],
    ] as const) {
      for (const name of ['PositionOnlyCartPole', 'VelocityOnlyCartPole']) {
        const env = make(`popgym-${name}${level}-v0`).unwrapped as PartialCartPole;
        const balance = () => {
          const s = env.physicalState;
          return s.theta + 0.5 * s.thetaDot + 0.05 * s.x + 0.1 * s.xDot > 0 ? 1 : 0;
        };
        const ep = rollout(env, 1, balance);
        expect(ep.rewards.length).toBe(L);
        expect(ep.truncated).toBe(true);
        expect(ep.terminated).toBe(false);
        expect(sum(ep.rewards)).toBeCloseTo(1, 10);
      }
    }
    for (const level of LEVELS) expect((make(`popgym-NoisyPositionOnlyCartPole${level}-v0`).unwrapped as PartialCartPole).maxEpisodeLength).toBe(200);
    // Always pushing right fails early; every step, the last included, pays 1/L.
    const env = new PositionOnlyCartPole({ maxEpisodeLength: 400 });
    const ep = rollout(env, 2, () => 1);
    expect(ep.terminated).toBe(true);
    expect(ep.rewards.length).toBeLessThan(100);
    for (const r of ep.rewards) expect(r).toBe(1 / 400);
  });

  it('adds clipped Gaussian noise of the level σ to positions', () => {
    for (const [level, sigma] of [
      ['Easy', 0.1],
      ['Hard', 0.3],
    ] as const) {
      const env = make(`popgym-NoisyPositionOnlyCartPole${level}-v0`).unwrapped as NoisyPositionOnlyCartPole;
      const errors: number[] = [];
      for (let seed = 0; seed < 1000; seed++) {
        const { obs } = env.reset({ seed });
        errors.push(obs[0] - env.physicalState.x);
        expect(env.observationSpace.contains(obs)).toBe(true);
      }
      const mean = sum(errors) / errors.length;
      const sd = Math.sqrt(sum(errors.map((e) => (e - mean) ** 2)) / errors.length);
      expect(Math.abs(mean)).toBeLessThan((4 * sigma) / Math.sqrt(1000));
      expect(sd / sigma).toBeGreaterThan(0.9);
      expect(sd / sigma).toBeLessThan(1.1);
    }
  });

  it("states return bounds that match the random policy's mean", () => {
    const env = new PositionOnlyCartPole();
    expect(env.returnBounds.optimal).toBe(1);
    const { mean, se } = randomReturn(env, 3000, 100_000);
    expect(Math.abs(mean - env.returnBounds.random)).toBeLessThan(4 * se);
    expect(env.returnBounds.random).toBeCloseTo(RANDOM_EPISODE_LENGTH / 200, 12);
  });
});

describe('Pendulum', () => {
  it('matches one semi-implicit Euler step of the pendulum equations', () => {
    // g 10, m 1, l 1, dt 0.05: θ̇' = θ̇ + (3g/2l·sin θ + 3/(ml²)·u)·dt, then θ' = θ + θ̇'·dt.
    const thetaDot = -0.5 + (15 * Math.sin(0.3) + 3 * 1.5) * 0.05;
    const next = pendulumStep({ theta: 0.3, thetaDot: -0.5 }, 1.5);
    expect(next.thetaDot).toBeCloseTo(thetaDot, 14);
    expect(next.theta).toBeCloseTo(0.3 + thetaDot * 0.05, 14);
    // Speed clips at 8, torque at 2.
    expect(pendulumStep({ theta: 1.5, thetaDot: 7.9 }, 2).thetaDot).toBe(8);
    expect(pendulumStep({ theta: 0.2, thetaDot: 0 }, 5)).toEqual(pendulumStep({ theta: 0.2, thetaDot: 0 }, 2));
  });

  it('observes (cos θ, sin θ) and pays the rescaled cost / L', () => {
    const env = new PositionOnlyPendulum({ maxEpisodeLength: 150 });
    const { obs } = env.reset({ seed: 9 });
    const s0 = { ...env.physicalState };
    expect(Math.abs(s0.theta)).toBeLessThanOrEqual(Math.PI);
    expect(Math.abs(s0.thetaDot)).toBeLessThanOrEqual(1);
    expect(Array.from(obs)).toEqual(Array.from(Float32Array.of(Math.cos(s0.theta), Math.sin(s0.theta))));
    const r = env.step(Float32Array.of(-1.25));
    // Cost with θ wrapped to [−π, π): θ² + 0.1·θ̇² + 0.001·u²; POPGym maps [−16.2736044, 0] to [−1, 1], then / L.
    const wrapped = ((((s0.theta + Math.PI) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI)) - Math.PI;
    const cost = wrapped ** 2 + 0.1 * s0.thetaDot ** 2 + 0.001 * 1.25 ** 2;
    const half = 16.2736044 / 2;
    expect(r.reward).toBeCloseTo((-cost + half) / half / 150, 8);
    expect(env.physicalState).toEqual(pendulumStep(s0, Math.fround(-1.25)));
  });

  it('truncates at 200/150/100 steps, never terminates, and keeps rewards within ±1/L', () => {
    for (const [level, L] of [
      ['Easy', 200],
      ['Medium', 150],
      ['Hard', 100],
    ] as const) {
      const ep = rollout(make(`popgym-PositionOnlyPendulum${level}-v0`), 4);
      expect(ep.rewards.length).toBe(L);
      expect(ep.truncated).toBe(true);
      expect(ep.terminated).toBe(false);
      for (const r of ep.rewards) expect(Math.abs(r)).toBeLessThanOrEqual(1 / L + 1e-12);
      const noisy = rollout(make(`popgym-NoisyPositionOnlyPendulum${level}-v0`), 4);
      expect(noisy.rewards.length).toBe(200);
    }
  });

  it("states return bounds that match the random policy's mean", () => {
    const env = new PositionOnlyPendulum();
    expect(env.returnBounds.optimal).toBe(1);
    const { mean, se } = randomReturn(env, 400, 200_000);
    expect(Math.abs(mean - RANDOM_PENDULUM_RETURN)).toBeLessThan(4 * se + 0.006);
  });
});

/** Actions from a path: 0 left, 1 right, 2 up, 3 down. */
function actionTowards(from: Point, to: Point): number {
  if (to.col < from.col) return 0;
  if (to.col > from.col) return 1;
  return to.row < from.row ? 2 : 3;
}

describe('Labyrinths', () => {
  it('generates perfect mazes whose exit is reachable', () => {
    for (const n of [10, 14, 18]) {
      for (let seed = 0; seed < 30; seed++) {
        const maze = generateMaze([n, n], seedrandom(`m${seed}`));
        expect(maze.rows).toBe(n + 1);
        const cells = (n / 2) ** 2;
        const free = maze.grid.reduce((k, v) => k + (v === MazeCell.Free ? 1 : 0), 0);
        // A spanning tree over the cells: every cell plus one passage per tree edge.
        expect(free).toBe(2 * cells - 1);
        const open = (i: number) =>
          maze.grid[i] !== MazeCell.Wall || i === maze.end.row * maze.cols + maze.end.col || i === maze.start.row * maze.cols + maze.start.col;
        expect(shortestPath(maze.rows, maze.cols, open, maze.start, maze.end)).toBeDefined();
        // Entrances sit on opposite outer walls.
        const onBorder = (p: Point) => p.row === 0 || p.row === n || p.col === 0 || p.col === n;
        expect(onBorder(maze.start) && onBorder(maze.end)).toBe(true);
        const { start: a, end: b } = maze;
        const opposite =
          (a.row === 0 && b.row === n) || (a.row === n && b.row === 0) || (a.col === 0 && b.col === n) || (a.col === n && b.col === 0);
        expect(opposite).toBe(true);
      }
    }
  });

  it('Escape: a BFS policy with the map reaches the exit with return 1 − d/L', () => {
    for (const level of LEVELS) {
      const env = make(`popgym-LabyrinthEscape${level}-v0`).unwrapped as LabyrinthEscape;
      for (let seed = 0; seed < 5; seed++) {
        env.reset({ seed });
        const { maze, position } = env.view;
        const path = shortestPath(maze.rows, maze.cols, (i) => maze.grid[i] !== MazeCell.Wall, position, maze.end)!;
        expect(path).toBeDefined();
        const ep = rollout(env, seed, (_obs, t) => actionTowards(path[t], path[t + 1]));
        const d = path.length - 1;
        expect(ep.terminated).toBe(true);
        expect(ep.rewards.length).toBe(d);
        expect(sum(ep.rewards)).toBeCloseTo(1 - d / 1024, 12);
      }
    }
  });

  it('observes the 3×3 neighbourhood in place (off-grid squares are walls) and the previous action', () => {
    const env = new LabyrinthEscape();
    for (let seed = 0; seed < 20; seed++) {
      const { obs } = env.reset({ seed });
      const { maze, position } = env.view;
      expect(obs[4]).toBe(MazeCell.Start);
      expect(obs[9]).toBe(4);
      for (let k = 0; k < 9; k++) {
        const r = position.row + Math.floor(k / 3) - 1;
        const c = position.col + (k % 3) - 1;
        const inside = r >= 0 && r < maze.rows && c >= 0 && c < maze.cols;
        expect(obs[k]).toBe(inside ? maze.grid[r * maze.cols + c] : MazeCell.Wall);
      }
      const r = env.step(3);
      expect(r.obs[9]).toBe(3);
    }
  });

  it('Explore: standing still truncates at 1024 with return −1; a DFS policy explores everything for +1', () => {
    for (const level of LEVELS) {
      const env = make(`popgym-LabyrinthExplore${level}-v0`).unwrapped as LabyrinthExplore;
      env.reset({ seed: 1 });
      const { start } = env.view.maze;
      // From an entrance on the outer wall, stepping outward is blocked.
      const outward = start.row === 0 ? 2 : start.col === 0 ? 0 : start.row === env.view.maze.rows - 1 ? 3 : 1;
      const still = rollout(env, 1, () => outward);
      expect(still.rewards.length).toBe(1024);
      expect(still.truncated).toBe(true);
      expect(sum(still.rewards)).toBeCloseTo(-1, 10);
    }
    // Walk to the nearest unexplored square each time (privileged BFS); the new-square rewards sum to 1.
    const env = new LabyrinthExplore();
    const nearestUnexplored = (): number => {
      const { maze, position, explored } = env.view;
      let best: Point[] | undefined;
      for (let i = 0; i < maze.grid.length; i++) {
        if (explored[i] || maze.grid[i] === MazeCell.Wall) continue;
        const p = shortestPath(maze.rows, maze.cols, (j) => maze.grid[j] !== MazeCell.Wall, position, {
          row: Math.floor(i / maze.cols),
          col: i % maze.cols,
        });
        if (p && (!best || p.length < best.length)) best = p;
      }
      return actionTowards(best![0], best![1]);
    };
    const ep = rollout(env, 7, nearestUnexplored);
    expect(ep.terminated).toBe(true);
    const positive = ep.rewards.filter((r) => r > 0);
    expect(sum(positive)).toBeCloseTo(1, 10);
    expect(sum(ep.rewards)).toBeLessThan(1);
    expect(sum(ep.rewards)).toBeGreaterThan(0.8);
  });

  it("states return bounds that match the random policy's mean", () => {
    const env = new LabyrinthExplore();
    expect(env.returnBounds?.random).toBe(RANDOM_RETURNS.explore[10]);
    const { mean, se } = randomReturn(env, 200, 300_000);
    expect(Math.abs(mean - RANDOM_RETURNS.explore[10])).toBeLessThan(4 * se + 0.006);
    expect(new LabyrinthEscape({ mazeDims: [6, 6] }).returnBounds).toBeUndefined();
  });

  it('renders ansi text of the maze', () => {
    const env = new LabyrinthEscape({ mazeDims: [10, 10] });
    env.reset({ seed: 3 });
    const lines = (env.render() as string).split('\n');
    expect(lines.length).toBe(11);
    expect(lines.every((l) => l.length === 11)).toBe(true);
    expect(env.render()).toContain('A');
    expect(env.render()).toContain('G');
  });
});
