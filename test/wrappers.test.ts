import { describe, expect, it } from 'vitest';
import { checkEnv } from '../envs/check.js';
import { Env, type ResetResult, type StepResult } from '../envs/env.js';
import { Box, Dict, Discrete, MultiBinary, MultiDiscrete, Tuple } from '../envs/spaces.js';
import { EpisodeTracker } from '../envs/episodes.js';
import {
  ActionWrapper,
  applyWrappers,
  ClipAction,
  FlattenObservation,
  nullAction,
  OrderEnforcing,
  PreviousAction,
  ObservationWrapper,
  RecordEpisodeStatistics,
  RewardWrapper,
  TimeLimit,
  type EpisodeStats,
} from '../envs/wrappers.js';

/** obs = steps taken (from a seeded random start in 0..4), reward = action, terminates after 5 steps. */
class Counter extends Env<number, number> {
  readonly observationSpace = new Discrete(10);
  readonly actionSpace = new Discrete(3);
  private t = 0;
  private start = 0;
  protected resetEnv(): ResetResult<number> {
    this.t = 0;
    this.start = Math.floor(this.rng() * 5);
    return { obs: this.start, info: {} };
  }
  protected stepEnv(action: number): StepResult<number> {
    this.t++;
    return { obs: this.start + this.t, reward: action, terminated: this.t >= 5, truncated: false, info: {} };
  }
}

/** Box actions in [-1, 1]^2; the obs is the last action received (to see what the wrapper passed on). */
class Echo extends Env<Float32Array, Float32Array> {
  readonly observationSpace = new Box(-1, 1, [2]);
  readonly actionSpace = new Box(-1, 1, [2]);
  protected resetEnv(): ResetResult<Float32Array> {
    return { obs: new Float32Array(2), info: {} };
  }
  protected stepEnv(action: Float32Array): StepResult<Float32Array> {
    return { obs: action.slice(), reward: 0, terminated: false, truncated: false, info: {} };
  }
}

/** A Dict observation env for PreviousAction. */
class DictObs extends Env<Record<string, unknown>, number> {
  readonly observationSpace = new Dict({ z: new Discrete(2), a: new MultiBinary(2) });
  readonly actionSpace = new Discrete(2, 1);
  protected resetEnv(): ResetResult<Record<string, unknown>> {
    return { obs: { z: 0, a: new Int8Array(2) }, info: {} };
  }
  protected stepEnv(): StepResult<Record<string, unknown>> {
    return { obs: { z: 1, a: Int8Array.from([1, 0]) }, reward: 0, terminated: false, truncated: false, info: {} };
  }
}

describe('Wrapper', () => {
  it('forwards the reset seed, names the chain, and unwraps', () => {
    const plain = new Counter();
    const wrapped = new RecordEpisodeStatistics(new TimeLimit(new Counter(), 3));
    for (const seed of [1, 2, 3]) expect(wrapped.reset({ seed }).obs).toBe(plain.reset({ seed }).obs);
    expect(wrapped.name).toBe('RecordEpisodeStatistics<TimeLimit<Counter>>');
    expect(wrapped.unwrapped).toBeInstanceOf(Counter);
    expect(() => new TimeLimit({} as Env, 3)).toThrow(/expected an Env/);
  });
  it('wrapped envs pass checkEnv', () => {
    checkEnv(() => new OrderEnforcing(new PreviousAction(new RecordEpisodeStatistics(new TimeLimit(new Counter(), 3)))));
    checkEnv(() => new OrderEnforcing(new FlattenObservation(new PreviousAction(new Counter()))));
    checkEnv(() => new OrderEnforcing(new ClipAction(new Echo())));
  });
});

describe('TimeLimit', () => {
  it('truncates at the limit and restarts its count on reset', () => {
    const limit = new TimeLimit(new Counter(), 3);
    const env = new OrderEnforcing(limit); // as make() serves it: the time limit's end is an episode end
    for (let episode = 0; episode < 2; episode++) {
      env.reset({ seed: 0 });
      expect(env.step(1).truncated).toBe(false);
      expect(env.step(1).truncated).toBe(false);
      const last = env.step(1);
      expect(last.truncated).toBe(true);
      expect(last.terminated).toBe(false);
      expect(limit.elapsedSteps).toBe(3);
      expect(() => env.step(1)).toThrow(/episode ended/);
    }
    expect(() => new TimeLimit(new Counter(), 0)).toThrow(/positive integer/);
  });
  it('leaves termination before the limit alone', () => {
    const env = new TimeLimit(new Counter(), 10);
    env.reset({ seed: 0 });
    let r = env.step(0);
    while (!r.terminated) r = env.step(0);
    expect(r.truncated).toBe(false);
    expect(env.elapsedSteps).toBe(5);
  });
});

