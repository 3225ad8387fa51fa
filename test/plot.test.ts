import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plotRuns } from '../training/plot.js';

async function fakeRun(root: string, name: string, returns: number[]): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const lines = returns.map((r, i) => JSON.stringify({ globalStep: (i + 1) * 1000, returnMean: r }));
  await writeFile(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  return dir;
}

describe('plotRuns', () => {
  it('renders one line per run into an SVG', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hqlt-plot-'));
    const a = await fakeRun(root, 'run-a', [0, 0.2, 0.5]);
    const b = await fakeRun(root, 'run-b', [0.1, 0.1, 0.3]);
    const svg = await plotRuns([a, b]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('run-a');
    expect(svg).toContain('run-b');
    const lines = svg.match(/aria-roledescription="line mark container"><path aria-label="[^"]*run: run-[ab]"/g) ?? [];
    expect(lines).toHaveLength(2);
    expect(svg).toContain('globalStep');
  });

  it('names the available metrics when asked for a missing one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hqlt-plot-'));
    const a = await fakeRun(root, 'run-a', [0, 1]);
    await expect(plotRuns([a], { y: ['nope'] })).rejects.toThrow(/no numeric metric 'nope'.*returnMean/);
  });

  it('says what to pass when the folder has no metrics', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hqlt-plot-'));
    await expect(plotRuns([join(root, 'missing')])).rejects.toThrow(/No metrics at .*runs\/<name>/);
  });
});
