/**
 * The results pipeline end to end through the built CLI, at the `tiny` budget (seconds, measures nothing): the
 * Table 3 preset, the suite presets and the Passive Visual Match comparison each run, aggregate, tabulate and plot
 * into a results folder, and `hqlt results` regenerates a README copy's Results section from those folders. Plus
 * the aggregation helpers on hand-made numbers.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expandEnvs } from '../training/rl/suite.js';
import { successTable } from '../training/rl/suite-report.js';
import { summariseCurves, type CurvePoint } from '../training/plot.js';
import { meanStdCell } from '../training/results-table.js';
import { README_BEGIN, README_END, readRecord, replaceBetweenMarkers, updateReadme } from '../training/results.js';
import { synthByLength, withBudget, type SynthRun } from '../training/supervised/synth.js';
import { runCli } from './fixtures/cli.js';

const root = mkdtempSync(join(tmpdir(), 'hqlt-results-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const results = join(root, 'results');
const read = (...p: string[]) => readFileSync(join(...p), 'utf8');
const SIX = 'hqlt-sync,hqlt-delayed,deltanet,transformer,gru,mlp';

async function hqlt(args: string[]): Promise<string> {
  const r = await runCli(args);
  expect(r.code, `hqlt ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The data rows of a Markdown table (lines starting with `|`, header and rule dropped). */
const mdRows = (md: string) => md.split('\n').filter((l) => l.startsWith('| ')).slice(1);

