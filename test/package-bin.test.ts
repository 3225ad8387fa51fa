/**
 * `npx hqlt` after `npm install` in a clone: npm (11 at least) neither links nor chmods the project's own bin, so
 * `prepare` marks it executable; without that, the README's first command failed with "hqlt: Permission denied".
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('the hqlt bin', () => {
  it('is an executable node script that runs when started directly', async () => {
    const bin = (JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> }).bin.hqlt!;
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(statSync(bin).mode & 0o111, `${bin} is not executable`).not.toBe(0);
    const { stdout } = await promisify(execFile)(bin, ['--help']);
    expect(stdout).toContain('Usage: hqlt');
  });
});