describe('RecordEpisodeStatistics', () => {
  it('puts {r, l, t} in info.episode on the last step only, and keeps queues', () => {
    const env = new RecordEpisodeStatistics(new Counter(), { bufferLength: 2 });
    for (const actions of [
      [1, 2, 0, 1, 2],
      [2, 2, 2, 2, 2],
      [0, 0, 0, 0, 1],
    ]) {
      env.reset({ seed: 0 });
      actions.forEach((a, i) => {
        const { info, terminated } = env.step(a);
        expect(terminated).toBe(i === 4);
        if (i < 4) expect(info.episode).toBeUndefined();
        else {
          const stats = info.episode as EpisodeStats;
          expect(stats.r).toBe(actions.reduce((x, y) => x + y, 0));
          expect(stats.l).toBe(5);
          expect(stats.t).toBeGreaterThanOrEqual(0);
        }
      });
    }
    expect(env.returnQueue).toEqual([10, 1]);
    expect(env.lengthQueue).toEqual([5, 5]);
  });
  it('counts truncated episodes too', () => {
    const env = new RecordEpisodeStatistics(new TimeLimit(new Counter(), 2));
    env.reset({ seed: 0 });
    env.step(2);
    expect((env.step(1).info.episode as EpisodeStats).r).toBe(3);
  });
});

describe('FlattenObservation', () => {
  it('turns observations into their flat form and space', () => {
    const env = new FlattenObservation(new Counter());
    expect(env.observationSpace.equals(new Box(0, 1, [10]))).toBe(true);
    const { obs } = env.reset({ seed: 3 });
    const start = new Counter().reset({ seed: 3 }).obs;
    expect(Array.from(obs)).toEqual(Array.from({ length: 10 }, (_, i) => (i === start ? 1 : 0)));
    expect(env.step(0).obs[start + 1]).toBe(1);
  });
});

describe('PreviousAction', () => {
  it('appends the previous action and the is-first-step flag (POPGym PreviousAction + Antialias)', () => {
    const env = new PreviousAction(new Counter());
    expect(env.observationSpace.toString()).toBe('Tuple(Discrete(10), Discrete(3), Discrete(2))');
    const start = env.reset({ seed: 0 }).obs as unknown[];
    // The null action for Discrete(3) is 0; the flag marks the reset observation.
    expect(start.slice(1)).toEqual([0, 1]);
    const s0 = start[0] as number;
    expect(env.step(2).obs).toEqual([s0 + 1, 2, 0]);
    // Taking the null action yields the same (obs part aside) as reset but for the flag: no aliasing.
    expect(env.step(0).obs).toEqual([s0 + 2, 0, 0]);
    expect(env.reset({ seed: 0 }).obs).toEqual([s0, 0, 1]);
  });
  it('without antialias appends only the action, as POPGym PreviousAction alone', () => {
    const env = new PreviousAction(new Counter(), { antialias: false });
    expect(env.observationSpace.toString()).toBe('Tuple(Discrete(10), Discrete(3))');
    expect((env.reset({ seed: 0 }).obs as unknown[])[1]).toBe(0);
  });
  it('adds sorted prev_action / is_t0 keys to Dict observations', () => {
    const env = new PreviousAction(new DictObs());
    expect((env.observationSpace as Dict).keys()).toEqual(['a', 'is_t0', 'prev_action', 'z']);
    // Discrete(2, start=1) does not hold 0, so the null action is its lowest action, 1.
    expect(env.reset().obs).toEqual({ a: new Int8Array(2), is_t0: 1, prev_action: 1, z: 0 });
    expect(env.step(2).obs).toEqual({ a: Int8Array.from([1, 0]), is_t0: 0, prev_action: 2, z: 1 });
  });
  it('extends the obs part of an {obs, state} Dict, and Tuple observations in place', () => {
    class ObsState extends DictObs {
      override readonly observationSpace = new Dict({ obs: new Discrete(2), state: new MultiBinary(2) });
    }
    const space = new PreviousAction(new ObsState()).observationSpace as Dict;
    expect(space.toString()).toBe(
      "Dict('obs': Tuple(Discrete(2), Discrete(2, start=1), Discrete(2)), 'state': MultiBinary(2))",
    );
    class TupleObs extends Counter {
      override readonly observationSpace = new Tuple([new Discrete(10)]) as never;
    }
    expect(new PreviousAction(new TupleObs()).observationSpace.toString()).toBe(
      'Tuple(Discrete(10), Discrete(3), Discrete(2))',
    );
  });
  it('copies typed-array actions and uses POPGym null actions', () => {
    const env = new PreviousAction(new Echo());
    expect((env.reset().obs as unknown[])[1]).toEqual(new Float32Array(2));
    const action = Float32Array.from([0.5, -0.5]);
    const obs = env.step(action).obs as unknown[];
    action[0] = 0;
    expect(obs[1]).toEqual(Float32Array.from([0.5, -0.5]));
    expect(nullAction(new Box(1, 2, [2]))).toEqual(Float32Array.from([1, 1]));
    expect(nullAction(new MultiDiscrete([3, 3], [0, 2]))).toEqual(Int32Array.from([0, 2]));
    expect(nullAction(new Discrete(4, -2))).toBe(0);
    expect(() => new PreviousAction(new Counter(), { nullAction: 7 })).toThrow(/null action/);
  });
});

