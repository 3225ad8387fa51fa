/**
 * The run lock's handling of a trial process orphaned by a killed suite: a re-run waits for it to exit (it does at
 * its next event-loop turn) instead of failing, while a lock whose holder still has its parent stays an error. The
 * holder here is this test's own child, which nothing reaps while the lock waits: an exited, unreaped process (a
 * zombie) must count as gone, as it does in a container whose init does not reap.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LOCK_FILE, lockRunDir, type LockOwner } from '../util/run-lock.js';
import { Stopped } from '../util/interrupt.js';

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  vi.restoreAllMocks();
});

/** A live process that exits by itself after `ms`. */
function holder(ms: number): number {
  const c = spawn(process.execPath, ['-e', `setTimeout(() => {}, ${ms})`], { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

/** A pid that has just exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

function lockHeldBy(owner: Partial<LockOwner>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hqlt-lock-'));
  const full: LockOwner = { pid: 0, host: hostname(), started: new Date().toISOString(), command: 'trial', ...owner };
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify(full));
  return dir;
}

describe('run lock', () => {
  it('waits for an orphaned trial process (its suite killed) to exit, without blocking the event loop, then takes its lock over', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const pid = holder(1500);
    const dir = lockHeldBy({ pid, parent: deadPid() });
    const start = Date.now();
    let ticks = 0; // the wait yields to the event loop, so signals are handled meanwhile
    const timer = setInterval(() => ticks++, 20);
    const lock = await lockRunDir(dir);
    clearInterval(timer);
    expect(Date.now() - start).toBeGreaterThan(500);
    expect(ticks).toBeGreaterThan(10);
    expect(warn.mock.calls.flat().join('\n')).toContain(`waiting for pid ${pid}`);
    expect(warn.mock.calls.flat().join('\n')).toContain('removed a stale lock');
    lock.release();
  });

  it('Ctrl-C (an aborted signal) during that wait stops it at once, leaving the lock to its holder', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    const pid = holder(20_000);
    const dir = lockHeldBy({ pid, parent: deadPid() });
    const controller = new AbortController();
    setTimeout(() => controller.abort('SIGINT'), 200);
    const start = Date.now();
    const wait = lockRunDir(dir, controller.signal);
    await expect(wait).rejects.toThrow(Stopped);
    await expect(wait).rejects.toThrow(`Stopped while waiting for pid ${pid}`);
    expect(Date.now() - start).toBeLessThan(2000);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(pid);
  });

  it('a holder whose parent is alive (a running suite) is not waited for: the lock is refused at once', async () => {
    const pid = holder(20_000);
    const dir = lockHeldBy({ pid, parent: process.pid });
    const start = Date.now();
    await expect(lockRunDir(dir)).rejects.toThrow(new RegExp(`is in use by another hqlt process \\(pid ${pid}`));
    expect(Date.now() - start).toBeLessThan(2000);
  });
});
