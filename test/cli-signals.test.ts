/**
 * Ctrl-C (SIGINT) and SIGTERM on the commands that train, sent to the built CLI as a user (or a scheduler) would:
 * the first stops at the next safe point with a checkpoint and exits 130 / 143; a second exits at once.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readMetrics } from '../training/metrics.js';
import { killStarted, runCli, SLOW, startCli, waitForFile } from './fixtures/cli.js';

const out = mkdtempSync(join(tmpdir(), 'hqlt-signals-'));
afterEach(killStarted);
afterAll(() => rmSync(out, { recursive: true, force: true }));

const trainerJson = (runDir: string) => JSON.parse(readFileSync(join(runDir, 'checkpoint', 'trainer.json'), 'utf8')) as { snapshot: { update: number } };

describe('hqlt train and signals', () => {
  it.each([
    ['SIGINT', 130, /Interrupted \(SIGINT\): finishing this update and writing a checkpoint \(Ctrl-C again to quit at once\)/],
    ['SIGTERM', 143, /Terminated \(SIGTERM\): finishing this update and writing a checkpoint \(SIGTERM again to quit at once\)/],
  ] as const)('%s mid-update finishes the update, checkpoints and exits %i; the run resumes', async (sig, code, notice) => {
    const runDir = join(out, sig);
    // --steps: thousands of updates; only the signal can end this run within the test's time.
    const run = startCli(['train', ...SLOW, '--steps', '100000000', '--checkpoint-every', '0', '--out', out, '--name', sig]);
    await waitForFile(join(runDir, 'config.json'), run); // written after the handlers are installed, before update 1
    run.proc.kill(sig);
    const { code: exit } = await run.exited;
    expect(run.stderr()).toMatch(notice);
    expect(exit).toBe(code);
    expect(run.stdout()).toContain(`Stopped after update 1; checkpoint in ${join(runDir, 'checkpoint')}. Continue with: hqlt train --resume ${runDir}`);
    expect(trainerJson(runDir).snapshot.update).toBe(1);
    expect(existsSync(join(runDir, 'run.lock'))).toBe(false);

    if (sig === 'SIGTERM') return; // one resume is enough
    const resumed = await runCli(['train', '--resume', runDir, '--steps', String(2 * 16 * 128)]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^Done: /m);
    expect(readMetrics(join(runDir, 'metrics.jsonl')).map((m) => m.update)).toEqual([1, 2]);
  });

  it('a second signal exits at once, without waiting for the update', async () => {
    const runDir = join(out, 'twice');
    const run = startCli(['train', ...SLOW, '--steps', '100000000', '--out', out, '--name', 'twice']);
    await waitForFile(join(runDir, 'config.json'), run);
    run.proc.kill('SIGINT');
    await run.waitFor(/Interrupted \(SIGINT\)/);
    run.proc.kill('SIGINT');
    const { code } = await run.exited;
    expect(code).toBe(130);
    expect(run.stderr()).toContain('SIGINT again: quitting now; the last checkpoint written is kept.');
    // It quit inside update 1: no update was logged, no checkpoint written, and the lock went with the process.
    expect(run.stdout()).not.toContain('Stopped after');
    expect(readMetrics(join(runDir, 'metrics.jsonl'))).toEqual([]);
    expect(existsSync(join(runDir, 'checkpoint'))).toBe(false);
    expect(existsSync(join(runDir, 'run.lock'))).toBe(false);
  });
});

describe('supervised commands and signals', () => {
  it('hqlt synth stops on Ctrl-C with a checkpoint of the current step', async () => {
    const runDir = join(out, 'synth');
    const args = ['synth', '--task', 'parity', '--core', 'gru', '--dim', '8', '--layers', '1', '--batch', '4'];
    const run = startCli([...args, '--steps', '10000000', '--eval-every', '10000000', '--backend', 'cpu', '--out', out, '--name', 'synth']);
    await waitForFile(join(runDir, 'config.json'), run);
    run.proc.kill('SIGINT');
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(130);
    const state = JSON.parse(readFileSync(join(runDir, 'checkpoint', 'state.json'), 'utf8')) as { step: number };
    expect(state.step).toBeGreaterThan(0);
    expect(state.step).toBeLessThan(10_000_000);
    expect(run.stdout()).toContain(`Stopped gru at step ${state.step}; checkpoint in ${join(runDir, 'checkpoint')}. Continue with the same command plus --resume.`);
    expect(existsSync(join(runDir, 'run.lock'))).toBe(false);
  });
});
