/**
 * One writer per run folder: a lock file `<run>/run.lock` holding the owner's pid, host, start time and command,
 * created with O_EXCL so only one of two processes starting at once can make it. A lock whose pid is no longer
 * alive on this host (a run killed with kill -9, a power cut) is stale and taken over; a lock from another host
 * cannot be checked and is reported with how to remove it. A suite's trial process records its parent: when the
 * suite was killed (kill -9), its trial processes exit at their next event-loop turn, which under load can be
 * seconds after a re-run starts, so a lock held by such an orphan is waited for (up to ORPHAN_WAIT_MS).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileError } from './files.js';
import { Stopped } from './interrupt.js';

export const LOCK_FILE = 'run.lock';

/** What a lock file records. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  command: string;
  /** The pid of the process that forked this one with an IPC channel (a suite's trial process), if any. */
  parent?: number;
}

/** How long a lock held by an orphaned trial process (its parent gone) is waited for. */
export const ORPHAN_WAIT_MS = 30_000;

export interface RunLock {
  readonly path: string;
  /** Removes the lock file if this lock still owns it; safe to call twice. */
  release(): void;
}

function readOwner(path: string): LockOwner | 'missing' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw fileError('read', path, err);
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string') return { started: '?', command: '?', ...o } as LockOwner;
  } catch {
    // falls through: not JSON (a crash between creating the file and writing it)
  }
  return 'unreadable';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !zombie(pid);
}

/**
 * Whether pid has exited but not been reaped (Linux; elsewhere false). Such a process holds nothing, yet signal 0
 * still reaches it: in a container whose init does not reap, a killed run's process can stay a zombie for good.
 */
function zombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/**
 * Waits (up to ORPHAN_WAIT_MS) for an orphaned trial process holding a lock to exit; asynchronously, so a Ctrl-C
 * meanwhile (an aborted `signal`) stops the wait.
 */
async function waitForExit(owner: LockOwner, runDir: string, signal?: AbortSignal): Promise<void> {
  console.warn(`Note: waiting for pid ${owner.pid} (a trial process of a suite that is gone) to exit and release its lock.`);
  const end = Date.now() + ORPHAN_WAIT_MS;
  while (alive(owner.pid) && Date.now() < end) {
    if (signal?.aborted) throw new Stopped(`Stopped while waiting for pid ${owner.pid} to release ${runDir}; nothing was written.`);
    await sleep(50);
  }
}

const same = (a: LockOwner, b: LockOwner) => a.pid === b.pid && a.host === b.host && a.started === b.started;

/**
 * Takes the lock of `runDir` (which must exist) or throws a message naming the owner. Stale locks are replaced,
 * with a note on stderr; an aborted `signal` stops a wait for an orphaned holder (throwing `Stopped`). The lock is
 * also released when the process exits (a second Ctrl-C calls process.exit).
 */
export async function lockRunDir(runDir: string, signal?: AbortSignal): Promise<RunLock> {
  const path = join(runDir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  if (process.send) me.parent = process.ppid;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(me) + '\n', { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError('create the lock file', path, err);
    }
    const owner = readOwner(path);
    if (owner === 'missing' && attempt < 3) continue; // released between our attempt and the read: try again
    if (owner === 'unreadable' && attempt < 3) {
      // Most likely just created and not yet written by its owner: look again shortly.
      await sleep(20);
      continue;
    }
    if (owner === 'missing' || owner === 'unreadable') {
      throw new Error(
        `${runDir} is locked by ${path}, which cannot be read. If no other hqlt process is using this run, delete that file and try again.`,
      );
    }
    const local = owner.host === me.host && owner.pid !== process.pid;
    if (local && owner.parent !== undefined && !alive(owner.parent) && alive(owner.pid)) await waitForExit(owner, runDir, signal);
    const stale = local && !alive(owner.pid);
    if (!stale || attempt >= 3) {
      const where = owner.host === me.host ? '' : ` on host ${owner.host}`;
      const who = owner.pid === process.pid && !where ? 'another run in this process' : 'another hqlt process';
      throw new Error(
        `${runDir} is in use by ${who} (pid ${owner.pid}${where}, since ${owner.started}: ${owner.command}). ` +
          `Two runs in one folder would mix their metrics and overwrite each other's checkpoints: wait for it to finish ` +
          `or stop it, or use another --name. If that process is gone, delete ${path}.`,
      );
    }
    // Re-read just before removing, so a lock another process has just taken over is not removed (the window left
    // between this read and the removal is microseconds).
    const again = readOwner(path);
    if (typeof again === 'object' && same(again, owner)) {
      rmSync(path, { force: true });
      console.warn(`Note: removed a stale lock on ${runDir} (pid ${owner.pid} is no longer running).`);
    }
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    try {
      const owner = readOwner(path);
      if (typeof owner === 'object' && same(owner, me)) rmSync(path, { force: true });
    } catch {
      // The folder went away or became unreadable: nothing left to release.
    }
  };
  process.on('exit', release);
  return { path, release };
}
