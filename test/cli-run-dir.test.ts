/**
 * The run folder as the built CLI leaves it when things go wrong: two trains into one folder at once, kill -9
 * (mid-write or not), and a full disk (a real tmpfs filled up). One writer per folder, no temporaries left behind,
 * failures that name the file, and a resume that continues the run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readMetrics } from '../training/metrics.js';
import { killStarted, runCli, startCli, TINY, type CliRun } from './fixtures/cli.js';

const out = mkdtempSync(join(tmpdir(), 'hqlt-rundir-'));
afterEach(killStarted);
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** A pid that certainly belongs to no process now: one that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

/** Entries of a run folder that are temporaries of an atomic write. */
const temporaries = (dir: string) => readdirSync(dir).filter((f) => /\.(tmp|old)-/.test(f));

const updates = (runDir: string) => readMetrics(join(runDir, 'metrics.jsonl')).map((m) => m.update);

describe('one train per run folder', () => {
  it('of two trains started at once into one folder, one refuses with the owner; the other runs cleanly', async () => {
    const args = ['train', ...TINY, '--steps', '100000000', '--checkpoint-every', '1', '--out', out, '--name', 'both'];
    const runs = [startCli(args), startCli(args)];
    const first = await Promise.race(runs.map((r, i) => r.exited.then((e) => ({ ...e, i }))));
    const loser = runs[first.i];
    const winner = runs[1 - first.i];
    expect(first.code, loser.stderr()).toBe(1);
    expect(loser.stderr()).toContain(
      `hqlt: ${join(out, 'both')} is in use by another hqlt process (pid ${winner.proc.pid}, since `,
    );
    expect(loser.stderr()).toContain(`If that process is gone, delete ${join(out, 'both', 'run.lock')}.`);
    // The winner was not disturbed: it trains on, then stops on Ctrl-C with a log of one run.
    await winner.waitFor(/^update 3 /m);
    winner.proc.kill('SIGINT');
    expect((await winner.exited).code).toBe(130);
    const logged = updates(join(out, 'both'));
    expect(logged).toEqual(logged.map((_, i) => i + 1));
  });

  it('a lock held on another host is refused, naming the host and the file to delete', async () => {
    const runDir = join(out, 'remote-lock');
    mkdirSync(runDir);
    const owner = { pid: 4242, host: 'other-machine', started: '2026-01-01T00:00:00.000Z', command: 'hqlt train' };
    writeFileSync(join(runDir, 'run.lock'), JSON.stringify(owner));
    const r = await runCli(['train', ...TINY, '--steps', '32', '--out', out, '--name', 'remote-lock']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is in use by another hqlt process (pid 4242 on host other-machine, since 2026-01-01T00:00:00.000Z: hqlt train)');
    expect(JSON.parse(readFileSync(join(runDir, 'run.lock'), 'utf8'))).toEqual(owner);
  });
});

describe('after kill -9', () => {
  it('resume takes over the stale lock and removes the temporaries a killed writer left', async () => {
    const runDir = join(out, 'killed');
    const run: CliRun = startCli(['train', ...TINY, '--steps', '100000000', '--checkpoint-every', '1', '--out', out, '--name', 'killed']);
    await run.waitFor(/^update 3 /m);
    run.proc.kill('SIGKILL');
    await run.exited;
    expect(JSON.parse(readFileSync(join(runDir, 'run.lock'), 'utf8')).pid).toBe(run.proc.pid);
    // What a kill -9 in the middle of writes leaves (the timing of a real one cannot be chosen): a half-written
    // checkpoint folder and a metrics temp file, of a process that no longer exists.
    const pid = deadPid();
    mkdirSync(join(runDir, `checkpoint.tmp-${pid}`));
    writeFileSync(join(runDir, `checkpoint.tmp-${pid}`, 'weights.safetensors'), 'half');
    writeFileSync(join(runDir, `metrics.jsonl.tmp-${pid}-0123abcd`), '{"upd');
    const done = updates(runDir).length;

    const resumed = await runCli(['train', '--resume', runDir, '--steps', String(32 * (done + 2))]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`Note: removed a stale lock on ${runDir} (pid ${run.proc.pid} is no longer running).`);
    expect(resumed.stderr).toMatch(/Note: removed .*checkpoint\.tmp-\d+.* from .*: left by a run killed mid-write\./);
    expect(temporaries(runDir)).toEqual([]);
    expect(existsSync(join(runDir, 'run.lock'))).toBe(false);
    const logged = updates(runDir);
    expect(logged).toEqual(logged.map((_, i) => i + 1));
    expect(logged.length).toBe(done + 2);
  });
});

/** Mounts a tmpfs of `size` at a fresh folder; undefined (with the reason) where mounting is not permitted. */
function mountTmpfs(size: string): { dir: string; resize(size: string): void; unmount(): void } | { reason: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hqlt-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { reason: `cannot mount a tmpfs here (${(r.stderr || r.error?.message || '').trim()}); run as root to test a full disk` };
  }
  return {
    dir,
    resize: (s) => void spawnSync('mount', ['-o', `remount,size=${s}`, dir]),
    unmount: () => {
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('a full disk', () => {
  it('fails naming the file, leaves no temporaries, keeps the last checkpoint, and resumes once there is space', async (ctx) => {
    const fs = mountTmpfs('160k');
    if ('reason' in fs) {
      console.warn(`skipped: ${fs.reason}`);
      return ctx.skip(fs.reason);
    }
    try {
      const runDir = join(fs.dir, 'full');
      // A checkpoint here takes ~52 KiB of pages and the swap keeps two for a moment; the metrics grow ~600 bytes an
      // update, so the disk fills after some tens of updates.
      const args = ['train', ...TINY, '--num-envs', '16', '--rollout', '32', '--steps', String(512 * 120), '--checkpoint-every', '1'];
      const r = await runCli([...args, '--out', fs.dir, '--name', 'full']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`hqlt: Cannot (write|append to) ${runDir}/\\S+: ENOSPC: no space left on device`));
      expect(r.stderr).toContain('The disk is full (or over quota): free space there, or write elsewhere, and try again.');
      expect(r.stderr).toMatch(new RegExp(`The checkpoint of update \\d+ in ${runDir}/checkpoint is intact: once the cause is fixed, continue with: hqlt train --resume ${runDir}`));
      expect(temporaries(runDir)).toEqual([]);
      expect(existsSync(join(runDir, 'run.lock'))).toBe(false);

      fs.resize('8m');
      const resumed = await runCli(['train', '--resume', runDir]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(temporaries(runDir)).toEqual([]);
      expect(updates(runDir)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    } finally {
      fs.unmount();
    }
  });
});
