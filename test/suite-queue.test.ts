/**
 * `hqlt suite --queue` and `hqlt worker` on a real Redis (a redis-server this file starts on a free loopback port):
 * the table equals a local run's, a worker killed mid-trial loses nothing, jobs are not duplicated, bad jobs fail
 * alone, and workers outlive Redis outages. Runs the built CLI (npm test builds first).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { killStarted, runCli, startCli, type CliRun } from './fixtures/cli.js';
import { redisMissing, startRedis, stopRedis, type TestRedis } from './fixtures/redis.js';
import { describeUnless } from './fixtures/skip.js';
import { results, suiteArgs, tables } from './fixtures/suite-helpers.js';
import { CheckpointStore, enqueueTrials, QUEUE_NAME, redisConnection } from '../training/rl/suite/queue.js';
import { planTrials } from '../training/rl/suite/trial.js';

afterEach(killStarted);
afterAll(stopRedis);

const ENVS = 'PassiveTMazeShort-v0,popgym-RepeatPreviousEasy-v0';
const CORE = 'gru';
const STEPS = 3840; // 30 updates per trial
const worker = (url: string, work: string) => startCli(['worker', '--queue', url, '--work', work, '--lock-ms', '2000', '--backend', 'wasm']);

async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, runs: CliRun[] = [], ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    const dead = runs.find((r) => r.proc.exitCode !== null);
    if (dead) throw new Error(`hqlt exited while waiting for ${what}:\n${dead.stdout()}\n${dead.stderr()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${runs.map((r) => r.stderr()).join('\n---\n')}`);
    await sleep(100);
  }
}

const tmp = (name: string) => mkdtemp(join(tmpdir(), `hqlt-${name}-`));

describeUnless(redisMissing(), 'hqlt suite --queue with hqlt worker (real Redis)', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });

  it('finishes a suite when a worker is killed mid-trial; the trial resumes on the other worker; same table as a local run', async () => {
    const local = await tmp('suite-local');
    const ref = await runCli(suiteArgs(local, ENVS, CORE, 2, STEPS));
    expect(ref.code, ref.stderr).toBe(0);

    const url = redis.url(1);
    const out = await tmp('suite-queue');
    const a = worker(url, await tmp('worker-a'));
    const b = worker(url, await tmp('worker-b'));
    const suite = startCli([...suiteArgs(out, ENVS, CORE, 2, STEPS), '--queue', url]);
    const runs = [a, b, suite];
    // Kill worker a once the trial it took has published a checkpoint.
    const victim = await until('worker a to take a trial', () => /took trial (\S+)/.exec(a.stderr())?.[1], runs);
    const queue = new Queue(QUEUE_NAME, { connection: redisConnection(url) });
    const store = new CheckpointStore(await queue.client);
    const published = await until('a published checkpoint', async () => (await store.get(victim))?.update, runs);
    await queue.close();
    a.proc.kill('SIGKILL');
    await a.exited;

    const done = await suite.exited;
    expect(done.code, suite.stderr()).toBe(0);
    const final = [...results(out).values()];
    expect(final).toHaveLength(4);
    expect(new Set(final.map((r) => r.id)).size).toBe(4);
    const resumed = final.find((r) => r.id === victim)!;
    expect(resumed.worker).toBe(`${resumed.worker.split(':')[0]}:${b.proc.pid}`);
    expect(resumed.resumedFrom).toBeGreaterThanOrEqual(published);
    expect(b.stderr()).toMatch(new RegExp(`took trial ${victim.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, resuming from the checkpoint of update \\d+`));
    // Each trial finished once: a's finished ones plus b's are the 4 trials.
    const finishedLines = (a.stderr() + b.stderr()).match(/finished trial \S+/g) ?? [];
    expect(finishedLines.sort()).toEqual([...new Set(finishedLines)].sort());
    expect(finishedLines).toHaveLength(4);
    expect(tables(out)).toEqual(tables(local));
  }, 400_000);

  it('enqueues a suite once however often it is queued', async () => {
    const url = redis.url(2);
    const trials = planTrials(['PassiveTMazeShort-v0'], ['mlp', 'gru'], 2, { steps: 256 });
    expect(await enqueueTrials(url, trials, () => {})).toEqual({ added: 4, existing: 0 });
    expect(await enqueueTrials(url, trials, () => {})).toEqual({ added: 0, existing: 4 });
    const queue = new Queue(QUEUE_NAME, { connection: redisConnection(url) });
    const counts = await queue.getJobCounts();
    await queue.obliterate({ force: true });
    await queue.close();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(4);
  });

  it('fails a job for an unknown env or core with a clear error, and goes on with the next', async () => {
    const url = redis.url(3);
    const [good] = planTrials(['PassiveTMazeShort-v0'], ['mlp'], 1, { steps: 256, numEnvs: 4, rollout: 32, seqLen: 8, minibatches: 2, epochs: 1, backend: 'wasm' });
    const badEnv = { ...good, id: 'NoSuchEnv-v0/mlp/s1-x', env: 'NoSuchEnv-v0' };
    const badCore = { ...good, id: 'PassiveTMazeShort-v0/nosuchcore/s1-x', core: 'nosuchcore', settings: { ...good.settings, core: { type: 'nosuchcore' } } };
    await enqueueTrials(url, [badEnv, badCore, good], () => {});
    const w = worker(url, await tmp('worker-bad'));
    const queue = new Queue(QUEUE_NAME, { connection: redisConnection(url) });
    const state = async (id: string) => (await queue.getJob(id))?.getState();
    await until('the good trial to finish', async () => (await state(good.id)) === 'completed', [w]);
    const env = (await queue.getJob(badEnv.id))!;
    const core = (await queue.getJob(badCore.id))!;
    expect(await env.getState()).toBe('failed');
    expect(env.failedReason).toMatch(/unknown env 'NoSuchEnv-v0'.*Install an hqlt that registers it/);
    expect(env.attemptsMade).toBe(1); // not retried: it cannot succeed anywhere
    expect(await core.getState()).toBe('failed');
    expect(core.failedReason).toMatch(/nosuchcore/);
    await queue.close();
  }, 120_000);

  it('workers report a lost Redis and reconnect when it is back; a suite without Redis says what to do', async () => {
    const url = redis.url(4);
    const w = worker(url, await tmp('worker-outage'));
    await w.waitFor(/taking trials from/);
    await redis.kill();
    await w.waitFor(/lost Redis at redis:\/\/127\.0\.0\.1:\d+\/4 \(.*\); retrying/);
    const noRedis = await runCli([...suiteArgs(await tmp('suite-noredis'), 'PassiveTMazeShort-v0', 'mlp', 1, 256), '--queue', url]);
    expect(noRedis.code).toBe(1);
    expect(noRedis.stderr).toMatch(/Cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/4 within 10 s\. Start it/);
    expect(w.proc.exitCode).toBeNull(); // still waiting
    await redis.restart();
    await w.waitFor(/reconnected to Redis/);
    const out = await tmp('suite-after-outage');
    const r = await runCli([...suiteArgs(out, 'PassiveTMazeShort-v0', 'mlp', 1, 256), '--queue', url]);
    expect(r.code, r.stderr).toBe(0);
    expect(results(out).size).toBe(1);
  }, 120_000);
});
