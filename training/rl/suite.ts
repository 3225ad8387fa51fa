/**
 * The evaluation suite: train every (env, core) pair for a few seeds and tabulate POPGym's MMER (max mean
 * episodic return: the best per-update mean return over training, averaged over seeds) as the primary number,
 * raw. A normalised score, (MMER − random) / (optimal − random), is added only where a memory agent can reach
 * the env's stated optimum (`ReturnBounds.reachable`); each row says where its bounds come from.
 *
 * Each trial (env, core, seed) runs in `<out>/runs/<env>/<core>/s<seed>/` and leaves its `result.json` there
 * (`suite/trial.ts`); running the suite again skips finished trials and resumes interrupted ones. Trials run in
 * this process (`jobs: 1`), in child processes (`jobs: N`), or on the workers of a BullMQ queue (`queue`); the
 * table is made from the result files only, so it is the same whichever way they ran.
 */
import { make, registeredIds, returnBoundsOf, type ReturnBounds } from '../../envs/index.js';
import type { TrainConfigInput } from './config.js';
import { Stopped } from '../../util/interrupt.js';
import { writeResultsTable, type Cell, type ResultsTable } from '../results-table.js';
import { TrialPool } from './suite/pool.js';
import { SuiteProgress } from './suite/progress.js';
import { runTrialsOnQueue } from './suite/queue.js';
import { planTrials, readResult, runTrial, trialDir, writeResult, type Trial, type TrialEvent, type TrialOutcome, type TrialResult } from './suite/trial.js';

export { maxMeanEpisodicReturn } from './suite/trial.js';

/** Named env lists for `--envs`. */
export const ENV_PRESETS: Record<string, () => string[]> = {
  'popgym-easy': () => registeredIds().filter((id) => /^popgym-.*Easy-v0$/.test(id)),
  'popgym-medium': () => registeredIds().filter((id) => /^popgym-.*Medium-v0$/.test(id)),
  'popgym-hard': () => registeredIds().filter((id) => /^popgym-.*Hard-v0$/.test(id)),
  memory: () => ['PassiveTMazeShort-v0', 'PassiveTMaze-v0', 'ActiveTMaze-v0', 'popgym-RepeatPreviousEasy-v0', 'PassiveVisualMatch-v0', 'KeyToDoor-v0'],
  /** The seed paper's RL task at its length (750-step apple phase). */
  'visual-match': () => ['PassiveVisualMatch-v0'],
  /** The same with a 60-step apple phase (90-step episodes): what a CPU can train. */
  'visual-match-short': () => ['PassiveVisualMatchShort-v0'],
};

/**
 * Budgets that shrink any suite (merged under the --config file and flags): `tiny` is the CI smoke test of the
 * whole pipeline (6 updates of 2 envs × 16 steps), long enough for 90-step episodes to finish, too short to learn.
 */
