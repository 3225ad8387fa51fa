import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as envs from '../envs/index.js';
import {
  AsyncVectorEnv,
  finishedEpisodes,
  SyncVectorEnv,
  VectorWrapper,
  type AutoresetMode,
  type Env,
  type MakeVectorOptions,
  type VectorEnv,
  type VectorInfo,
} from '../envs/index.js';

/**
 * The test env, in plain JS so worker threads can load it too. Tick: obs = start + t, where start is a seeded
 * multiple of 10; reward = action + t/10; terminates after `length` steps; info {t} (plus last: true at the end),
 * reset info {start}.
 */
const TICK_ENV = `
export function install({ Env, Discrete, register, isRegistered }) {
  class Tick extends Env {
    constructor({ length = 3 } = {}) {
      super();
      this.length = length;
      this.observationSpace = new Discrete(100);
      this.actionSpace = new Discrete(2);
      this.t = 0;
      this.start = 0;
    }
    resetEnv() {
      this.t = 0;
      this.start = Math.floor(this.rng() * 9) * 10;
      return { obs: this.start, info: { start: this.start } };
    }
    stepEnv(action) {
      this.t += 1;
      const done = this.t >= this.length;
      const info = done ? { t: this.t, last: true } : { t: this.t };
      return { obs: this.start + this.t, reward: action + this.t / 10, terminated: done, truncated: false, info };
    }
  }
  if (!isRegistered('Tick-v0')) register({ id: 'Tick-v0', entryPoint: (kw) => new Tick(kw), kwargs: { length: 3 } });
  return Tick;
}
`;

type TickClass = new (kw?: { length?: number }) => Env<number, number>;
let Tick: TickClass;
let dir: string;
let registerModule: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hqlt-vector-'));
  writeFileSync(join(dir, 'tick.mjs'), TICK_ENV);
  // The workers' registration module: the compiled envs (the same module instance the worker uses) + Tick.
  const distEnvs = pathToFileURL(join(process.cwd(), 'dist/envs/index.js')).href;
  registerModule = join(dir, 'register-tick.mjs');
  writeFileSync(registerModule, `import * as envs from '${distEnvs}';\nimport { install } from './tick.mjs';\ninstall(envs);\n`);
  const mod = (await import(pathToFileURL(join(dir, 'tick.mjs')).href)) as { install: (e: typeof envs) => TickClass };
  Tick = mod.install(envs);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The starts a lone Tick env draws: for its seeded reset and the autoresets after it. */
function starts(seed: number, n: number): number[] {
  const env = new Tick();
  return Array.from({ length: n }, (_, i) => env.reset(i === 0 ? { seed } : {}).obs);
}

function twoTicks(mode: AutoresetMode): SyncVectorEnv<number, number> {
  return new SyncVectorEnv([() => new Tick({ length: 2 }), () => new Tick({ length: 3 })], { autoresetMode: mode });
}

describe('SyncVectorEnv next-step autoreset', () => {
  it('matches a hand trace', async () => {
    const v = twoTicks('next-step');
    const [a0, a1] = starts(5, 2); // env 0 gets seed 5
    const [b0, b1] = starts(6, 2); // env 1 gets seed 6
    const r = await v.reset({ seed: 5 });
    expect(r.obs).toEqual(Int32Array.of(a0, b0));
    expect(r.info).toEqual({ start: [a0, b0], _start: [true, true] });

    let s = await v.step([1, 1]);
    expect(s.obs).toEqual(Int32Array.of(a0 + 1, b0 + 1));
    expect(Array.from(s.rewards)).toEqual([1.1, 1.1]);
    expect(s.terminated).toEqual([false, false]);
    expect(s.info).toEqual({ t: [1, 1], _t: [true, true] });

    s = await v.step([0, 1]);
    expect(s.obs).toEqual(Int32Array.of(a0 + 2, b0 + 2));
    expect(Array.from(s.rewards)).toEqual([0.2, 1.2]);
    expect(s.terminated).toEqual([true, false]);
    expect(s.info).toEqual({ t: [2, 2], _t: [true, true], last: [true, false], _last: [true, false] });

    // Env 0 resets (its action ignored, reward 0, flags false); env 1 ends.
    s = await v.step([1, 0]);
    expect(s.obs).toEqual(Int32Array.of(a1, b0 + 3));
    expect(Array.from(s.rewards)).toEqual([0, 0.3]);
    expect(s.terminated).toEqual([false, true]);
    expect(s.truncated).toEqual([false, false]);
    expect(s.info).toEqual({
      start: [a1, 0],
      _start: [true, false],
      t: [0, 3],
      _t: [false, true],
      last: [false, true],
      _last: [false, true],
    });

    s = await v.step([1, 1]);
    expect(s.obs).toEqual(Int32Array.of(a1 + 1, b1));
    expect(Array.from(s.rewards)).toEqual([1.1, 0]);
    expect(s.terminated).toEqual([false, false]);
    expect(s.info).toEqual({ t: [1, 0], _t: [true, false], start: [0, b1], _start: [false, true] });
    await v.close();
  });
});

