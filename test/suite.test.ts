import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { expandEnvs, maxMeanEpisodicReturn, normaliseReturn, runSuite } from '../training/suite.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('suite scoring', () => {
  it('MMER is the best per-update mean, ignoring updates without episodes', () => {
    expect(maxMeanEpisodicReturn([null, 0.2, 0.7, 0.5, null])).toBe(0.7);
    expect(maxMeanEpisodicReturn([null, null])).toBeNaN();
  });

  it('normalises so random scores 0 and optimal scores 1', () => {
    expect(normaliseReturn(-0.5, { optimal: 1, random: -0.5 })).toBe(0);
    expect(normaliseReturn(1, { optimal: 1, random: -0.5 })).toBe(1);
    expect(normaliseReturn(0.25, { optimal: 1, random: -0.5 })).toBeCloseTo(0.5);
    expect(normaliseReturn(0.3, undefined)).toBeNull();
  });

  it('expands presets and rejects unknown names with the choices', () => {
    const easy = expandEnvs('popgym-easy');
    expect(easy).toContain('popgym-RepeatPreviousEasy-v0');
    expect(easy.every((id) => id.endsWith('Easy-v0'))).toBe(true);
    expect(expandEnvs('PassiveTMazeShort-v0,PassiveTMazeShort-v0')).toEqual(['PassiveTMazeShort-v0']);
    expect(() => expandEnvs('nope')).toThrow(/Unknown env or preset 'nope'.*popgym-easy/);
  });
});

describe('runSuite', () => {
  it('trains each pair and writes a markdown and CSV table', async () => {
    const out = await mkdtemp(join(tmpdir(), 'hqlt-suite-'));
    const seen: string[] = [];
    const { cells, files } = await runSuite({
      envs: ['PassiveTMazeShort-v0'],
      cores: ['mlp'],
      seeds: 1,
      base: { steps: 256, numEnvs: 4, rollout: 32, seqLen: 8, minibatches: 2, epochs: 1, backend: 'wasm' },
      out,
      onRun: (env, core, seed) => seen.push(`${env}/${core}/${seed}`),
    });
    expect(seen).toEqual(['PassiveTMazeShort-v0/mlp/1']);
    expect(cells).toHaveLength(1);
    expect(Number.isFinite(cells[0].mean)).toBe(true);
    expect(cells[0].normalised).not.toBeNull();
    const md = await readFile(files.md, 'utf8');
    expect(md).toContain('| PassiveTMazeShort-v0 |');
    const csv = (await readFile(files.csv, 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('env,mlp,mlp norm');
    expect(csv).toHaveLength(2);
  });
});
