/**
 * The evaluation suite: train every (env, core) pair for a few seeds and tabulate POPGym's MMER (max mean
 * episodic return: the best per-update mean return over training, averaged over seeds) as the primary number,
 * raw. A normalised score, (MMER − random) / (optimal − random), is added only where a memory agent can reach
 * the env's stated optimum (`ReturnBounds.reachable`); each row says where its bounds come from.
 */
import { make, registeredIds, returnBoundsOf, type ReturnBounds } from '../../envs/index.js';
import { parseTrainConfig, type TrainConfigInput } from './config.js';
import { runTraining } from './train.js';
import { Stopped } from '../../util/interrupt.js';
import { writeResultsTable, type Cell, type ResultsTable } from '../results-table.js';

/** Named env lists for `--envs`. */
export const ENV_PRESETS: Record<string, () => string[]> = {
  'popgym-easy': () => registeredIds().filter((id) => /^popgym-.*Easy-v0$/.test(id)),
  'popgym-medium': () => registeredIds().filter((id) => /^popgym-.*Medium-v0$/.test(id)),
  'popgym-hard': () => registeredIds().filter((id) => /^popgym-.*Hard-v0$/.test(id)),
  memory: () => ['PassiveTMazeShort-v0', 'PassiveTMaze-v0', 'ActiveTMaze-v0', 'popgym-RepeatPreviousEasy-v0'],
};

/** Expands a comma-separated list of env ids and preset names; unknown names fail with the valid choices. */
export function expandEnvs(spec: string): string[] {
  const ids = new Set(registeredIds());
  const out: string[] = [];
  for (const name of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (name in ENV_PRESETS) out.push(...ENV_PRESETS[name]());
    else if (ids.has(name)) out.push(name);
    else throw new Error(`Unknown env or preset '${name}'. Presets: ${Object.keys(ENV_PRESETS).join(', ')}; or any id from 'hqlt envs'.`);
  }
  if (out.length === 0) throw new Error(`--envs '${spec}' names no envs.`);
  return [...new Set(out)];
}

export interface SuiteOptions {
  envs: string[];
  cores: string[];
  seeds: number;
  /** Settings shared by every run (steps, numEnvs, backend, ...), as a partial train config. */
  base: TrainConfigInput;
  /** Folder for the runs and the tables. */
  out: string;
  /** Called when a run finishes (progress reporting). */
  onRun?: (env: string, core: string, seed: number, mmer: number) => void;
  /** Aborting checkpoints the current run and stops the suite with `Stopped` (Ctrl-C, SIGTERM). */
  signal?: AbortSignal;
}

export interface SuiteCell {
  env: string;
  core: string;
  /** MMER per seed. */
  mmer: number[];
  mean: number;
  /** null unless the env states reachable reference returns. */
  normalised: number | null;
  /** The env's reference returns, if it states any. */
  bounds?: ReturnBounds;
}

/** The best per-update mean episodic return of a run (NaN when no episode finished). */
export function maxMeanEpisodicReturn(returnMeans: (number | null)[]): number {
  const finite = returnMeans.filter((r): r is number => r !== null && Number.isFinite(r));
  return finite.length ? Math.max(...finite) : Number.NaN;
}

/** (value − random) / (optimal − random), or null unless a memory agent can reach `optimal`. */
export function normaliseReturn(value: number, bounds: ReturnBounds | undefined): number | null {
  if (!bounds?.reachable || !(bounds.optimal > bounds.random)) return null;
  return (value - bounds.random) / (bounds.optimal - bounds.random);
}

/** Trains and scores every pair; writes `<out>/suite.md` and `<out>/suite.csv`. */
export async function runSuite(opts: SuiteOptions): Promise<{ cells: SuiteCell[]; files: { md: string; csv: string } }> {
  // Validate every config before spending hours on the first ones.
  const configs = opts.envs.flatMap((env) =>
    opts.cores.flatMap((core) =>
      Array.from({ length: opts.seeds }, (_, s) => {
        const seed = ((opts.base.seed as number | undefined) ?? 1) + s;
        const input = { ...opts.base, env, seed, core: { type: core }, out: opts.out, name: `${env}-${core}-s${seed}` };
        return { env, core, seed, config: parseTrainConfig(input, `suite config for ${env} × ${core}`) };
      }),
    ),
  );
  const cells: SuiteCell[] = [];
  for (const env of opts.envs) {
    const probe = make(env);
    const bounds = returnBoundsOf(probe);
    probe.close();
    for (const core of opts.cores) {
      const mmer: number[] = [];
      for (const run of configs.filter((c) => c.env === env && c.core === core)) {
        const result = await runTraining(run.config, { progress: 'none', signal: opts.signal });
        if (result.interrupted) throw new Stopped(`Stopped the suite; the current run's checkpoint is in ${result.runDir}/checkpoint.`);
        const value = maxMeanEpisodicReturn(result.metrics.map((m) => m.returnMean));
        mmer.push(value);
        opts.onRun?.(env, core, run.seed, value);
      }
      const mean = mmer.reduce((a, b) => a + b, 0) / mmer.length;
      cells.push({ env, core, mmer, mean, normalised: normaliseReturn(mean, bounds), bounds });
    }
  }
  const files = await writeResultsTable(opts.out, 'suite', suiteTable(cells, opts));
  return { cells, files };
}

/** Where an env's bounds come from, for the table's last column. */
export function describeBounds(bounds: ReturnBounds | undefined): string {
  if (!bounds) return 'none stated';
  const { optimal, random, reachable, source } = bounds;
  return `random ${random.toFixed(3)} (${source.random}); optimal ${optimal.toFixed(3)} ${reachable ? '' : 'unreachable '}(${source.optimal})`;
}

/** One row per env: per core the raw MMER, then the normalised one ('-' where the bounds are unreachable). */
export function suiteTable(cells: SuiteCell[], opts: Pick<SuiteOptions, 'envs' | 'cores' | 'seeds' | 'base'>): ResultsTable {
  const rows: Cell[][] = opts.envs.map((env) => [
    env,
    ...opts.cores.flatMap((core): Cell[] => {
      const cell = cells.find((c) => c.env === env && c.core === core);
      return [cell ? cell.mean : null, cell?.normalised ?? null];
    }),
    describeBounds(cells.find((c) => c.env === env)?.bounds),
  ]);
  return {
    title: 'MMER per env × core',
    caption:
      `MMER (the primary number, POPGym's measure): max over updates of the mean episodic return, raw (POPGym's ` +
      `returns lie in about [−1, 1]), averaged over ${opts.seeds} seed(s). norm = (MMER − random) / (optimal − random), ` +
      `only where a memory agent can reach the optimum; '-' where it is an oracle's or an upper bound. ` +
      `Steps per run: ${String(opts.base.steps ?? 'default')}.`,
    columns: ['env', ...opts.cores.flatMap((c) => [c, `${c} norm`]), 'bounds (source)'],
    rows,
    digits: 3,
    missing: '-',
  };
}
