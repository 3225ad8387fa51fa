/** POPGym game/memory ports: each env's rules, checked with scripted policies (some use privileged state). */
import { describe, expect, it } from 'vitest';
import type { StepResult } from '../envs/env.js';
import { DIFFICULTIES } from '../envs/popgym/game-env.js';
import { Autoencode, AUTOENCODE_LEVELS } from '../envs/popgym/autoencode.js';
import { Battleship, BATTLESHIP_LEVELS } from '../envs/popgym/battleship.js';
import { Concentration, CONCENTRATION_LEVELS } from '../envs/popgym/concentration.js';
import { CountRecall, COUNT_RECALL_LEVELS } from '../envs/popgym/count-recall.js';
import { HigherLower, HIGHER_LOWER_LEVELS, HIGHER, LOWER } from '../envs/popgym/higher-lower.js';
import { MineSweeper, MINESWEEPER_LEVELS } from '../envs/popgym/minesweeper.js';
import { MultiarmedBandit, MULTIARMED_BANDIT_LEVELS } from '../envs/popgym/multiarmed-bandit.js';
import { RepeatFirst, REPEAT_FIRST_LEVELS } from '../envs/popgym/repeat-first.js';
import { RepeatPrevious, REPEAT_PREVIOUS_LEVELS } from '../envs/popgym/repeat-previous.js';
import { Deck, DECK_SIZE, cardValue, rankOf, suitOf, colorOf } from '../envs/popgym/deck.js';

const at = (r: number, c: number) => Int32Array.of(r, c);

/** Runs `policy` (given the last observation) to the end; returns the steps taken. */
function play<O, A>(
  env: { reset(o: { seed: number }): { obs: O }; step(a: A): StepResult<O> },
  seed: number,
  policy: (obs: O, t: number) => A,
): { steps: StepResult<O>[]; ret: number } {
  let obs = env.reset({ seed }).obs;
  const steps: StepResult<O>[] = [];
  for (let t = 0; ; t++) {
    const r = env.step(policy(obs, t));
    steps.push(r);
    obs = r.obs;
    if (r.terminated || r.truncated) return { steps, ret: steps.reduce((a, s) => a + s.reward, 0) };
  }
}

describe('Deck', () => {
  it("uses POPGym's card layout and deals every card once per shuffle", () => {
    expect([rankOf(0), suitOf(0), colorOf(0)]).toEqual([0, 0, 0]);
    expect([rankOf(51), suitOf(51), colorOf(51)]).toEqual([12, 3, 1]);
    expect(rankOf(52 + 5)).toBe(1);
    // Colours follow suits: ♠ ♣ black, ♦ ♥ red.
    for (let c = 0; c < DECK_SIZE; c++) expect(colorOf(c)).toBe(suitOf(c) % 2);
    const deck = new Deck(2);
    let x = 0;
    deck.shuffle(() => ((x = (x * 9301 + 49297) % 233280) / 233280));
    const seen = new Set<number>();
    while (deck.remaining > 0) seen.add(deck.draw());
    expect(seen.size).toBe(104);
    expect(() => deck.draw()).toThrow(/no cards left/);
    expect(cardValue(51, 'ranks')).toBe(12);
  });
});

describe('RepeatPrevious', () => {
  it.each(DIFFICULTIES.map((d) => [d]))('%s: perfect memory of the observations earns exactly 1', (level) => {
    const env = new RepeatPrevious(REPEAT_PREVIOUS_LEVELS[level]);
    const { k } = env;
    const seen: number[] = [];
    const { steps, ret } = play(env, 5, (obs: number) => {
      seen.push(obs);
      return seen.length >= k ? seen[seen.length - k] : 0;
    });
    expect(ret).toBeCloseTo(1, 12);
    // Nothing is asked during the first k − 1 steps.
    expect(steps.slice(0, k - 1).every((s) => s.reward === 0)).toBe(true);
    expect(steps.slice(k - 1).every((s) => s.reward > 0)).toBe(true);
  });

  it('a policy that is always wrong earns exactly −1', () => {
    const env = new RepeatPrevious({ numDecks: 1, k: 4 });
    const seen: number[] = [];
    const { ret } = play(env, 6, (obs: number) => {
      seen.push(obs);
      return seen.length >= 4 ? (seen[seen.length - 4] + 1) % 4 : 0;
    });
    expect(ret).toBeCloseTo(-1, 12);
  });
});

