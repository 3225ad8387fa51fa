import { describe, expect, it } from 'vitest';
import { toCsv, toMarkdown } from '../training/results-table.js';
import { coreConfigFor, planRuns } from '../cli/commands/supervised-common.js';
import { PAPER_TABLE3_PRESET } from '../cli/commands/synth.js';

describe('results table', () => {
  const table = {
    title: 'T',
    caption: 'small, scaled down',
    columns: ['model', 'acc', 'paper'],
    rows: [
      ['a|b', 12.345, '≈100'],
      ['c,"d"', null, '3.3'],
    ],
  };
  it('writes markdown with escaped pipes, fixed digits and the caption', () => {
    const md = toMarkdown(table);
    expect(md).toContain('| a\\|b | 12.3 | ≈100 |');
    expect(md).toContain('| c,"d" |  | 3.3 |');
    expect(md.trim().endsWith('small, scaled down')).toBe(true);
  });
  it('writes RFC 4180 CSV at full precision', () => {
    expect(toCsv(table)).toBe('model,acc,paper\na|b,12.345,≈100\n"c,""d""",,3.3\n');
  });
  it('rejects ragged rows', () => {
    expect(() => toCsv({ ...table, rows: [['x']] })).toThrow(/row 0 has 1 cells, expected 3/);
  });
});

describe('planning runs', () => {
  it('keeps only the fields each core type accepts', () => {
    const sizes = { dim: 32, layers: 2, heads: 4, window: 8, shortConv: true, blend: 'synchronous' };
    expect(coreConfigFor('gru', sizes)).toEqual({ type: 'gru', dim: 32, layers: 2 });
    expect(coreConfigFor('deltanet', sizes)).toEqual({ type: 'deltanet', dim: 32, layers: 2, heads: 4, shortConv: true });
    expect(coreConfigFor('hqlt-chunk', sizes)).toEqual({ type: 'hqlt-chunk', dim: 32, layers: 2, heads: 4, shortConv: true, window: 8 });
  });
  it('builds the paper-table3 runs: every core valid, Delayed-Chunk with window 16', () => {
    const runs = planRuns(
      { out: 'runs', cores: PAPER_TABLE3_PRESET.cores.join(','), seed: 4 },
      { ...PAPER_TABLE3_PRESET.defaults, task: 'parity' },
      PAPER_TABLE3_PRESET.overrides,
    );
    expect(runs.map((r) => r.label)).toEqual(['deltanet', 'hqlt-sync', 'hqlt-delayed', 'hqlt-chunk', 'transformer']);
    expect(runs.find((r) => r.label === 'hqlt-chunk')!.config.core.window).toBe(16);
    expect(runs.find((r) => r.label === 'hqlt-sync')!.config.core.window).toBe(8);
    expect(runs.every((r) => r.config.seed === 4 && r.config.task === 'parity')).toBe(true);
  });
  it('flags override the defaults; bad fields fail with the field named', () => {
    const [run] = planRuns({ out: 'runs', core: 'hqlt', dim: 16, blend: 'delayed-streaming', steps: 7 }, { task: 'parity', core: { dim: 64, heads: 4 } });
    expect(run.config.steps).toBe(7);
    expect(run.config.core).toMatchObject({ type: 'hqlt', dim: 16, heads: 4, blend: 'delayed-streaming' });
    expect(() => planRuns({ out: 'runs', core: 'hqlt', dim: 30 }, { task: 'parity', core: { heads: 4 } })).toThrow(/divisible by heads/);
    expect(() => planRuns({ out: 'runs', core: 'gru' }, { task: 'nope', core: {} })).toThrow(/task/);
  });
});
