/**
 * Atomic file writes, for weights, checkpoints, metrics and results: a crash mid-write never leaves a half-written
 * file where a good one was.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const tempName = (path: string) => `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

/** Writes to a temp file beside `path`, then renames it into place (rename is atomic on one filesystem). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The synchronous twin of `writeFileAtomic`, for code paths that must finish before the process can exit. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