describe('RepeatFirst', () => {
  it.each(DIFFICULTIES.map((d) => [d]))('%s: repeating the first observation earns exactly 1', (level) => {
    const env = new RepeatFirst(REPEAT_FIRST_LEVELS[level]);
    let first = -1;
    const { ret } = play(env, 9, (obs: number, t) => (t === 0 ? (first = obs) : first));
    expect(ret).toBeCloseTo(1, 12);
  });
});

describe('Autoencode', () => {
  it.each(DIFFICULTIES.map((d) => [d]))('%s: replaying the cards backwards earns exactly 1', (level) => {
    const env = new Autoencode(AUTOENCODE_LEVELS[level]);
    const n = 52 * AUTOENCODE_LEVELS[level].numDecks;
    const shown: number[] = [];
    const modes: number[] = [];
    let recalled = 0;
    const { steps, ret } = play(env, 11, (obs: unknown[]) => {
      const [mode, suit] = obs as [number, number];
      modes.push(mode);
      if (shown.length < n) shown.push(suit);
      if (mode === 1) return 3; // ignored while watching
      return shown[n - 1 - recalled++];
    });
    expect(ret).toBeCloseTo(1, 12);
    expect(steps.slice(0, n - 1).every((s) => s.reward === 0)).toBe(true);
    // Mode 1 while watching; the last card shown already says 0 (recall next); recall shows (0, 0).
    expect(modes.slice(0, n - 1).every((m) => m === 1)).toBe(true);
    expect(modes[n - 1]).toBe(0);
    expect(steps.slice(n - 1).every((s) => (s.obs as number[]).join() === '0,0')).toBe(true);
    // The shown suits are a full shoe: 13·numDecks of each.
    for (let s = 0; s < 4; s++) expect(shown.filter((x) => x === s).length).toBe(n / 4);
  });
});

describe('CountRecall', () => {
  function perfectCounter(v: number) {
    const counts = new Array<number>(v).fill(0);
    return (obs: Int32Array) => {
      counts[obs[0]]++;
      return counts[obs[1]];
    };
  }

  it.each(DIFFICULTIES.map((d) => [d]))('%s: counting the observed cards earns exactly 1', (level) => {
    const env = new CountRecall(COUNT_RECALL_LEVELS[level]);
    const v = (env.observationSpace.nvec as Int32Array)[0];
    const { ret } = play(env, 13, perfectCounter(v));
    expect(ret).toBeCloseTo(1, 12);
  });

  it('can be asked for the largest count, maxCount, which the action space allows (POPGym slip fixed)', () => {
    const env = new CountRecall(COUNT_RECALL_LEVELS.Easy);
    let askedMax = false;
    for (let seed = 0; seed < 50 && !askedMax; seed++) {
      const counter = perfectCounter(2);
      play(env, seed, (obs: Int32Array) => {
        const answer = counter(obs);
        askedMax ||= answer === env.maxCount;
        return answer;
      });
    }
    expect(askedMax).toBe(true);
    expect(env.actionSpace.contains(env.maxCount)).toBe(true);
  });
});

describe('HigherLower', () => {
  it.each(DIFFICULTIES.map((d) => [d]))('%s: an oracle is right on every non-tie; ties pay 0', (level) => {
    const env = new HigherLower(HIGHER_LOWER_LEVELS[level]);
    const n = 52 * HIGHER_LOWER_LEVELS[level].numDecks;
    let total = 0;
    const episodes = 20;
    for (let seed = 0; seed < episodes; seed++) {
      let prev = env.reset({ seed }).obs;
      let ret = 0;
      let nonTies = 0;
      for (;;) {
        const r = env.step(rankOf(env.peekNext()) > prev ? HIGHER : LOWER);
        if (r.obs === prev) expect(r.reward).toBe(0);
        else {
          nonTies++;
          expect(r.reward).toBeCloseTo(1 / n, 12);
        }
        prev = r.obs;
        ret += r.reward;
        if (r.terminated) break;
      }
      expect(ret).toBeCloseTo(nonTies / n, 12);
      total += ret;
    }
    // 48d of the 52d − 1 guesses are expected to be non-ties: 12/13 at any d (an oracle's, not returnBounds).
    expect(Math.abs(total / episodes - 12 / 13)).toBeLessThan(0.03);
  });

  it('a wrong guess costs 1/(52·numDecks)', () => {
    const env = new HigherLower();
    let prev = env.reset({ seed: 2 }).obs;
    for (;;) {
      const next = rankOf(env.peekNext());
      const r = env.step(next > prev ? LOWER : HIGHER);
      if (next !== prev) expect(r.reward).toBeCloseTo(-1 / 52, 12);
      prev = r.obs;
      if (r.terminated) break;
    }
  });
});