describe('ClipAction', () => {
  it('clips to the inner bounds and exposes an unbounded action space', () => {
    const env = new ClipAction(new Echo());
    expect(env.actionSpace.toString()).toBe('Box(-inf, inf, (2,), float32)');
    env.reset();
    expect(Array.from(env.step(Float32Array.from([5, -0.25])).obs)).toEqual([1, -0.25]);
    expect(Array.from(env.step(Float32Array.from([-3, 2])).obs)).toEqual([-1, 1]);
    expect(() => new ClipAction(new Counter() as never)).toThrow(/must be a Box/);
  });
});

describe('applyWrappers', () => {
  it('nests specs innermost first and rejects unknown types', () => {
    const env = applyWrappers(new Counter(), [
      { type: 'TimeLimit', maxEpisodeSteps: 2 },
      { type: 'RecordEpisodeStatistics' },
      { type: 'PreviousAction' },
    ]);
    expect(env.name).toBe('PreviousAction<RecordEpisodeStatistics<TimeLimit<Counter>>>');
    expect(() => applyWrappers(new Counter(), [{ type: 'Nope' } as never])).toThrow(/Unknown wrapper type 'Nope'/);
  });
});

describe('typed wrapper bases', () => {
  /** obs n → the Box [n / 10]: only `observation` is written; reset and step come from the base. */
  class Scaled extends ObservationWrapper<Float32Array, number, number> {
    constructor(env: Counter) {
      super(env, new Box(0, 1, [1]));
    }
    observation(obs: number): Float32Array {
      return Float32Array.of(obs / 10);
    }
  }
  /** Takes actions 0..2 in reverse. */
  class Reversed extends ActionWrapper<number, number, number> {
    constructor(env: Counter) {
      super(env, new Discrete(3));
    }
    action(action: number): number {
      return 2 - action;
    }
  }
  class Doubled extends RewardWrapper<number, number> {
    reward(reward: number): number {
      return 2 * reward;
    }
  }

  it('ObservationWrapper maps reset and step observations into its space', () => {
    const env = new Scaled(new Counter());
    const start = new Counter().reset({ seed: 4 }).obs;
    expect(Array.from(env.reset({ seed: 4 }).obs)).toEqual([Math.fround(start / 10)]);
    expect(Array.from(env.step(0).obs)).toEqual([Math.fround((start + 1) / 10)]);
    expect(env.observationSpace.toString()).toBe('Box(0.0, 1.0, (1,), float32)');
    checkEnv(() => new OrderEnforcing(new Scaled(new Counter())));
  });

  it('ActionWrapper and RewardWrapper change only the action / the reward', () => {
    const env = new Doubled(new Reversed(new Counter()));
    env.reset({ seed: 0 });
    expect(env.step(0).reward).toBe(4); // action 0 → inner action 2 → reward 2, doubled
    expect(env.step(2).reward).toBe(0);
    expect(env.name).toBe('Doubled<Reversed<Counter>>');
  });
});

describe('OrderEnforcing', () => {
  it('is the one place single envs are checked, named as the env it checks', () => {
    const raw = new Counter();
    raw.step(1); // unchecked: envs themselves don't check
    const env = new OrderEnforcing(new Counter());
    expect(() => env.step(0)).toThrow(/^Counter: step\(\) called before reset\(\)/);
    env.reset({ seed: 0 });
    expect(() => env.step(7)).toThrow(/^Counter: action 7 is not in the action space Discrete\(3\)/);
    for (let i = 0; i < 5; i++) env.step(0);
    expect(() => env.step(0)).toThrow(/episode ended/);
    env.close();
    expect(() => env.reset()).toThrow(/reset\(\) called after close\(\)/);
    expect(applyWrappers(new Counter(), [{ type: 'OrderEnforcing' }])).toBeInstanceOf(OrderEnforcing);
  });
});

describe('one episode-statistics path', () => {
  it('EpisodeTracker (vector) and RecordEpisodeStatistics (per env) give the same returns and lengths', () => {
    const env = new RecordEpisodeStatistics(new TimeLimit(new Counter(), 4));
    const tracker = new EpisodeTracker(1);
    const fromWrapper: [number, number][] = [];
    const fromTracker: [number, number][] = [];
    env.reset({ seed: 1 });
    let pending = false;
    for (let t = 0; t < 30; t++) {
      const action = t % 3;
      // Next-step autoreset, as a vector env does it: a reset step (reward 0, flags false) after each episode end.
      const r: StepResult<number> = pending ? { ...env.reset(), reward: 0, terminated: false, truncated: false } : env.step(action);
      pending = !pending && (r.terminated || r.truncated);
      const stats = (r.info as { episode?: EpisodeStats }).episode;
      if (stats) fromWrapper.push([stats.r, stats.l]);
      for (const e of tracker.observe([r.reward], [r.terminated], [r.truncated])) fromTracker.push([e.r, e.l]);
    }
    expect(fromTracker.length).toBeGreaterThan(3);
    expect(fromTracker).toEqual(fromWrapper);
  });
});
