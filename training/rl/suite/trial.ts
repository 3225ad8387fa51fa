/**
 * One trial of a suite: train one (env, core, seed) and score it by MMER. `runTrial` is the only code that runs a
 * trial; the in-process, child-process and queue paths all call it, so a suite's table does not depend on how it
 * ran. A trial lives in `<root>/runs/<env>/<core>/s<seed>/` (a normal run folder); a finished trial has its
 * `result.json` there, an interrupted one its checkpoint, from which `runTrial` resumes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { registeredIds } from '../../../envs/index.js';
import { recoverFolder, writeFileAtomicSync, writeFolderAtomicSync } from '../../../util/files.js';
import { readMetrics } from '../../metrics.js';
import { checkpointDir, readCheckpointConfig } from '../checkpoint.js';
import { parseTrainConfig, totalUpdates, type TrainConfig, type TrainConfigInput } from '../config.js';
import { runDirOf, runTraining } from '../train.js';

/** What a trial is: JSON, so it travels to child processes and through the queue as is. */
export const TrialSchema = z.object({
  /** `<env>/<core>/s<seed>-<hash>`: the queue's job id, so enqueueing twice adds one job. */
  id: z.string(),
  env: z.string(),
  core: z.string(),
  seed: z.number().int(),
  /** Hash of `settings` without the backend: two suites with other settings never share a trial. */
  hash: z.string(),
  /** The train config, without `out` and `name` (set where the trial runs). */
  settings: z.record(z.unknown()),
});
export type Trial = z.infer<typeof TrialSchema>;

/** A finished trial, as written to its `result.json` and returned through the queue. */
export interface TrialResult {
  id: string;
  env: string;
  core: string;
  seed: number;
  /** Max mean episodic return over updates; null when no episode finished. */
  mmer: number | null;
  /** Per-update mean return, the run's whole history (resumed segments included). */
  returnMeans: (number | null)[];
  updates: number;
  backend: string;
  /** The checkpoint update the last segment resumed from; null if it ran from the start. */
  resumedFrom: number | null;
  /** `host:pid` of the process that finished it. */
  worker: string;
  /** Wall time of the last segment. */
  seconds: number;
}

export const RESULT_FILE = 'result.json';

/** A checkpoint and the metrics so far, as text, so another machine can resume the trial (see queue.ts). */
export interface TrialBundle {
  update: number;
  /** Path relative to the trial folder → base64 contents. */
  files: Record<string, string>;
}

export type TrialEvent =
  | { kind: 'start'; resumedFrom: number | null; total: number }
  | { kind: 'progress'; update: number; total: number }
  | { kind: 'checkpoint'; update: number; bundle?: TrialBundle }
  /** Emitted by the runners, not by `runTrial`: the trial failed for good. */
  | { kind: 'failed'; reason: string };

export type TrialOutcome = { kind: 'done'; result: TrialResult } | { kind: 'stopped'; update: number; bundle?: TrialBundle };

/** A trial that cannot run anywhere as given (unknown env or core, bad settings): retrying will not help. */
export class TrialSpecError extends Error {
  override readonly name = 'TrialSpecError';
}

