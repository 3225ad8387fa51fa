/**
 * Atomic file writes, for weights, checkpoints, metrics and results: a crash mid-write never leaves a half-written
 * file (or folder) where a good one was. Every temporary is named `<target>.tmp-<pid>-<hex>` (a folder being
 * replaced is parked as `<target>.old-<pid>-<hex>`), so `cleanStaleTemporaries` can recognise what a killed writer
 * left behind. Failed writes name the file they were writing (Node's ENOSPC message does not).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const sidecar = (path: string, kind: 'tmp' | 'old') => `${path}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`;

/** A temporary or parked name made here; `-<hex>` is optional because earlier versions wrote `.tmp-<pid>`. */
const SIDECAR = /^(.+)\.(tmp|old)-\d+(?:-[0-9a-f]+)?$/;

/** What a write or append failure says: the file, the system's reason, and for a full disk what to do. */
export function fileError(action: string, path: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const hint =
    e.code === 'ENOSPC' || e.code === 'EDQUOT'
      ? ' The disk is full (or over quota): free space there, or write elsewhere, and try again.'
      : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
        ? ' Check the folder is writable, or write elsewhere.'
        : '';
  return Object.assign(new Error(`Cannot ${action} ${path}: ${e.message ?? String(err)}.${hint}`, { cause: err }), { code: e.code });
}

/** Writes to a temp file beside `path`, then renames it into place (rename is atomic on one filesystem). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = sidecar(path, 'tmp');
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw fileError('write', path, err);
  }
}

/** The synchronous twin of `writeFileAtomic`, for code paths that must finish before the process can exit. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = sidecar(path, 'tmp');
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw fileError('write', path, err);
  }
}

/**
 * Appends to a file (metrics logs); not atomic, so a reader must tolerate a torn last line after a crash or a
 * full disk (see `readMetrics`). Failures name the file.
 */
export function appendFileNamedSync(path: string, data: string): void {
  try {
    appendFileSync(path, data);
  } catch (err) {
    throw fileError('append to', path, err);
  }
}

/**
 * Replaces the folder `dir` by one holding exactly `files` (name → contents): they are written into a temp folder
 * beside it, which is then swapped in with two renames. A crash leaves the old folder, the new one, or the old one
 * parked under an `.old-` name that `recoverFolder` puts back.
 */
export function writeFolderAtomicSync(dir: string, files: Record<string, string | Uint8Array>): void {
  const tmp = sidecar(dir, 'tmp');
  let current = tmp;
  try {
    mkdirSync(tmp, { recursive: true });
    for (const [name, data] of Object.entries(files)) {
      current = join(tmp, name);
      writeFileSync(current, data);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw fileError('write', current, err);
  }
  const old = sidecar(dir, 'old');
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/**
 * A crash between the two renames of `writeFolderAtomicSync` leaves the previous folder under its `.old-` name;
 * puts it back when `dir` is missing, so the last good copy stays usable.
 */
export function recoverFolder(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (!existsSync(parent)) return;
  const parked = readdirSync(parent).filter((f) => {
    const m = SIDECAR.exec(f);
    return m?.[1] === basename(dir) && m[2] === 'old';
  });
  if (parked.length > 0) renameSync(join(parent, parked.sort().at(-1)!), dir);
}

/**
 * Removes, from `folder` (not recursively), the temporaries and parked folders that writers killed mid-write
 * (kill -9, a full disk, a power cut) left behind, after putting back any parked folder that is the only copy.
 * Returns the names removed. Call it only while no other process writes there (e.g. holding the run's lock): a
 * live writer's temporary looks the same.
 */
export function cleanStaleTemporaries(folder: string): string[] {
  if (!existsSync(folder)) return [];
  for (const f of readdirSync(folder)) {
    const m = SIDECAR.exec(f);
    if (m?.[2] === 'old') recoverFolder(join(folder, m[1]));
  }
  const stale = readdirSync(folder).filter((f) => SIDECAR.test(f));
  for (const f of stale) rmSync(join(folder, f), { recursive: true, force: true });
  return stale;
}

/** The names of `dir`'s subfolders, sorted ([] when `dir` does not exist). */
export function subfolders(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
}
