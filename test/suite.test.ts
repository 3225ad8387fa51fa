import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import type { ReturnBounds } from '../envs/env.js';
import { toCsv, toMarkdown } from '../training/results-table.js';
import { expandEnvs, maxMeanEpisodicReturn, normaliseReturn, runSuite, suiteTable } from '../training/rl/suite.js';

const source = { optimal: 'analytic: test', random: 'analytic: test' };
const reachable: ReturnBounds = { optimal: 1, random: -0.5, reachable: true, source };
const oracle: ReturnBounds = { optimal: 1, random: -0.5, reachable: false, source: { ...source, optimal: 'oracle: test' } };

beforeAll(async () => {
  await initBackend('wasm');
});

describe('suite scoring', () => {
  it('MMER is the best per-update mean, ignoring updates without episodes', () => {
    expect(maxMeanEpisodicReturn([null, 0.2, 0.7, 0.5, null])).toBe(0.7);
    expect(maxMeanEpisodicReturn([null, null])).toBeNaN();
  });

  it('normalises so random scores 0 and optimal scores 1, only by reachable bounds', () => {
    expect(normaliseReturn(-0.5, reachable)).toBe(0);
    expect(normaliseReturn(1, reachable)).toBe(1);
    expect(normaliseReturn(0.25, reachable)).toBeCloseTo(0.5);
    expect(normaliseReturn(0.3, undefined)).toBeNull();
    expect(normaliseReturn(0.3, oracle)).toBeNull();
  });

  it('tabulates raw MMER first, the normalised score or -, and where the bounds come from', () => {
    const cell = (env: string, mean: number, bounds?: ReturnBounds) => ({ env, core: 'gru', mmer: [mean], mean, normalised: normaliseReturn(mean, bounds), bounds });
    const cells = [cell('a', 0.25, reachable), cell('b', 0.4, oracle), cell('c', 0.1)];
    const table = suiteTable(cells, { envs: ['a', 'b', 'c'], cores: ['gru'], seeds: 1, base: {} });
    const md = toMarkdown(table).split('\n');
    expect(md[2]).toBe('| env | gru | gru norm | bounds (source) |');
    expect(md[4]).toBe('| a | 0.250 | 0.500 | random -0.500 (analytic: test); optimal 1.000 (analytic: test) |');
    expect(md[5]).toBe('| b | 0.400 | - | random -0.500 (analytic: test); optimal 1.000 unreachable (oracle: test) |');
    expect(md[6]).toBe('| c | 0.100 | - | none stated |');
    expect(toCsv(table).split('\n')[2]).toBe('b,0.4,,random -0.500 (analytic: test); optimal 1.000 unreachable (oracle: test)');
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
    expect(csv[0]).toBe('env,mlp,mlp norm,bounds (source)');
    expect(csv).toHaveLength(2);
  });
});