describe('SyncVectorEnv same-step autoreset', () => {
  it('matches a hand trace, with final_obs / final_info', async () => {
    const v = twoTicks('same-step');
    expect(v.metadata.autoresetMode).toBe('same-step');
    const [a0, a1] = starts(5, 2);
    const [b0, b1] = starts(6, 2);
    await v.reset({ seed: 5 });
    await v.step([1, 1]);

    let s = await v.step([1, 1]);
    expect(s.obs).toEqual(Int32Array.of(a1, b0 + 2)); // env 0 ended and reset in this step
    expect(Array.from(s.rewards)).toEqual([1.2, 1.2]);
    expect(s.terminated).toEqual([true, false]);
    expect(s.info).toEqual({
      final_obs: [a0 + 2, 0],
      _final_obs: [true, false],
      final_info: { t: [2, 0], _t: [true, false], last: [true, false], _last: [true, false] },
      _final_info: [true, false],
      start: [a1, 0],
      _start: [true, false],
      t: [0, 2],
      _t: [false, true],
    });

    s = await v.step([0, 0]);
    expect(s.obs).toEqual(Int32Array.of(a1 + 1, b1));
    expect(Array.from(s.rewards)).toEqual([0.1, 0.3]);
    expect(s.terminated).toEqual([false, true]);
    expect(s.info.final_obs).toEqual([0, b0 + 3]);
    expect(s.info._final_obs).toEqual([false, true]);
    expect(s.info.t).toEqual([1, 0]);
    expect(s.info.start).toEqual([0, b1]);
    await v.close();
  });
});

describe('vector env basics', () => {
  it('seeds env i with seed + i, or takes one seed per env', async () => {
    const v = new SyncVectorEnv<number, number>({ id: 'Tick-v0', numEnvs: 3 });
    expect((await v.reset({ seed: 10 })).obs).toEqual(Int32Array.from([10, 11, 12], (s) => starts(s, 1)[0]));
    expect((await v.reset({ seed: [7, 3, 9] })).obs).toEqual(Int32Array.from([7, 3, 9], (s) => starts(s, 1)[0]));
    await expect(v.reset({ seed: [1, 2] })).rejects.toThrow(/one seed or 3 seeds/);
    await v.close();
  });

  it('gives clear errors: before reset, wrong batch, invalid action, concurrent calls, after close', async () => {
    const v = new SyncVectorEnv<number, number>({ id: 'Tick-v0', numEnvs: 2 });
    await expect(v.step([0, 0])).rejects.toThrow(/before reset/);
    await v.reset({ seed: 0 });
    await expect(v.step([0])).rejects.toThrow(/got 1 actions for 2 envs/);
    await expect(v.step([0, 5])).rejects.toThrow(/action 5 for env 1 is not in the action space Discrete\(2\)/);
    const first = v.step([0, 0]);
    await expect(v.step([0, 0])).rejects.toThrow(/still running/);
    await first;
    await v.close();
    await v.close(); // closing twice is fine
    await expect(v.step([0, 0])).rejects.toThrow(/after close/);
    await expect(v.reset()).rejects.toThrow(/after close/);
  });

  it('accepts typed-array action batches and applies registry time limits and wrapper specs', async () => {
    const v = new SyncVectorEnv<number, number>({
      id: 'Tick-v0',
      kwargs: { length: 10, maxEpisodeSteps: 2 },
      numEnvs: 2,
      wrappers: [{ type: 'RecordEpisodeStatistics' }],
    });
    await v.reset({ seed: 0 });
    await v.step(Int32Array.from([1, 0]));
    const s = await v.step(Int32Array.from([1, 1]));
    expect(s.truncated).toEqual([true, true]);
    expect(s.terminated).toEqual([false, false]);
    expect(finishedEpisodes(s.info).map(({ env, r, l }) => ({ env, r, l }))).toEqual([
      { env: 0, r: 2.3, l: 2 },
      { env: 1, r: 1.3, l: 2 },
    ]);
    await v.close();
  });

  it('rejects envs with different spaces and unknown modes', () => {
    class Other extends envs.Env<number, number> {
      readonly observationSpace = new envs.Discrete(3);
      readonly actionSpace = new envs.Discrete(2);
      protected resetEnv() {
        return { obs: 0, info: {} };
      }
      protected stepEnv() {
        return { obs: 0, reward: 0, terminated: false, truncated: false, info: {} };
      }
    }
    expect(() => new SyncVectorEnv([() => new Tick(), () => new Other()])).toThrow(/all envs must share their spaces/);
    expect(() => new SyncVectorEnv([() => new Tick()], { autoresetMode: 'never' as never })).toThrow(/autoreset mode/);
  });
});