export const SUITE_BUDGETS: Record<string, TrainConfigInput> = {
  tiny: { steps: 192, numEnvs: 2, rollout: 16, seqLen: 8, epochs: 1, minibatches: 1, checkpointEvery: 0 },
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
  /** Folder for the runs (`<out>/runs/<env>/<core>/s<seed>/`) and the tables. */
  out: string;
  /** Called when a run finishes (progress reporting). */
  onRun?: (env: string, core: string, seed: number, mmer: number) => void;
  /** Aborting checkpoints the running trials and stops the suite with `Stopped` (Ctrl-C, SIGTERM). */
  signal?: AbortSignal;
  /** Trials at once: 1 (default) runs them in this process, more in as many child processes. */
  jobs?: number;
  /** A Redis URL: queue the trials there for `hqlt worker`s instead of running them here. */
  queue?: string;
  /** 'auto': bars on a terminal, lines otherwise; 'none' (default): quiet. */
  progress?: 'auto' | 'none';
  /** Extra environment of trial process `i` (which GPU it uses). */
  childEnv?: (i: number) => Record<string, string>;
  /** Messages (queue state, skipped trials); default stderr. */
  log?: (line: string) => void;
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

/** (value − random) / (optimal − random), or null unless a memory agent can reach `optimal`. */
export function normaliseReturn(value: number, bounds: ReturnBounds | undefined): number | null {
  if (!bounds?.reachable || !(bounds.optimal > bounds.random)) return null;
  return (value - bounds.random) / (bounds.optimal - bounds.random);
}

type RunOne = (trial: Trial, onEvent: (e: TrialEvent) => void) => Promise<TrialOutcome>;

/**
 * Runs `trials` on `lanes` concurrent runners; stops dispatching on abort or on the first failure (the other
 * running trials are stopped through `stopAll` and checkpoint). Throws `Stopped` if any trial stopped early.
 */
async function runLanes(
  trials: Trial[],
  lanes: number,
  run: RunOne,
  opts: { signal?: AbortSignal; stopAll: () => void; onEvent: (t: Trial, e: TrialEvent) => void; onResult: (r: TrialResult) => void; out: string },
): Promise<void> {
  const todo = [...trials];
  const stopped: string[] = [];
  let failure: Error | undefined;
  const lane = async () => {
    for (let t = todo.shift(); t && !opts.signal?.aborted && !failure; t = todo.shift()) {
      const trial = t;
      try {
        const outcome = await run(trial, (e) => opts.onEvent(trial, e));
        if (outcome.kind === 'done') opts.onResult(outcome.result);
        else stopped.push(`${trialDir(opts.out, trial)} (update ${outcome.update})`);
      } catch (err) {
        failure ??= new Error(`Trial ${trial.id} failed: ${(err as Error).message}`, { cause: err });
        opts.stopAll();
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  if (failure) throw failure;
  if (stopped.length) {
    throw new Stopped(`Stopped the suite; checkpoints of the unfinished trials: ${stopped.join(', ')}. Run the same command again to continue.`);
  }
}

/** Runs the trials that have no result yet (see the file's comment); writes `<out>/suite.md` and `<out>/suite.csv`. */
export async function runSuite(opts: SuiteOptions): Promise<{ cells: SuiteCell[]; files: { md: string; csv: string } }> {
  const log = opts.log ?? ((line: string) => console.error(line));
  // Validates every config before spending hours on the first ones.
  const trials = planTrials(opts.envs, opts.cores, opts.seeds, opts.base);
  const results = new Map<string, TrialResult>();
  for (const t of trials) {
    const r = readResult(opts.out, t);
    if (r) results.set(t.id, r);
  }
  const todo = trials.filter((t) => !results.has(t.id));
  if (results.size) log(`${results.size} of ${trials.length} trials already finished in ${opts.out}: not running them again.`);
  const display = opts.progress === 'auto' ? new SuiteProgress(trials.length, results.size) : undefined;
  const onEvent = (t: Trial, e: TrialEvent) => display?.event(t, e);
  const onResult = (r: TrialResult) => {
    if (results.has(r.id)) return;
    writeResult(opts.out, r);
    results.set(r.id, r);
    display?.finished(r);
    opts.onRun?.(r.env, r.core, r.seed, r.mmer ?? Number.NaN);
  };
  try {
    if (todo.length === 0) {
      // nothing to run: the table is rewritten from the results
    } else if (opts.queue) {
      await runTrialsOnQueue(todo, { url: opts.queue, signal: opts.signal, onEvent, onResult, log });
      if (opts.signal?.aborted && results.size < trials.length) {
        throw new Stopped(`Stopped waiting; the trials stay on the queue and the workers go on with them. Run the same command again to collect the table.`);
      }
    } else if ((opts.jobs ?? 1) <= 1) {
      const run: RunOne = (trial, onTrialEvent) => runTrial(trial, { root: opts.out, signal: opts.signal, onEvent: onTrialEvent });
      await runLanes(todo, 1, run, { ...opts, stopAll: () => {}, onEvent, onResult });
    } else {
      const pool = new TrialPool({ size: Math.min(opts.jobs ?? 1, todo.length), root: opts.out, env: opts.childEnv });
      const stopAll = () => pool.stop();
      opts.signal?.addEventListener('abort', stopAll);
      try {
        await runLanes(todo, Math.min(opts.jobs ?? 1, todo.length), (t, e) => pool.run(t, e), { ...opts, stopAll, onEvent, onResult });
      } finally {
        opts.signal?.removeEventListener('abort', stopAll);
        await pool.close();
      }
    }
  } finally {
    display?.stop();
  }
  const cells: SuiteCell[] = [];
  for (const env of opts.envs) {
    const probe = make(env);
    const bounds = returnBoundsOf(probe);
    probe.close();
    for (const core of opts.cores) {
      const mmer = trials.filter((t) => t.env === env && t.core === core).map((t) => results.get(t.id)?.mmer ?? Number.NaN);
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
      `returns lie in about [−1, 1]; other envs' scales are in the bounds column), averaged over ${opts.seeds} seed(s). norm = (MMER − random) / (optimal − random), ` +
      `only where a memory agent can reach the optimum; '-' where it is an oracle's or an upper bound. ` +
      `Steps per run: ${String(opts.base.steps ?? 'default')}.`,
    columns: ['env', ...opts.cores.flatMap((c) => [c, `${c} norm`]), 'bounds (source)'],
    rows,
    digits: 3,
    missing: '-',
  };
}