describe('results pipeline at the tiny budget (built CLI)', () => {
  it("synth --preset paper-table3-full: all five models × both tasks × 2 seeds, mean ± std beside the paper's figures", async () => {
    const dir = join(results, 'paper-table3-full');
    await hqlt(['synth', '--preset', 'paper-table3-full', '--budget', 'tiny', '--seeds', '2', '--backend', 'cpu', '--out', join(root, 'runs'), '--results', dir]);
    const md = read(dir, 'table.md');
    expect(md).toContain('| model | parity test | parity train lengths | parity (paper) | modular-arithmetic test | modular-arithmetic train lengths | modular-arithmetic (paper) |');
    const rows = mdRows(md).slice(1);
    expect(rows.map((r) => r.split(' | ')[0].slice(2))).toEqual(['DeltaNet', 'HQLT Synchronous', 'HQLT Delayed-Streaming', 'HQLT Delayed-Chunk', 'Transformer']);
    for (const row of rows) expect(row.match(/-?\d+\.\d ± \d+\.\d/g)).toHaveLength(4);
    expect(rows[0]).toMatch(/\| 100\.0 \|.*\| 97\.1 \|$/);
    expect(md).toContain("budget 'tiny'");
    // 2 tasks × 5 cores × 2 seeds, each with its final numbers.
    const runs = read(dir, 'runs.csv').trim().split('\n');
    expect(runs[0]).toBe('task,core,seed,steps,test normalised %,train-lengths normalised %,test accuracy %,train-lengths accuracy %,seconds');
    expect(runs).toHaveLength(21);
    expect(runs.filter((l) => /^modular-arithmetic,hqlt-chunk,1,2,/.test(l))).toHaveLength(1);
    for (const svg of ['curves.svg', 'by-length.svg']) expect(read(dir, svg).startsWith('<svg')).toBe(true);
    expect(read(dir, 'by-length.svg')).toContain('modular-arithmetic: accuracy by length');
    expect(read(dir, 'curves.csv').split('\n')[0]).toBe('group,run,metric,step,value');
    const record = readRecord(dir)!;
    expect(record.commands).toHaveLength(1);
    expect(record.commands[0].command).toMatch(/^hqlt synth --preset paper-table3-full --budget tiny --seeds 2 /);
    expect(record.commands[0].hardware).toMatch(/cores.*backend cpu/);
    expect(record.commands[0].files).toContain('table.md');
  });

  it("synth takes the task from a --config file (its table names it) and refuses a --task that contradicts it", async () => {
    const config = join(root, 'ma.json');
    writeFileSync(config, JSON.stringify({ task: 'modular-arithmetic', core: { type: 'gru', dim: 8, layers: 1 } }));
    const dir = join(results, 'ma-gru');
    await hqlt(['synth', '--config', config, '--budget', 'tiny', '--backend', 'cpu', '--out', join(root, 'runs'), '--results', dir]);
    expect(read(dir, 'table.md')).toContain('| model | modular-arithmetic test | modular-arithmetic train lengths |');
    const r = await runCli(['synth', '--config', config, '--task', 'parity', '--budget', 'tiny', '--backend', 'cpu', '--out', join(root, 'runs')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("hqlt: The --config file's task 'modular-arithmetic' contradicts --task parity: drop one of them.");
  });

  it('suite: Passive Visual Match with the six cores; success rate table and curves, and hqlt plot --suite', async () => {
    const out = join(root, 'pvm');
    const dir = join(results, 'visual-match');
    await hqlt(['suite', '--envs', 'visual-match-short', '--cores', SIX, '--seeds', '1', '--budget', 'tiny', '--backend', 'cpu', '--out', out, '--results', dir]);
    expect(mdRows(read(dir, 'suite.md'))[1]).toMatch(/^\| PassiveVisualMatchShort-v0 \| -?\d/);
    const success = mdRows(read(dir, 'success.md')).slice(1);
    expect(success.map((r) => r.split(' | ')[1])).toEqual(SIX.split(','));
    for (const r of success) expect(r).toMatch(/^\| PassiveVisualMatchShort-v0 \| [a-z-]+ \| 1 \| \d+\.\d \| \d+\.\d \|$/);
    const curves = read(dir, 'curves.csv');
    for (const core of SIX.split(',')) expect(curves).toContain(`${core},s1,PassiveVisualMatchShort-v0: successRate,`);
    const svg = join(root, 'pvm.svg');
    await hqlt(['plot', '--suite', out, '--y', 'successRate', '--out', svg, '--csv', join(root, 'pvm.csv')]);
    expect(read(svg)).toContain('PassiveVisualMatchShort-v0: successRate');
    expect(read(join(root, 'pvm.csv')).trim().split('\n').length).toBeGreaterThan(6);
  });

  it('suite presets popgym-easy and memory run end to end (mlp, 1 seed)', async () => {
    for (const preset of ['popgym-easy', 'memory']) {
      const dir = join(results, preset);
      await hqlt(['suite', '--envs', preset, '--cores', 'mlp', '--seeds', '1', '--budget', 'tiny', '--backend', 'cpu', '--out', join(root, preset), '--results', dir]);
      const envs = expandEnvs(preset);
      expect(mdRows(read(dir, 'suite.md')).slice(1).map((r) => r.split(' | ')[0].slice(2))).toEqual(envs);
      expect(read(dir, 'trials.csv').trim().split('\n')).toHaveLength(envs.length + 1);
    }
    expect(expandEnvs('popgym-easy')).toHaveLength(16);
    expect(expandEnvs('memory')).toEqual(expect.arrayContaining(['PassiveVisualMatch-v0', 'KeyToDoor-v0']));
  });

  it('hqlt results regenerates the Results section of a README copy from those folders, and only that', async () => {
    const readme = join(root, 'README.md');
    writeFileSync(readme, `# x\n\nbefore\n\n${README_BEGIN}\nold text\n${README_END}\n\nafter\n`);
    await hqlt(['results', '--dir', results, '--readme', readme]);
    const text = read(readme);
    expect(text.startsWith('# x\n\nbefore\n\n')).toBe(true);
    expect(text.endsWith(`${README_END}\n\nafter\n`)).toBe(true);
    expect(text).not.toContain('old text');
    expect(text).toContain("### Seed paper's Table 3: paper-table3-full");
    expect(text).toContain('#### Success rate per env × core');
    expect(text).toContain('![curves.svg](results/visual-match/curves.svg)');
    expect(text).toContain('[runs.csv](results/paper-table3-full/runs.csv)');
    expect(text).toMatch(/```bash\nhqlt suite --envs visual-match-short /);
    expect(text).toMatch(/Hardware: .*backend cpu\. Wall time [\d.]+ s/);
    await updateReadme(readme, results);
    expect(read(readme)).toBe(text);
    expect(existsSync(join(results, 'memory', 'curves.svg'))).toBe(true);
  });
});

describe('aggregation helpers', () => {
  const pts = (group: string, run: string, ys: number[]): CurvePoint[] => ys.map((y, i) => ({ group, run, metric: 'E: successRate', x: (i + 1) * 10, y }));

  it('summarises runs per x as mean and population std', () => {
    const s = summariseCurves([...pts('a', 's1', [0, 1]), ...pts('a', 's2', [1, 1]), ...pts('b', 's1', [0.5])]);
    expect(s).toEqual([
      { group: 'a', metric: 'E: successRate', x: 10, mean: 0.5, std: 0.5, runs: 2 },
      { group: 'a', metric: 'E: successRate', x: 20, mean: 1, std: 0, runs: 2 },
      { group: 'b', metric: 'E: successRate', x: 10, mean: 0.5, std: 0, runs: 1 },
    ]);
  });

  it('tabulates final (last 10% of updates) and best success rate over seeds', () => {
    const ten = (last: number) => [...Array(9).fill(0), last];
    const t = successTable([...pts('gru', 's1', ten(1)), ...pts('gru', 's2', ten(0.5))], ['gru', 'mlp'])!;
    expect(t.rows).toEqual([
      ['E', 'gru', '2', '75.0 ± 25.0', '75.0 ± 25.0'],
      ['E', 'mlp', '0', null, null],
    ]);
    expect(successTable(pts('gru', 's1', [1]).map((p) => ({ ...p, metric: 'E: returnMean' })), ['gru'])).toBeUndefined();
  });

  it('formats mean ± std cells, and budgets merge core and task options field by field', () => {
    expect(meanStdCell([1, 3])).toBe('2.0 ± 1.0');
    expect(meanStdCell([4])).toBe(4);
    expect(meanStdCell([])).toBeNull();
    const merged = withBudget({ steps: 9, lr: 0.1, core: { dim: 64, mlp: true }, taskOptions: { testSize: 512 } }, 'tiny');
    expect(merged).toMatchObject({ steps: 2, lr: 0.1, core: { dim: 8, mlp: true }, taskOptions: { testSize: 4, trainMax: 7 } });
    expect(() => withBudget({}, 'huge')).toThrow(/Unknown budget 'huge'. Choose one of: tiny/);
  });

  it('bins accuracy by length per range, at bin centres shared by all seeds', () => {
    const final = {
      valid: { byLength: [{ length: 4, accuracy: 1, count: 2 }, { length: 6, accuracy: 0, count: 2 }, { length: 40, accuracy: 1, count: 1 }] },
      test: { byLength: [{ length: 41, accuracy: 1, count: 1 }, { length: 257, accuracy: 0.5, count: 2 }] },
    };
    const run = { task: 'parity', core: 'gru', seed: 3, result: { config: { taskOptions: {} }, final } } as unknown as SynthRun;
    expect(synthByLength([run]).map((p) => [p.x, p.y])).toEqual([
      [4.5, 50], // lengths 3–6
      [39, 100], // 39 alone in the last training bin (39–42 clipped at 39)
      [50.5, 100], // lengths 40–61
      [247, 50], // 238–259 clipped at 256
    ]);
    expect(synthByLength([run])[0]).toMatchObject({ group: 'gru', run: 's3', metric: 'parity: accuracy by length' });
  });

  it('refuses a README without the markers, saying what to add', () => {
    expect(() => replaceBetweenMarkers('# no markers', 'x', 'R.md')).toThrow(/R\.md has no results markers: add the lines\n<!-- results:begin/);
  });
});