describe('VectorWrapper', () => {
  it('forwards everything, state saving included, and a subclass changes what it overrides', async () => {
    class ShiftedRewards extends VectorWrapper<number, number> {
      override async step(actions: ArrayLike<number>) {
        const r = await super.step(actions);
        return { ...r, rewards: r.rewards.map((x) => x + 100) };
      }
    }
    const inner = twoTicks('next-step');
    const v = new ShiftedRewards(inner);
    expect([v.numEnvs, v.autoresetMode, String(v.singleActionSpace)]).toEqual([2, 'next-step', 'Discrete(2)']);
    await v.reset({ seed: 5 });
    expect(Array.from((await v.step([1, 0])).rewards)).toEqual([101.1, 100.1]);
    const saved = await v.getState!();
    expect(saved).toEqual(await inner.getState());
    await expect(v.step([0, 2])).rejects.toThrow(/action 2 for env 1 is not in the action space/);
    await v.close();
    await expect(inner.step([0, 0])).rejects.toThrow(/after close/);
  });
});

/** Runs a vector env for `steps` seeded random steps and records everything, minus wall times. */
async function trace(v: VectorEnv<number, number>, steps: number): Promise<unknown[]> {
  const rng = seedrandom('trace');
  const out: unknown[] = [await v.reset({ seed: 42 })];
  for (let t = 0; t < steps; t++) {
    const s = await v.step(Array.from({ length: v.numEnvs }, () => v.singleActionSpace.sample(rng)));
    out.push({ ...s, rewards: Array.from(s.rewards), info: withoutTimes(s.info) });
  }
  return out;
}

function withoutTimes(info: VectorInfo): VectorInfo {
  const copy = structuredClone(info);
  for (const inf of [copy, copy.final_info] as (VectorInfo | undefined)[]) {
    const ep = inf?.episode as VectorInfo | undefined;
    if (ep) delete ep.t;
  }
  return copy;
}

describe('AsyncVectorEnv', () => {
  const opts = (mode: AutoresetMode): MakeVectorOptions => ({
    id: 'Tick-v0',
    kwargs: { length: 4, maxEpisodeSteps: 3 },
    numEnvs: 5,
    autoresetMode: mode,
    wrappers: [{ type: 'RecordEpisodeStatistics' }, { type: 'PreviousAction' }],
  });

  for (const mode of ['next-step', 'same-step'] as const) {
    it(`gives the same results as SyncVectorEnv (${mode})`, async () => {
      const sync = new SyncVectorEnv<number, number>(opts(mode));
      const async = await AsyncVectorEnv.create<number, number>({
        ...opts(mode),
        numWorkers: 2,
        modules: [registerModule],
      });
      expect(async.numEnvs).toBe(5);
      expect(async.singleObservationSpace.equals(sync.singleObservationSpace)).toBe(true);
      expect(async.singleActionSpace.toString()).toBe('Discrete(2)');
      expect(async.metadata.autoresetMode).toBe(mode);
      const [a, b] = [await trace(sync, 12), await trace(async, 12)];
      expect(b).toEqual(a);
      // The trace saw episode ends, so the comparison covered autoreset.
      expect(JSON.stringify(a)).toContain('"episode"');
      await Promise.all([sync.close(), async.close()]);
      await expect(async.step([0, 0, 0, 0, 0])).rejects.toThrow(/after close/);
    });
  }

  it('checks action batches before sending them and reports worker errors', async () => {
    const v = await AsyncVectorEnv.create<number, number>({ id: 'Tick-v0', numEnvs: 2, numWorkers: 1, modules: [registerModule] });
    await v.reset({ seed: 1 });
    await expect(v.step([0, 0, 0])).rejects.toThrow(/got 3 actions for 2 envs/);
    await expect(v.step([0, 2])).rejects.toThrow(/env 1 is not in the action space/);
    await expect(v.reset({ options: { f: () => 1 } as never })).rejects.toThrow(/could not send reset\(\) to worker 0/);
    await v.close();
    await expect(
      AsyncVectorEnv.create({ id: 'NoSuchEnv-v0', numEnvs: 2, numWorkers: 1, modules: [registerModule] }),
    ).rejects.toThrow(/worker 0: Unknown env id 'NoSuchEnv-v0'/);
    await expect(AsyncVectorEnv.create({ id: 'Tick-v0', numEnvs: 1, modules: ['./x.ts'] })).rejects.toThrow(
      /can't load TypeScript/,
    );
  });
});
