/**
 * Parity with POPGym's code (proroklab/popgym, envs/*.py) where the ports once differed: MineSweeper's truncation
 * flag, VelocityOnlyCartPole's reset observation, and the info dicts.
 */
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import type { Env, Info } from '../envs/env.js';
import { make } from '../envs/registry.js';
import '../envs/index.js';
import { VelocityOnlyCartPole } from '../envs/popgym/cartpole.js';
import { CountRecall, COUNT_RECALL_LEVELS } from '../envs/popgym/count-recall.js';
import { HigherLower } from '../envs/popgym/higher-lower.js';
import { MineSweeper, MINESWEEPER_LEVELS } from '../envs/popgym/minesweeper.js';
import { MultiarmedBandit } from '../envs/popgym/multiarmed-bandit.js';

describe('MineSweeper truncation (POPGym: truncated = at the step limit and not terminated)', () => {
  const env = new MineSweeper(MINESWEEPER_LEVELS.Easy);
  const cells = (mine: boolean) => {
    const out: Int32Array[] = [];
    for (let r = 0; r < env.rows; r++) for (let c = 0; c < env.cols; c++) if (env.isMine(r, c) === mine) out.push(Int32Array.of(r, c));
    return out;
  };
  const L = env.maxEpisodeLength;

  it('clearing the board on the last step terminates without truncating', () => {
    env.reset({ seed: 8 });
    const free = cells(false);
    let last = env.step(free[0]);
    for (let t = 1; t < L; t++) last = env.step(free[t]);
    expect([last.terminated, last.truncated]).toEqual([true, false]);
  });

  it('a mine on the last step terminates without truncating; running out of steps truncates', () => {
    env.reset({ seed: 8 });
    const [cell] = cells(false);
    const [mine] = cells(true);
    for (let t = 0; t < L - 1; t++) expect(env.step(cell)).toMatchObject({ terminated: false, truncated: false });
    expect(env.step(mine)).toMatchObject({ terminated: true, truncated: false });

    env.reset({ seed: 8 });
    for (let t = 0; t < L - 1; t++) env.step(cell);
    expect(env.step(cell)).toMatchObject({ terminated: false, truncated: true });
  });
});

describe('VelocityOnlyCartPole reset observation', () => {
  const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

  it("observes POPGym's positions [x, θ] at reset, velocities [ẋ, θ̇] after each step", () => {
    const env = make('popgym-VelocityOnlyCartPoleEasy-v0').unwrapped as VelocityOnlyCartPole;
    const { obs } = env.reset({ seed: 5 });
    const s0 = env.physicalState;
    expect(Array.from(obs)).toEqual(f32([s0.x, s0.theta]));
    const r = env.step(1);
    const s1 = env.physicalState;
    expect(Array.from(r.obs)).toEqual(f32([s1.xDot, s1.thetaDot]));
  });

  it('velocityAtReset (opt-in) observes velocities at reset too', () => {
    const env = make('popgym-VelocityOnlyCartPole-v0', { velocityAtReset: true }).unwrapped as VelocityOnlyCartPole;
    const { obs } = env.reset({ seed: 5 });
    const s0 = env.physicalState;
    expect(Array.from(obs)).toEqual(f32([s0.xDot, s0.thetaDot]));
    expect(() => make('popgym-VelocityOnlyCartPole-v0', { velocityAtReset: 'yes' })).toThrow(/velocityAtReset/);
    expect(() => make('popgym-PositionOnlyCartPole-v0', { velocityAtReset: true })).toThrow(/Unknown kwarg/);
  });
});

describe("info dicts equal POPGym's", () => {
  /** The info keys POPGym returns at reset and at a step, per env (Labyrinth* differ; see README). */
  const KEYS: Record<string, [string[], string[]]> = {
    Autoencode: [[], []],
    Battleship: [[], []],
    Concentration: [[], []],
    CountRecall: [['counts'], ['counts']],
    HigherLower: [['card'], []],
    MineSweeper: [[], []],
    MultiarmedBandit: [['bandits'], ['bandits']],
    RepeatFirst: [[], []],
    RepeatPrevious: [[], []],
    PositionOnlyCartPole: [[], []],
    VelocityOnlyCartPole: [[], []],
    NoisyPositionOnlyCartPole: [[], []],
    PositionOnlyPendulum: [[], []],
    NoisyPositionOnlyPendulum: [[], []],
  };

  it.each(Object.entries(KEYS))('%s: keys at reset and step', (name, [resetKeys, stepKeys]) => {
    for (const level of ['Easy', 'Medium', 'Hard']) {
      const env: Env = make(`popgym-${name}${level}-v0`);
      expect(Object.keys(env.reset({ seed: 1 }).info)).toEqual(resetKeys);
      expect(Object.keys(env.step(env.actionSpace.sample(seedrandom('a'))).info)).toEqual(stepKeys);
    }
  });

  it.each(Object.entries(COUNT_RECALL_LEVELS))('CountRecall %s: counts of each value dealt so far, the latest included', (_, options) => {
    const env = new CountRecall(options);
    const counts = new Array<number>(env.observationSpace.nvec[0]).fill(0);
    const check = (obs: Int32Array, info: Info) => {
      counts[obs[0]]++;
      expect(info.counts).toEqual(counts);
    };
    const first = env.reset({ seed: 3 });
    check(first.obs, first.info);
    const infos: Info[] = [];
    for (;;) {
      const r = env.step(0);
      check(r.obs, r.info);
      infos.push(r.info);
      if (r.terminated) break;
    }
    // Each info is a snapshot (POPGym hands out its live array; a stored info here keeps its step's counts).
    expect((infos[0].counts as number[]).reduce((a, b) => a + b)).toBe(2);
  });

  it("HigherLower: the reset info's card is POPGym's [suit, rank] labels of the first card", () => {
    const env = new HigherLower({ numDecks: 2 });
    const ranks = ['a', '2', '3', '4', '5', '6', '7', '8', '9', '10', 'j', 'q', 'k'];
    for (let seed = 0; seed < 20; seed++) {
      const { obs, info } = env.reset({ seed });
      const card = info.card as string[];
      expect(card).toHaveLength(2);
      expect(['s', 'd', 'c', 'h']).toContain(card[0]);
      expect(card[1]).toBe(ranks[obs]);
    }
  });

  it("MultiarmedBandit: every step's info carries the episode's arm probabilities", () => {
    const env = new MultiarmedBandit();
    const { info } = env.reset({ seed: 4 });
    expect(info.bandits).toHaveLength(10);
    for (let t = 0; t < 200; t++) expect(env.step(t % 10).info).toEqual({ bandits: info.bandits });
  });
});
