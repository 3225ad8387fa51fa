/**
 * What a suite leaves for `results/`: learning curves of its trials grouped by core (mean ± std over seeds), a
 * success-rate table for envs that report success, and the per-trial numbers behind the MMER table. The curves
 * are read from the trials' own metrics (`<out>/runs/<env>/<core>/s<seed>/metrics.jsonl`), so `hqlt plot --suite`
 * can draw them for any suite folder, finished or not.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { subfolders, writeFileAtomic } from '../../util/files.js';
import { curvesToCsv, plotGroups, readCurve, type CurvePoint } from '../plot.js';
import { meanStd, meanStdCell, toCsv, writeResultsTable, type Cell, type ResultsTable } from '../results-table.js';
import { suiteTable, type SuiteCell, type SuiteOptions } from './suite.js';

/** The trial folders of a suite folder, optionally only some envs and cores: env, core, seed label, folder. */
export function suiteTrialDirs(out: string, filter: { envs?: string[]; cores?: string[] } = {}): { env: string; core: string; run: string; dir: string }[] {
  const root = join(out, 'runs');
  if (!existsSync(root)) throw new Error(`No trials in ${out}: expected ${root}/<env>/<core>/s<seed>/ as 'hqlt suite --out ${out}' writes.`);
  const found = subfolders(root)
    .filter((env) => !filter.envs || filter.envs.includes(env))
    .flatMap((env) =>
      subfolders(join(root, env))
        .filter((core) => !filter.cores || filter.cores.includes(core))
        .flatMap((core) => subfolders(join(root, env, core)).filter((s) => /^s\d+$/.test(s)).map((run) => ({ env, core, run, dir: join(root, env, core, run) }))),
    )
    .filter((t) => existsSync(join(t.dir, 'metrics.jsonl')));
  if (found.length === 0) throw new Error(`No trial of ${out} has metrics yet${filter.envs ? ` (envs ${filter.envs.join(', ')})` : ''}.`);
  return found;
}

/**
 * Curve points of a suite's trials: group = core, run = seed, metric = `<env>: <y>`. With `optional`, a metric a
 * trial never logged (successRate of an env without success) is left out instead of failing.
 */
export function suiteCurves(out: string, opts: { x: string; ys: string[]; envs?: string[]; cores?: string[]; optional?: boolean }): CurvePoint[] {
  return suiteTrialDirs(out, opts).flatMap((t) =>
    opts.ys.flatMap((y) => {
      try {
        return readCurve(t.dir, opts.x, [y], { group: t.core, run: t.run }).map((p) => ({ ...p, metric: `${t.env}: ${y}` }));
      } catch (err) {
        if (opts.optional && /has no (value of|numeric metric)/.test((err as Error).message)) return [];
        throw err;
      }
    }),
  );
}

/** The curve points of one (env, core, run) at the end of training: the last `share` of its points (at least one). */
function tail(points: CurvePoint[], share: number): number[] {
  const sorted = [...points].sort((a, b) => a.x - b.x);
  return sorted.slice(Math.max(0, sorted.length - Math.max(1, Math.round(share * sorted.length)))).map((p) => p.y);
}

/**
 * Success rate per env × core over seeds, %: at the end of training (the mean of a run's last 10% of updates) and
 * the best update, each as mean ± std over the seeds; from `successRate` curve points.
 */
export function successTable(points: CurvePoint[], cores: string[]): ResultsTable | undefined {
  const success = points.filter((p) => p.metric.endsWith(': successRate'));
  if (success.length === 0) return undefined;
  const envs = [...new Set(success.map((p) => p.metric.slice(0, -': successRate'.length)))];
  const rows = envs.flatMap((env) =>
    cores.map((core): Cell[] => {
      const mine = success.filter((p) => p.group === core && p.metric === `${env}: successRate`);
      const runs = [...new Set(mine.map((p) => p.run))].map((run) => mine.filter((p) => p.run === run));
      const final = runs.map((r) => 100 * meanStd(tail(r, 0.1)).mean);
      const best = runs.map((r) => 100 * Math.max(...r.map((p) => p.y)));
      return [env, core, String(runs.length), meanStdCell(final), meanStdCell(best)];
    }),
  );
  return {
    title: 'Success rate per env × core',
    caption:
      "Share of training episodes that ended in success (the env's `info.success`), %: 'final' averages a run's last 10% " +
      "of updates, 'best' is its best update (an update holds few episodes, so 'best' is biased upwards: compare it with " +
      "the memoryless mlp); mean ± std over seeds.",
    columns: ['env', 'core', 'seeds', 'final success %', 'best success %'],
    rows,
    missing: '-',
  };
}

/** Per-trial numbers behind the MMER table (seeds count up from `first`, as the suite plans them). */
function trialsTable(cells: SuiteCell[], first: number): ResultsTable {
  const rows = cells.flatMap((c) => c.mmer.map((m, i): Cell[] => [c.env, c.core, first + i, Number.isFinite(m) ? m : null]));
  return { title: 'trials', columns: ['env', 'core', 'seed', 'mmer'], rows };
}

/**
 * Writes a suite's report into `dir`: `suite.md/.csv` (MMER), `success.md/.csv` where envs report success,
 * `curves.svg/.csv` (return and success rate over env steps, mean ± std over seeds, per core) and `trials.csv`;
 * returns the file names in the order a README shows them.
 */
export async function writeSuiteReport(
  dir: string,
  opts: Pick<SuiteOptions, 'envs' | 'cores' | 'seeds' | 'base' | 'out'>,
  cells: SuiteCell[],
): Promise<string[]> {
  const files: string[] = [];
  await writeResultsTable(dir, 'suite', suiteTable(cells, opts));
  files.push('suite.md');
  const points = suiteCurves(opts.out, { x: 'globalStep', ys: ['returnMean', 'successRate'], envs: opts.envs, cores: opts.cores, optional: true });
  const success = successTable(points, opts.cores);
  if (success) {
    await writeResultsTable(dir, 'success', success);
    files.push('success.md');
  }
  const band = opts.seeds > 1 ? `mean ± std over ${opts.seeds} seeds` : '1 seed';
  await writeFileAtomic(join(dir, 'curves.svg'), await plotGroups(points, { x: 'env steps', title: `Mean episodic return and success rate per update, ${band}`, groupTitle: 'core' }));
  await writeFileAtomic(join(dir, 'curves.csv'), curvesToCsv(points, 'globalStep'));
  await writeFileAtomic(join(dir, 'trials.csv'), toCsv(trialsTable(cells, (opts.base.seed as number | undefined) ?? 1)));
  files.push('curves.svg', 'suite.csv', ...(success ? ['success.csv'] : []), 'curves.csv', 'trials.csv');
  return files;
}