/** The best per-update mean episodic return of a run (NaN when no episode finished). */
export function maxMeanEpisodicReturn(returnMeans: (number | null)[]): number {
  const finite = returnMeans.filter((r): r is number => r !== null && Number.isFinite(r));
  return finite.length ? Math.max(...finite) : Number.NaN;
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function settingsOf(config: TrainConfig): TrainConfigInput {
  const { out: _o, name: _n, ...settings } = config;
  return settings;
}

function hashOf(settings: TrainConfigInput): string {
  const { backend: _b, ...rest } = settings;
  return createHash('sha256').update(stableJson(rest)).digest('hex').slice(0, 10);
}

/** The trials of a suite, seeds innermost; every config is validated before any runs. */
export function planTrials(envs: string[], cores: string[], seeds: number, base: TrainConfigInput): Trial[] {
  return envs.flatMap((env) =>
    cores.flatMap((core) =>
      Array.from({ length: seeds }, (_, s) => {
        const seed = ((base.seed as number | undefined) ?? 1) + s;
        const config = parseTrainConfig({ ...base, env, seed, core: { type: core } }, `suite config for ${env} × ${core}`);
        const settings = settingsOf(config);
        const hash = hashOf(settings);
        return { id: `${env}/${core}/s${seed}-${hash}`, env, core, seed, hash, settings };
      }),
    ),
  );
}

/** `<root>/runs/<env>/<core>/s<seed>`. */
export function trialDir(root: string, trial: Pick<Trial, 'env' | 'core' | 'seed'>): string {
  return join(root, 'runs', trial.env, trial.core, `s${trial.seed}`);
}

/**
 * The train config of a trial run under `root`; `backend` overrides the suite's (a worker's --backend). Throws
 * `TrialSpecError` when this installation cannot run it (say a worker with an older hqlt).
 */
export function trialConfig(trial: Trial, root: string, backend?: string): TrainConfig {
  if (!registeredIds().includes(trial.env)) {
    throw new TrialSpecError(
      `Trial ${trial.id}: unknown env '${trial.env}' on ${hostname()}. Install an hqlt that registers it on this machine, or leave it out of the suite.`,
    );
  }
  const dir = trialDir(root, trial);
  const input = { ...trial.settings, ...(backend ? { backend } : {}), out: join(dir, '..'), name: `s${trial.seed}` };
  try {
    return parseTrainConfig(input, `trial ${trial.id}`);
  } catch (err) {
    throw new TrialSpecError(`${(err as Error).message}\nThis hqlt on ${hostname()} cannot run it: install a matching version, or fix the suite's settings.`);
  }
}

/** Where a trial folder already holds a run of other settings: what to do about it. */
function otherSettings(dir: string, what: string): Error {
  return new Error(
    `${dir} holds ${what} of this trial with other settings. Use another --out for a suite with new settings, or delete ${dir} to run the trial again.`,
  );
}

/** The trial's result if it has finished under `root`, else undefined. */
export function readResult(root: string, trial: Trial): TrialResult | undefined {
  const path = join(trialDir(root, trial), RESULT_FILE);
  if (!existsSync(path)) return undefined;
  let result: TrialResult;
  try {
    result = JSON.parse(readFileSync(path, 'utf8')) as TrialResult;
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}): delete it to run the trial again.`);
  }
  if (result.id !== trial.id) throw otherSettings(trialDir(root, trial), `the result (${result.id})`);
  return result;
}

/** Writes the trial's `result.json` under `root` (atomically): from then on the trial counts as finished. */
export function writeResult(root: string, result: TrialResult): void {
  writeFileAtomicSync(join(trialDir(root, result), RESULT_FILE), JSON.stringify(result, null, 2) + '\n');
}

/** The update of the trial's checkpoint under `root`, or null if it has none. */
export function checkpointUpdate(root: string, trial: Trial): number | null {
  const dir = checkpointDir(trialDir(root, trial));
  recoverFolder(dir);
  if (!existsSync(dir)) return null;
  const { config, update } = readCheckpointConfig(trialDir(root, trial));
  if (hashOf(settingsOf(config)) !== trial.hash) throw otherSettings(trialDir(root, trial), 'a checkpoint');
  return update;
}

/** The trial's checkpoint and metrics, for another machine to resume from. */
export function packBundle(root: string, trial: Trial, update: number): TrialBundle {
  const dir = trialDir(root, trial);
  const files: Record<string, string> = {};
  for (const f of readdirSync(checkpointDir(dir))) files[`checkpoint/${f}`] = readFileSync(join(checkpointDir(dir), f)).toString('base64');
  const metrics = join(dir, 'metrics.jsonl');
  if (existsSync(metrics)) files['metrics.jsonl'] = readFileSync(metrics).toString('base64');
  return { update, files };
}

/** Puts a bundle's checkpoint (atomically) and metrics into the trial's folder under `root`. */
export function unpackBundle(root: string, trial: Trial, bundle: TrialBundle): void {
  const dir = trialDir(root, trial);
  const ckpt: Record<string, Uint8Array> = {};
  for (const [path, b64] of Object.entries(bundle.files)) {
    const bytes = Buffer.from(b64, 'base64');
    if (path.startsWith('checkpoint/') && !path.slice(11).includes('/')) ckpt[path.slice(11)] = bytes;
    else if (path === 'metrics.jsonl') writeFileAtomicSync(join(dir, path), bytes);
    else throw new Error(`The stored checkpoint of ${trial.id} holds an unexpected file '${path}': delete it from the store to start the trial over.`);
  }
  writeFolderAtomicSync(checkpointDir(dir), ckpt);
}

export interface RunTrialOptions {
  /** Folder the trial's run folder goes under (`<root>/runs/...`). */
  root: string;
  /** Overrides the suite's backend. */
  backend?: string;
  /** Aborting checkpoints the trial and returns `stopped`. */
  signal?: AbortSignal;
  onEvent?: (event: TrialEvent) => void;
  /** Attach bundles to checkpoint events and to `stopped` (for the queue's store). */
  publish?: boolean;
}

/** This process, as results name it. */
export const workerName = (): string => `${hostname()}:${process.pid}`;

/**
 * Runs a trial under `opts.root`, resuming from its checkpoint when it has one; scores it from the run's whole
 * metrics log (so a resumed trial scores as if it had never stopped). Does not write `result.json`: whoever
 * collects the results does (`writeResult`).
 */
export async function runTrial(trial: Trial, opts: RunTrialOptions): Promise<TrialOutcome> {
  const config = trialConfig(trial, opts.root, opts.backend);
  const dir = runDirOf(config);
  const resumedFrom = checkpointUpdate(opts.root, trial);
  const total = totalUpdates(config);
  const started = performance.now();
  opts.onEvent?.({ kind: 'start', resumedFrom, total });
  const result = await runTraining(config, {
    resume: resumedFrom !== null,
    progress: 'none',
    signal: opts.signal,
    onUpdate: (m) => opts.onEvent?.({ kind: 'progress', update: m.update, total }),
    onCheckpoint: (update) => opts.onEvent?.({ kind: 'checkpoint', update, bundle: opts.publish ? packBundle(opts.root, trial, update) : undefined }),
  });
  const last = readCheckpointConfig(dir);
  if (result.interrupted) return { kind: 'stopped', update: last.update, bundle: opts.publish ? packBundle(opts.root, trial, last.update) : undefined };
  const returnMeans = readMetrics(join(dir, 'metrics.jsonl')).map((m) => m.returnMean);
  const mmer = maxMeanEpisodicReturn(returnMeans);
  return {
    kind: 'done',
    result: {
      id: trial.id,
      env: trial.env,
      core: trial.core,
      seed: trial.seed,
      mmer: Number.isNaN(mmer) ? null : mmer,
      returnMeans,
      updates: last.update,
      backend: last.backend,
      resumedFrom,
      worker: workerName(),
      seconds: (performance.now() - started) / 1000,
    },
  };
}
