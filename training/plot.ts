/** Learning-curve charts: metrics.jsonl of one or more runs rendered to SVG with vega-lite (no browser needed). */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { readMetrics } from './metrics.js';

export interface PlotOptions {
  /** Metric on the x axis (default: env steps so far). */
  x?: string;
  /** Metrics on the y axis, one panel each. */
  y?: string[];
  title?: string;
}

/** Renders the learning curves of several runs (one colour per run, one panel per y metric) as an SVG string. */
export async function plotRuns(runDirs: string[], options: PlotOptions = {}): Promise<string> {
  if (runDirs.length === 0) throw new Error('Give at least one run folder to plot.');
  const x = options.x ?? 'globalStep';
  const ys = options.y ?? ['returnMean'];
  const values: Record<string, unknown>[] = [];
  for (const dir of runDirs) {
    const file = join(dir, 'metrics.jsonl');
    if (!existsSync(file)) throw new Error(`No metrics at ${file}: pass a run folder written by 'hqlt train' (e.g. runs/<name>).`);
    const rows = readMetrics(file) as unknown as Record<string, unknown>[];
    if (rows.length === 0) {
      throw new Error(`${file} has no rows yet: the run has not finished an update. Plot it once it has, or leave it out.`);
    }
    const keys = new Set(rows.flatMap((r) => Object.keys(r)));
    const numeric = [...keys].filter((k) => rows.some((r) => typeof r[k] === 'number'));
    for (const metric of [x, ...ys]) {
      if (numeric.includes(metric)) continue;
      const why = keys.has(metric) ? `no value of '${metric}' yet (it is empty in every row)` : `no numeric metric '${metric}'`;
      throw new Error(`Run ${dir} has ${why}. Available: ${numeric.join(', ')}.`);
    }
    const run = basename(resolve(dir));
    for (const y of ys) {
      for (const row of rows) if (typeof row[x] === 'number' && typeof row[y] === 'number')
        values.push({ run, metric: y, x: row[x], y: row[y] });
    }
  }
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? `${ys.join(', ')} vs ${x}`,
    data: { values },
    facet: { row: { field: 'metric', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 560,
      height: 240,
      mark: { type: 'line', interpolate: 'linear' },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: x },
        y: { field: 'y', type: 'quantitative', title: null },
        color: { field: 'run', type: 'nominal', title: 'run' },
      },
    },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
