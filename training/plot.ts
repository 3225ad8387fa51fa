/**
 * Learning-curve charts rendered to SVG with vega-lite (no browser needed): `plotRuns` draws the metrics.jsonl of
 * one or more runs, one line each; `plotGroups` draws groups of runs (a core's seeds) as the mean over the runs
 * with a ± std band, from curve points that `curvesToCsv` also writes out so the chart can be redrawn elsewhere.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { readMetrics } from './metrics.js';
import { meanStd, toCsv } from './results-table.js';

export interface PlotOptions {
  /** Metric on the x axis (default: env steps so far). */
  x?: string;
  /** Metrics on the y axis, one panel each. */
  y?: string[];
  title?: string;
}

/** One point of a learning curve: run `run` of group `group` had `metric` = y at x. */
export interface CurvePoint {
  group: string;
  run: string;
  metric: string;
  x: number;
  y: number;
}

/**
 * The (x, y) points of a run folder's metrics.jsonl for each y metric; rows where either is not a number (say no
 * episode finished in that update) are left out. Fails, naming the available metrics, if one is never numeric.
 */
export function readCurve(dir: string, x: string, ys: string[], label: { group: string; run: string }): CurvePoint[] {
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
  const points: CurvePoint[] = [];
  for (const metric of ys) {
    for (const row of rows) {
      const [px, py] = [row[x], row[metric]];
      if (typeof px === 'number' && typeof py === 'number') points.push({ ...label, metric, x: px, y: py });
    }
  }
  return points;
}

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A faceted chart over `values`, one panel per metric with its own y scale; `inner` is the panel's marks. */
function facetedSpec(title: string, values: object[], inner: object): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: { row: { field: 'metric', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: { width: 560, height: 240, ...inner },
  } as TopLevelSpec;
}

/** Renders the learning curves of several runs (one colour per run, one panel per y metric) as an SVG string. */
export async function plotRuns(runDirs: string[], options: PlotOptions = {}): Promise<string> {
  if (runDirs.length === 0) throw new Error('Give at least one run folder to plot.');
  const x = options.x ?? 'globalStep';
  const ys = options.y ?? ['returnMean'];
  const values = runDirs.flatMap((dir) => {
    const run = basename(resolve(dir));
    return readCurve(dir, x, ys, { group: run, run });
  });
  return render(
    facetedSpec(options.title ?? `${ys.join(', ')} vs ${x}`, values, {
      mark: { type: 'line', interpolate: 'linear' },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: x },
        y: { field: 'y', type: 'quantitative', title: null },
        color: { field: 'run', type: 'nominal', title: 'run' },
      },
    }),
  );
}

/** Mean and (population) standard deviation over a group's runs at each x, per metric. */
export interface CurveSummary {
  group: string;
  metric: string;
  x: number;
  mean: number;
  std: number;
  /** Runs with a value at this x. */
  runs: number;
}

export function summariseCurves(points: CurvePoint[]): CurveSummary[] {
  const cells = new Map<string, { group: string; metric: string; x: number; ys: number[] }>();
  for (const p of points) {
    const key = JSON.stringify([p.group, p.metric, p.x]);
    const cell = cells.get(key) ?? { group: p.group, metric: p.metric, x: p.x, ys: [] };
    cell.ys.push(p.y);
    cells.set(key, cell);
  }
  return [...cells.values()]
    .map(({ group, metric, x, ys }) => {
      const { mean, std } = meanStd(ys);
      return { group, metric, x, mean, std, runs: ys.length };
    })
    .sort((a, b) => a.group.localeCompare(b.group) || a.metric.localeCompare(b.metric) || a.x - b.x);
}

/**
 * Renders groups of runs (one colour per group, one panel per metric): the mean over the group's runs at each x
 * as a line, mean ± std as a band.
 */
export async function plotGroups(points: CurvePoint[], options: { x: string; title: string; groupTitle?: string }): Promise<string> {
  if (points.length === 0) throw new Error(`Nothing to plot: the runs have no numeric values of the requested metrics.`);
  const values = summariseCurves(points).map((s) => ({ ...s, lo: s.mean - s.std, hi: s.mean + s.std }));
  const color = { field: 'group', type: 'nominal', title: options.groupTitle ?? 'group' };
  return render(
    facetedSpec(options.title, values, {
      encoding: { x: { field: 'x', type: 'quantitative', title: options.x } },
      layer: [
        { mark: { type: 'area', opacity: 0.2 }, encoding: { y: { field: 'lo', type: 'quantitative', title: null }, y2: { field: 'hi' }, color } },
        { mark: { type: 'line', interpolate: 'linear' }, encoding: { y: { field: 'mean', type: 'quantitative', title: null }, color } },
      ],
    }),
  );
}

/** Curve points as CSV (`group,run,metric,x,y`), the raw data behind `plotGroups`. */
export function curvesToCsv(points: CurvePoint[], x = 'x'): string {
  return toCsv({ title: 'curves', columns: ['group', 'run', 'metric', x, 'value'], rows: points.map((p) => [p.group, p.run, p.metric, p.x, p.y]) });
}
