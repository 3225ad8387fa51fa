/**
 * Env snapshots (`getState`/`setState`): for every registered env, a state saved mid-episode and restored into a
 * fresh env continues exactly as the original, through JSON, across episode ends and RNG draws.
 */
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { Env, type ResetResult, type StepResult } from '../envs/env.js';
import { AsyncVectorEnv, make, registeredIds, SyncVectorEnv, type VectorEnv } from '../envs/index.js';
import { Discrete } from '../envs/spaces.js';
import { OrderEnforcing, PreviousAction, RecordEpisodeStatistics, TimeLimit } from '../envs/wrappers.js';

/** Plays `n` steps with actions from `rng`, resetting after episode ends; returns everything observed. */
function play(env: Env, n: number, rng: () => number): unknown[] {
  const seen: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const r = env.step(env.actionSpace.sample(rng));
    seen.push(r);
    if (r.terminated || r.truncated) seen.push(env.reset());
  }
  return seen;
}

/** Typed arrays as plain lists, so results compare by value; episode wall times (`t`) are not reproducible. */
const plain = (x: unknown) =>
  JSON.parse(JSON.stringify(x, (k, v) => (k === 't' ? undefined : ArrayBuffer.isView(v) ? Array.from(v as Uint8Array) : v)));

describe('env snapshots', () => {
  it.each(registeredIds())('%s continues bit for bit after a JSON round trip', (id) => {
    const env = make(id);
    env.reset({ seed: 11 });
    play(env, 37, seedrandom('warm-up'));
    const saved = JSON.stringify(env.getState());
    const expected = plain(play(env, 120, seedrandom('after')));

    const restored = make(id);
    restored.setState(JSON.parse(saved));
    expect(JSON.stringify(restored.getState())).toBe(saved);
    expect(plain(play(restored, 120, seedrandom('after')))).toEqual(expected);
  });

  it('saves wrappers with the env they wrap (time limit, episode statistics, previous action)', () => {
    const build = () => new RecordEpisodeStatistics(new PreviousAction(new TimeLimit(make('popgym-CountRecallEasy-v0'), 9)));
    const env = build();
    env.reset({ seed: 5 });
    play(env, 23, seedrandom('warm-up'));
    const saved = JSON.parse(JSON.stringify(env.getState()));
    const expected = plain(play(env, 40, seedrandom('after')));
    const restored = build();
    restored.setState(saved);
    expect(restored.returnQueue).toEqual(env.returnQueue.slice(0, restored.returnQueue.length));
    expect(plain(play(restored, 40, seedrandom('after')))).toEqual(expected);
  });

  it('restores the env lifecycle: a finished episode still needs a reset', () => {
    class OneStep extends Env<number, number> {
      readonly observationSpace = new Discrete(2);
      readonly actionSpace = new Discrete(2);
      protected resetEnv(): ResetResult<number> {
        return { obs: 0, info: {} };
      }
      protected stepEnv(): StepResult<number> {
        return { obs: 1, reward: this.rng(), terminated: true, truncated: false, info: {} };
      }
    }
    const env = new OrderEnforcing(new OneStep());
    env.reset({ seed: 3 });
    env.step(0);
    const copy = new OrderEnforcing(new OneStep());
    copy.setState(env.getState());
    expect(() => copy.step(0)).toThrow(/Call reset\(\)/);
  });

  it('rejects a state that is not from getState, or from another kind of env', () => {
    const env = make('popgym-RepeatPreviousEasy-v0');
    expect(() => env.setState(null)).toThrow(/setState expects an object from getState/);
    const other = make('popgym-CountRecallEasy-v0');
    other.reset({ seed: 1 });
    expect(() => env.setState(other.getState())).toThrow(/no field/);
  });

  it('vector envs save every env and the pending autoresets; a sync state restores into an async env', async () => {
    const make3 = { id: 'popgym-CountRecallEasy-v0', numEnvs: 3 };
    const run = async (env: VectorEnv, steps: number, rng: () => number) => {
      const out: unknown[] = [];
      for (let i = 0; i < steps; i++) out.push(await env.step(Array.from({ length: 3 }, () => env.singleActionSpace.sample(rng))));
      return plain(out);
    };
    const sync = new SyncVectorEnv(make3);
    await sync.reset({ seed: 2 });
    await run(sync, 70, seedrandom('warm-up'));
    const saved = JSON.parse(JSON.stringify(await sync.getState()));
    const expected = await run(sync, 60, seedrandom('after'));
    const other = await AsyncVectorEnv.create({ ...make3, numWorkers: 2 });
    try {
      await other.setState(saved);
      expect(await run(other, 60, seedrandom('after'))).toEqual(expected);
      await expect(new SyncVectorEnv({ ...make3, numEnvs: 2 }).setState(saved)).rejects.toThrow(/another --num-envs/);
    } finally {
      await other.close();
      await sync.close();
    }
  });
});
