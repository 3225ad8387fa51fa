/** POPGym game/memory ports: spaces, lengths, determinism, reward bounds, bad input, registry (all nine × 3 levels). */
import { describe, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import type { Env } from '../envs/env.js';
import { envSpec, make, registeredIds } from '../envs/registry.js';
import { Discrete, MultiDiscrete, Tuple, type Space } from '../envs/spaces.js';
import { DIFFICULTIES, type Difficulty, type PopgymGameEnv } from '../envs/popgym/game-env.js';
import '../envs/popgym/register-games.js';

type Game = PopgymGameEnv<unknown, unknown>;

interface LevelSpec {
  obs: Space;
  act: Space;
  /** Episode length (exact when `fixedLength`, else the maximum). */
  length: number;
  /** Lowest possible return (the highest is 1 for all nine). */
  minReturn: number;
}

const D = (n: number) => new Discrete(n);
const MD = (...nvec: number[]) => new MultiDiscrete(nvec);
const byLevel = (f: (i: number) => LevelSpec) =>
  Object.fromEntries(DIFFICULTIES.map((d, i) => [d, f(i)])) as Record<Difficulty, LevelSpec>;

const SPECS: Record<string, { fixedLength: boolean; levels: Record<Difficulty, LevelSpec> }> = {
  Autoencode: {
    fixedLength: true,
    levels: byLevel((i) => ({ obs: new Tuple([D(2), D(4)]), act: D(4), length: [103, 207, 311][i], minReturn: -1 })),
  },
  Battleship: {
    fixedLength: false,
    levels: byLevel((i) => {
      const b = [8, 10, 12][i];
      return { obs: D(2), act: MD(b, b), length: b * b, minReturn: -(b * b) / (b * b - 12) };
    }),
  },
  Concentration: {
    fixedLength: false,
    levels: byLevel((i) => {
      const [n, v] = [[52, 2], [104, 2], [52, 13]][i];
      return { obs: MD(...new Array<number>(n).fill(v + 1)), act: D(n), length: [104, 208, 104][i], minReturn: -1 };
    }),
  },
  CountRecall: {
    fixedLength: true,
    levels: byLevel((i) => {
      const v = [2, 4, 13][i];
      return { obs: MD(v, v), act: D([27, 27, 17][i]), length: [51, 103, 207][i], minReturn: -1 };
    }),
  },
  HigherLower: {
    fixedLength: true,
    levels: byLevel((i) => ({ obs: D(13), act: D(2), length: [51, 103, 155][i], minReturn: -1 })),
  },
  MineSweeper: {
    fixedLength: false,
    levels: byLevel((i) => {
      const r = [4, 6, 8][i];
      return { obs: D([3, 7, 10][i]), act: MD(r, r), length: [14, 30, 54][i], minReturn: -1 };
    }),
  },
  MultiarmedBandit: {
    fixedLength: true,
    levels: byLevel((i) => ({ obs: D(2), act: D([10, 20, 30][i]), length: [200, 400, 600][i], minReturn: -1 })),
  },
  RepeatFirst: {
    fixedLength: true,
    levels: byLevel((i) => ({ obs: D(4), act: D(4), length: [51, 415, 831][i], minReturn: -1 })),
  },
  RepeatPrevious: {
    fixedLength: true,
    levels: byLevel((i) => ({ obs: D(4), act: D(4), length: [51, 103, 155][i], minReturn: -1 })),
  },
};

function makeGame(id: string): Game {
  return make(id).unwrapped as Game;
}

/** Plays one episode with uniformly random actions from `rng`; returns everything seen. */
function rollout(env: Env, seed: number, rng: () => number) {
  const first = env.reset({ seed });
  const obs: unknown[] = [first.obs];
  const rewards: number[] = [];
  let valid = env.observationSpace.contains(first.obs);
  for (;;) {
    const r = env.step(env.actionSpace.sample(rng));
    valid &&= env.observationSpace.contains(r.obs);
    obs.push(r.obs);
    rewards.push(r.reward);
    if (r.terminated || r.truncated) {
      expect(valid).toBe(true);
      return { obs, rewards, terminated: r.terminated, truncated: r.truncated };
    }
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const serial = (xs: unknown[]) => JSON.stringify(xs, (_k, v) => (ArrayBuffer.isView(v) ? Array.from(v as Int32Array) : v));

it('registers a base id and three difficulty ids per game', () => {
  const ids = registeredIds();
  for (const name of Object.keys(SPECS))
    for (const suffix of ['', ...DIFFICULTIES]) expect(ids).toContain(`popgym-${name}${suffix}-v0`);
});

describe.each(Object.entries(SPECS))('%s', (name, spec) => {
  describe.each(DIFFICULTIES.map((d) => [d] as const))('%s', (level) => {
    const id = `popgym-${name}${level}-v0`;
    const want = spec.levels[level];

    it('has POPGym spaces, ansi rendering and return bounds', () => {
      const env = makeGame(id);
      expect(env.observationSpace.equals(want.obs)).toBe(true);
      expect(env.actionSpace.equals(want.act)).toBe(true);
      expect(env.maxEpisodeLength).toBe(want.length);
      expect(env.metadata.renderModes).toContain('ansi');
      const { optimal, random } = env.returnBounds;
      expect(Number.isFinite(optimal) && Number.isFinite(random)).toBe(true);
      expect(random).toBeLessThan(optimal);
      expect(optimal).toBeLessThanOrEqual(1);
      expect(random).toBeGreaterThanOrEqual(-1);
      const first = env.reset({ seed: 3 });
      expect(env.observationSpace.contains(first.obs)).toBe(true);
      expect(env.render()).toMatch(/\S/);
      env.step(env.actionSpace.sample(seedrandom('a')));
      expect(env.render()).toMatch(new RegExp(name));
    });

    it('is deterministic under a seed, and seeds matter', () => {
      const env = makeGame(id);
      const a = rollout(env, 7, seedrandom('x'));
      const b = rollout(makeGame(id), 7, seedrandom('x'));
      const c = rollout(env, 8, seedrandom('x'));
      expect(serial(a.obs)).toBe(serial(b.obs));
      expect(a.rewards).toEqual(b.rewards);
      expect(serial(c.obs) + serial(c.rewards)).not.toBe(serial(a.obs) + serial(a.rewards));
    });

    it('runs the POPGym episode length with returns in range; random play matches returnBounds.random', () => {
      const env = makeGame(id);
      const rng = seedrandom(`${id}-random`);
      const episodes = Math.max(60, Math.min(200, Math.floor(30_000 / want.length)));
      const returns: number[] = [];
      for (let e = 0; e < episodes; e++) {
        const ep = rollout(env, 1000 + e, rng);
        if (spec.fixedLength) expect(ep.rewards.length).toBe(want.length);
        else expect(ep.rewards.length).toBeLessThanOrEqual(want.length);
        if (ep.rewards.length === want.length && !ep.terminated) expect(ep.truncated).toBe(true);
        const ret = sum(ep.rewards);
        expect(ret).toBeGreaterThanOrEqual(want.minReturn - 1e-9);
        expect(ret).toBeLessThanOrEqual(1 + 1e-9);
        returns.push(ret);
      }
      const mean = sum(returns) / episodes;
      const sd = Math.sqrt(sum(returns.map((r) => (r - mean) ** 2)) / (episodes - 1));
      // 4 standard errors, plus a little for the Monte Carlo / approximate reference values.
      expect(Math.abs(mean - env.returnBounds.random)).toBeLessThan((4 * sd) / Math.sqrt(episodes) + 0.01);
    });

    it('rejects bad actions, stepping before reset and after the end', () => {
      const env = make(id); // the checks are make()'s OrderEnforcing
      expect(() => env.step(env.actionSpace.sample(seedrandom('b')))).toThrow(/reset/);
      env.reset({ seed: 1 });
      const bad: unknown[] =
        want.act instanceof Discrete
          ? [-1, want.act.n, 0.5, '0', null]
          : [Int32Array.of((want.act as MultiDiscrete).nvec[0], 0), Int32Array.of(0, -1), Int32Array.of(0), [0, 0]];
      for (const a of bad) expect(() => env.step(a)).toThrow(/not in the action space/);
      const rng = seedrandom('c');
      for (;;) {
        const r = env.step(env.actionSpace.sample(rng));
        if (r.terminated || r.truncated) break;
      }
      expect(() => env.step(env.actionSpace.sample(rng))).toThrow(/episode ended/);
    });
  });

  it('rejects kwargs on difficulty ids and bad values on the base id', () => {
    expect(() => make(`popgym-${name}Easy-v0`, { numDecks: 2 })).toThrow(/Unknown kwarg/);
    const base = `popgym-${name}-v0`;
    const [key] = Object.keys(envSpec(base).kwargs ?? {});
    expect(key).toBeDefined();
    expect(() => make(base, { [key]: -3 })).toThrow(new RegExp(`'${key.replace(/[[\]]/g, '.')}'`));
  });
});

it('builds custom instances through the base ids', () => {
  expect((make('popgym-RepeatPrevious-v0', { numDecks: 2, k: 32 }).unwrapped as Game).maxEpisodeLength).toBe(103);
  expect((make('popgym-Battleship-v0', { boardSize: 6, shipSizes: [2, 2] }).unwrapped as Game).maxEpisodeLength).toBe(36);
  expect((make('popgym-MineSweeper-v0', { rows: 5, cols: 3, numMines: 4 }).unwrapped as Game).maxEpisodeLength).toBe(11);
  expect(() => make('popgym-CountRecall-v0', { deckType: 'jokers' })).toThrow(/'colors', 'suits', 'ranks'/);
  expect(() => make('popgym-Concentration-v0', { deckType: 'suits' })).toThrow(/deckType/);
  expect(() => make('popgym-RepeatPrevious-v0', { k: 52 })).toThrow(/option 'k' must be an integer in \[1, 51\]/);
  expect(() => make('popgym-Battleship-v0', { boardSize: 3 })).toThrow(/shipSizes\[3\]|ships cover/);
  expect(() => make('popgym-Battleship-v0', { boardSize: 4, shipSizes: [4, 4, 4, 4] })).toThrow(/ships cover 16 cells/);
});
