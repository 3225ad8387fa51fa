/**
 * Reference returns: every env's bounds state their sources, only bounds a memory agent can reach are marked
 * reachable, and the reachable optima that are not exactly 1 are reproduced by agents that see only observations.
 */
import { describe, expect, it } from 'vitest';
import { returnBoundsOf } from '../envs/env.js';
import { make, registeredIds } from '../envs/registry.js';
import '../envs/index.js';
import { PartialCartPole } from '../envs/popgym/cartpole.js';
import { countingReturn, HigherLower, HIGHER, HIGHER_LOWER_LEVELS, LOWER } from '../envs/popgym/higher-lower.js';

/** Envs whose stated optimum a memory agent reaches; every other env with bounds must say why it is unreachable. */
const REACHABLE = /^(popgym-(Autoencode|RepeatFirst|RepeatPrevious|CountRecall|HigherLower|PositionOnlyCartPole|VelocityOnlyCartPole)|PassiveTMaze|ActiveTMaze)/;

describe('bounds of every registered env', () => {
  it.each(registeredIds().filter((id) => returnBoundsOf(make(id))))('%s: sources and reachability', (id) => {
    const b = returnBoundsOf(make(id))!;
    expect(b.reachable).toBe(REACHABLE.test(id));
    expect(b.source.random).toMatch(/^(analytic|measured)/);
    expect(b.source.optimal).toMatch(b.reachable ? /^(analytic|measured)/ : /^(oracle|upper bound)/);
    expect(b.random).toBeLessThan(b.optimal);
  });
});

describe('HigherLower: perfect card counting', () => {
  /** Plays `episodes` episodes guessing from the counts of unseen ranks; returns the mean and its standard error. */
  function countingPolicyReturn(env: HigherLower, episodes: number): { mean: number; se: number } {
    const returns: number[] = [];
    for (let seed = 0; seed < episodes; seed++) {
      const unseen = new Array<number>(13).fill(4 * env.numDecks);
      let rank = env.reset({ seed }).obs;
      let ret = 0;
      for (;;) {
        unseen[rank]--;
        let higher = 0;
        let lower = 0;
        unseen.forEach((n, r) => (r > rank ? (higher += n) : r < rank ? (lower += n) : 0));
        const step = env.step(higher >= lower ? HIGHER : LOWER);
        ret += step.reward;
        rank = step.obs;
        if (step.terminated) break;
      }
      returns.push(ret);
    }
    const mean = returns.reduce((a, b) => a + b, 0) / episodes;
    const variance = returns.reduce((a, r) => a + (r - mean) ** 2, 0) / (episodes - 1);
    return { mean, se: Math.sqrt(variance / episodes) };
  }

  it.each(Object.entries(HIGHER_LOWER_LEVELS))('%s: the stated optimum is what a counting agent earns', (_, options) => {
    const env = new HigherLower(options);
    const optimal = countingReturn(options.numDecks);
    expect(env.returnBounds.optimal).toBe(optimal);
    const { mean, se } = countingPolicyReturn(env, 2000);
    expect(Math.abs(mean - optimal)).toBeLessThan(4 * se);
  });

  it('lies between memoryless play (336/676 at any d) and the next-card oracle (12/13)', () => {
    for (const d of [1, 2, 3]) {
      expect(countingReturn(d)).toBeGreaterThan(336 / 676);
      expect(countingReturn(d)).toBeLessThan(12 / 13);
    }
    // The values the docs quote.
    expect([1, 2, 3].map((d) => countingReturn(d).toFixed(3))).toEqual(['0.528', '0.516', '0.511']);
  });
});

describe('CartPole without noise: the optimum 1 is reachable from observations alone', () => {
  /** A PD controller on estimated state, pushing right when θ + 0.5θ̇ + 0.05x + 0.1ẋ > 0. */
  const push = (x: number, xDot: number, theta: number, thetaDot: number) =>
    theta + 0.5 * thetaDot + 0.05 * x + 0.1 * xDot > 0 ? 1 : 0;
  const TAU = 0.02;

  /** Estimates the hidden half of the state from observations: Euler's x_t = x_{t−1} + τ ẋ_{t−1} either way. */
  function controller(view: 'position' | 'velocity'): (obs: Float32Array, t: number) => number {
    let prev = [0, 0];
    let pos = [0, 0];
    return (obs, t) => {
      if (view === 'position') {
        const vel = t === 0 ? [0, 0] : [(obs[0] - prev[0]) / TAU, (obs[1] - prev[1]) / TAU];
        prev = [obs[0], obs[1]];
        return push(obs[0], vel[0], obs[1], vel[1]);
      }
      // Reset shows [x, θ] (POPGym); steps show [ẋ, θ̇]; ẋ₀ is never seen, so the first step assumes 0.
      if (t === 0) pos = [obs[0], obs[1]];
      else pos = [pos[0] + TAU * prev[0], pos[1] + TAU * prev[1]];
      prev = t === 0 ? [0, 0] : [obs[0], obs[1]];
      return push(pos[0], prev[0], pos[1], prev[1]);
    };
  }

  it.each(['PositionOnlyCartPole', 'VelocityOnlyCartPole'])('%s balances every seeded episode at every level', (name) => {
    for (const level of ['Easy', 'Medium', 'Hard']) {
      const env = make(`popgym-${name}${level}-v0`).unwrapped as PartialCartPole;
      for (let seed = 0; seed < 20; seed++) {
        const policy = controller(env.view);
        let obs = env.reset({ seed }).obs;
        let ret = 0;
        for (let t = 0; ; t++) {
          const r = env.step(policy(obs, t));
          ret += r.reward;
          obs = r.obs;
          if (r.terminated || r.truncated) break;
        }
        expect(ret).toBeCloseTo(env.returnBounds.optimal, 10);
      }
    }
  });
});
