/**
 * `hqlt suite --jobs N` (trials in child processes) and resuming a suite: the table must not depend on how the
 * trials ran or how often the suite was stopped. Runs the built CLI (npm test builds first).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killStarted, runCli, startCli, type CliRun } from './fixtures/cli.js';
import { interrupted, results, suiteArgs, tables } from './fixtures/suite-helpers.js';

afterEach(killStarted);

// 2 envs × 2 cores × 2 seeds.
const ENVS = 'PassiveTMazeShort-v0,popgym-RepeatPreviousEasy-v0';
const CORES = 'mlp,gru';
const args = (out: string, jobs: number) => [...suiteArgs(out, ENVS, CORES, 2), '--jobs', String(jobs)];

let reference: { md: string; csv: string };

beforeAll(async () => {
  const out = await mkdtemp(join(tmpdir(), 'hqlt-suite-ref-'));
  const r = await runCli(args(out, 1));
  expect(r.code, r.stderr).toBe(0);
  reference = tables(out);
  expect(results(out).size).toBe(8);
}, 300_000);

/** Waits until at least `finished` trials have a result and one more has a checkpoint, then returns. */
async function waitForHalfway(out: string, run: CliRun, finished: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(results(out).size >= finished && interrupted(out).length >= 1)) {
    if (run.proc.exitCode !== null) throw new Error(`the suite ended before halfway:\n${run.stdout()}\n${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no halfway point in 120 s:\n${run.stdout()}\n${run.stderr()}`);
    await sleep(50);
  }
}

describe('hqlt suite --jobs', () => {
  it('gives the same table with 2 trial processes as with 1, bit for bit', async () => {
    const out = await mkdtemp(join(tmpdir(), 'hqlt-suite-j2-'));
    const r = await runCli(args(out, 2));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('2 at a time');
    expect(tables(out)).toEqual(reference);
    const workers = new Set([...results(out).values()].map((x) => x.worker));
    expect(workers.size).toBeGreaterThanOrEqual(2); // really ran in separate processes
  }, 300_000);

  it('stops cleanly on SIGINT, survives kill -9, and a re-run finishes with the same table', async () => {
    const out = await mkdtemp(join(tmpdir(), 'hqlt-suite-resume-'));
    // Ctrl-C: running trials checkpoint, exit 130.
    const first = startCli(args(out, 2));
    await waitForHalfway(out, first, 1);
    first.proc.kill('SIGINT');
    const stopped = await first.exited;
    expect(stopped.code, first.stderr()).toBe(130);
    expect(first.stdout()).toMatch(/Stopped the suite; checkpoints of the unfinished trials: .*Run the same command again/);
    const afterStop = results(out);
    const resumable = interrupted(out);
    expect(resumable.length).toBeGreaterThanOrEqual(1);

    // kill -9 of the suite: its trial processes exit with it, the lock files they leave are stale.
    const second = startCli(args(out, 2));
    await waitForHalfway(out, second, afterStop.size + 1);
    second.proc.kill('SIGKILL');
    await second.exited;
    const afterKill = results(out);
    expect(second.stderr()).toContain(`${afterStop.size} of 8 trials already finished`);

    const last = await runCli(args(out, 2));
    expect(last.code, last.stderr).toBe(0);
    expect(last.stderr).toContain(`${afterKill.size} of 8 trials already finished`);
    const final = results(out);
    expect(final.size).toBe(8);
    // Finished trials were not run again: their results are untouched.
    for (const [t, r] of afterKill) expect(final.get(t)).toEqual(r);
    // Interrupted ones resumed from their checkpoints.
    for (const t of resumable) expect(final.get(t)?.resumedFrom, t).toBeGreaterThan(0);
    expect(tables(out)).toEqual(reference);
    expect(await readFile(join(out, 'suite.md'), 'utf8')).toBe(reference.md);
  }, 400_000);
});