describe('MultiarmedBandit', () => {
  it.each(DIFFICULTIES.map((d) => [d]))('%s: the best-arm oracle averages (N − 1)/(N + 1)', (level) => {
    const env = new MultiarmedBandit(MULTIARMED_BANDIT_LEVELS[level]);
    let total = 0;
    const episodes = 40;
    for (let seed = 0; seed < episodes; seed++) {
      const { info } = env.reset({ seed });
      const bandits = info.bandits as number[];
      expect(bandits).toHaveLength(env.numBandits);
      expect(bandits.every((p) => p >= 0 && p < 1)).toBe(true);
      const best = env.bestArm();
      expect(bandits[best]).toBe(Math.max(...bandits));
      let ret = 0;
      let ok = true;
      const L = env.maxEpisodeLength;
      for (let t = 0; t < L; t++) {
        const r = env.step(best);
        ok &&= r.reward === (r.obs === 1 ? 1 / L : -1 / L) && !r.terminated && r.truncated === (t === L - 1);
        ret += r.reward;
      }
      expect(ok).toBe(true);
      total += ret;
    }
    expect(Math.abs(total / episodes - env.returnBounds.optimal)).toBeLessThan(0.05);
  });
});

describe('Battleship', () => {
  function cells(env: Battleship, ships: boolean): Int32Array[] {
    const out: Int32Array[] = [];
    for (let r = 0; r < env.boardSize; r++)
      for (let c = 0; c < env.boardSize; c++) if (env.isShip(r, c) === ships) out.push(at(r, c));
    return out;
  }

  it.each(DIFFICULTIES.map((d) => [d]))('%s: firing only at ships earns exactly 1 in 12 shots', (level) => {
    const env = new Battleship(BATTLESHIP_LEVELS[level]);
    env.reset({ seed: 21 });
    const targets = cells(env, true);
    expect(targets).toHaveLength(12);
    const { steps, ret } = play(env, 21, (_obs, t) => targets[t]);
    expect(ret).toBeCloseTo(1, 12);
    expect(steps).toHaveLength(12);
    expect(steps.every((s) => s.obs === 1)).toBe(true);
    expect(steps[11].terminated).toBe(true);
  });

  it('ships are straight, in bounds and non-overlapping', () => {
    const env = new Battleship({ boardSize: 6, shipSizes: [5, 4, 3, 3, 2] });
    for (let seed = 0; seed < 30; seed++) {
      env.reset({ seed });
      expect(cells(env, true)).toHaveLength(17);
    }
  });

  it('every cell once returns 0; a repeat shot at a hit ship is a miss', () => {
    const env = new Battleship(BATTLESHIP_LEVELS.Easy);
    env.reset({ seed: 4 });
    const order = [...cells(env, false), ...cells(env, true)];
    const { steps, ret } = play(env, 4, (_obs, t) => order[t]);
    expect(steps).toHaveLength(64);
    expect(ret).toBeCloseTo(0, 12);
    expect(steps[63].terminated && steps[63].truncated).toBe(true);

    env.reset({ seed: 4 });
    const ship = cells(env, true)[0];
    expect(env.step(ship)).toMatchObject({ obs: 1, reward: 1 / 12 });
    const again = env.step(ship);
    expect(again.obs).toBe(0);
    expect(again.reward).toBeCloseTo(-1 / 52, 12);
  });
});

describe('Concentration', () => {
  /** Positions grouped into pairs of equal value, from privileged state. */
  function pairs(env: Concentration): number[] {
    const byValue = new Map<number, number[]>();
    for (let p = 0; p < env.actionSpace.n; p++) {
      const v = env.valueAt(p);
      byValue.set(v, [...(byValue.get(v) ?? []), p]);
    }
    return [...byValue.values()].flat();
  }

  it.each(DIFFICULTIES.map((d) => [d]))('%s: flipping known pairs earns exactly 1 in n steps', (level) => {
    const env = new Concentration(CONCENTRATION_LEVELS[level]);
    env.reset({ seed: 17 });
    const order = pairs(env);
    const { steps, ret } = play(env, 17, (_obs, t) => order[t]);
    const n = env.actionSpace.n;
    expect(ret).toBeCloseTo(1, 12);
    expect(steps).toHaveLength(n);
    expect(steps[n - 1].terminated).toBe(true);
    // Everything ends face up, showing the true values.
    const last = steps[n - 1].obs;
    for (let p = 0; p < n; p++) expect(last[p]).toBe(env.valueAt(p));
  });

  it('shows a mismatched pair once, then turns it back; penalties per flip', () => {
    const env = new Concentration(CONCENTRATION_LEVELS.Hard);
    const L = env.maxEpisodeLength;
    const down = 13;
    const start = env.reset({ seed: 3 }).obs;
    expect(start.every((v) => v === down)).toBe(true);
    let b = 1;
    while (env.valueAt(b) === env.valueAt(0)) b++;
    const r1 = env.step(0);
    expect(r1.reward).toBe(0);
    expect(r1.obs[0]).toBe(env.valueAt(0));
    const r2 = env.step(b);
    expect(r2.reward).toBeCloseTo(-2 / L, 12);
    expect([r2.obs[0], r2.obs[b]]).toEqual([env.valueAt(0), env.valueAt(b)]);
    const r3 = env.step(0); // the same position twice is no pair
    expect(r3.obs[b]).toBe(down);
    expect(env.step(0).reward).toBeCloseTo(-2 / L, 12);
    // Match a pair, then flip one of its cards again: −1/L as a first flip, −2/L as a second.
    let m = 1;
    while (env.valueAt(m) !== env.valueAt(0)) m++;
    env.step(0);
    expect(env.step(m).reward).toBeCloseTo(1 / 26, 12);
    expect(env.step(m).reward).toBeCloseTo(-1 / L, 12);
    expect(env.step(b).reward).toBe(0);
    expect(env.step(0).reward).toBeCloseTo(-2 / L, 12);
  });

  it('truncates after exactly L steps', () => {
    const env = new Concentration(CONCENTRATION_LEVELS.Easy);
    const { steps } = play(env, 1, () => 0);
    expect(steps).toHaveLength(104);
    expect(steps[103].truncated).toBe(true);
  });
});

describe('MineSweeper', () => {
  function free(env: MineSweeper): Int32Array[] {
    const out: Int32Array[] = [];
    for (let r = 0; r < env.rows; r++) for (let c = 0; c < env.cols; c++) if (!env.isMine(r, c)) out.push(at(r, c));
    return out;
  }
  function mineCount(env: MineSweeper, r: number, c: number): number {
    let k = 0;
    for (let i = r - 1; i <= r + 1; i++)
      for (let j = c - 1; j <= c + 1; j++) if (i >= 0 && j >= 0 && i < env.rows && j < env.cols && env.isMine(i, j)) k++;
    return k;
  }

  it.each(DIFFICULTIES.map((d) => [d]))('%s: clearing every free cell earns exactly 1 in L steps', (level) => {
    const env = new MineSweeper(MINESWEEPER_LEVELS[level]);
    env.reset({ seed: 8 });
    const cells = free(env);
    expect(cells).toHaveLength(env.maxEpisodeLength);
    const { steps, ret } = play(env, 8, (_obs, t) => cells[t]);
    expect(ret).toBeCloseTo(1, 12);
    expect(steps).toHaveLength(env.maxEpisodeLength);
    expect(steps.at(-1)!.terminated).toBe(true);
    steps.forEach((s, t) => expect(s.obs).toBe(mineCount(env, cells[t][0], cells[t][1])));
  });

  it('the worst episode returns exactly −1 within L steps (no extra step)', () => {
    const env = new MineSweeper(MINESWEEPER_LEVELS.Medium);
    env.reset({ seed: 2 });
    const L = env.maxEpisodeLength;
    const cell = free(env)[0];
    let mine = at(0, 0);
    for (let r = 0; r < env.rows; r++) for (let c = 0; c < env.cols; c++) if (env.isMine(r, c)) mine = at(r, c);
    const { steps, ret } = play(env, 2, (_obs, t) => (t < L - 1 ? cell : mine));
    expect(steps).toHaveLength(L);
    expect(ret).toBeCloseTo(-1, 12);
    expect(steps.at(-1)!.reward).toBeCloseTo(-0.5 - 1 / L, 12);
    expect(steps.at(-1)!.terminated).toBe(true);

    const stall = play(env, 2, () => cell);
    expect(stall.steps).toHaveLength(L);
    expect(stall.steps.at(-1)!.truncated).toBe(true);
    expect(stall.steps[1].reward).toBeCloseTo(-0.5 / (L - 2), 12);
  });
});
