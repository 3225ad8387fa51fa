/**
 * What `hqlt synth`, `hqlt recall` and `hqlt lm` share: the flags, the config resolution (defaults ← --config
 * file ← flags, as `hqlt train`), a run per core with a progress bar, and the results table across cores.
 */
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { join } from 'node:path';
import { initBackend } from '../../memory/backend.js';
import { coreTypes } from '../../memory/registry.js';
import { mergeConfigs, readConfigFile } from '../../training/rl/config.js';
import { toMarkdown, writeResultsTable, type Cell, type ResultsTable } from '../../training/results-table.js';
import { stopOnSignals, Stopped } from '../../util/interrupt.js';
import { hasCheckpoint, resolveSupervisedConfig, trainSupervised, type SupervisedConfig, type TrainResult } from '../../training/supervised/trainer.js';
import { backendOption, intArg, numberArg, runNameArg } from './options.js';

export interface SupervisedFlags {
  core?: string;
  cores?: string;
  blend?: string;
  mixing?: string;
  seed?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  dim?: number;
  layers?: number;
  heads?: number;
  window?: number;
  shortConv?: boolean;
  evalEvery?: number;
  backend?: string;
  out: string;
  name?: string;
  config?: string;
  printConfig?: boolean;
  resume?: boolean;
}


/** Adds the flags every supervised benchmark command takes. */
export function addSupervisedOptions(cmd: Command): Command {
  return cmd
    .option('--core <type>', `memory core: ${coreTypes().join(', ')}`)
    .option('--cores <list>', 'comma-separated cores to compare (one run each, then a results table)')
    .option('--blend <blend>', 'HQLT blend (synchronous, delayed-streaming, delayed-chunk, synchronous-linear)')
    .option('--mixing <mixing>', 'HQLT mixing (sum, scalar, vector)')
    .option('--seed <n>', 'seed of everything random (default 0)', intArg)
    .option('--steps <n>', 'training steps', intArg)
    .option('--batch <n>', 'sequences per batch', intArg)
    .option('--lr <x>', 'peak Adam learning rate (warm-up, then cosine decay)', numberArg)
    .option('--dim <n>', 'core width', intArg)
    .option('--layers <n>', 'core layers', intArg)
    .option('--heads <n>', 'attention heads', intArg)
    .option('--window <n>', 'KV-memory window (HQLT, window attention)', intArg)
    .option('--short-conv', 'short causal convolutions on q, k, v')
    .option('--no-short-conv', 'no short convolutions')
    .option('--eval-every <n>', 'evaluate, log and checkpoint every N steps', intArg)
    .addOption(backendOption())
    .option('--out <dir>', 'runs folder', 'runs')
    .option('--name <name>', 'run name, a folder under --out (default <task>-<core>-s<seed>; with --cores, the folder of the comparison)', runNameArg)
    .option('--config <file>', 'JSON config file (flags override it)')
    .option('--print-config', 'print the resolved config(s) and exit')
    .option('--resume', 'continue the run(s) in --out/--name from their checkpoints');
}

/** Core types that take the attention fields (heads, shortConv) and those that also take a window. */
const ATTENTION = new Set(['hqlt', 'hqlt-sync', 'hqlt-delayed', 'hqlt-chunk', 'hqlt-linear', 'deltanet', 'linear-attention', 'window-attention', 'transformer']);
const WINDOWED = new Set(['hqlt', 'hqlt-sync', 'hqlt-delayed', 'hqlt-chunk', 'window-attention']);

/** A core config for `type` from shared sizes, keeping only the fields that core type accepts. */
export function coreConfigFor(type: string, sizes: Record<string, unknown>): Record<string, unknown> {
  const core: Record<string, unknown> = { type };
  for (const key of ['dim', 'layers', 'mlp']) if (sizes[key] !== undefined) core[key] = sizes[key];
  if (ATTENTION.has(type)) for (const key of ['heads', 'shortConv']) if (sizes[key] !== undefined) core[key] = sizes[key];
  if (WINDOWED.has(type) && sizes.window !== undefined) core.window = sizes.window;
  if (type === 'hqlt') for (const key of ['blend', 'mixing']) if (sizes[key] !== undefined) core[key] = sizes[key];
  return core;
}

/** One run of a comparison: its label (the core name) and its resolved config. */
export interface PlannedRun {
  label: string;
  config: SupervisedConfig;
}

/**
 * The run(s) a command line describes: defaults ← --config file ← flags; one run per entry of --cores (a core
 * name, optionally with per-core overrides from `coreOverrides`), else one run of --core.
 */
export function planRuns(
  flags: SupervisedFlags,
  defaults: Record<string, unknown>,
  coreOverrides: Record<string, Record<string, unknown>> = {},
): PlannedRun[] {
  const file = flags.config ? readConfigFile(flags.config) : {};
  const top = mergeConfigs(defaults, file, {
    seed: flags.seed,
    steps: flags.steps,
    batch: flags.batch,
    lr: flags.lr,
    evalEvery: flags.evalEvery,
  });
  const sizes: Record<string, unknown> = { ...((top.core as Record<string, unknown>) ?? {}) };
  for (const key of ['dim', 'layers', 'heads', 'window', 'shortConv', 'blend', 'mixing'] as const) {
    if (flags[key] !== undefined) sizes[key] = flags[key];
  }
  const names = flags.cores ? flags.cores.split(',').map((s) => s.trim()).filter(Boolean) : [flags.core ?? String(sizes.type ?? 'hqlt')];
  return names.map((label) => {
    const { type: _t, ...shared } = sizes;
    const core = coreConfigFor(label, { ...shared, ...coreOverrides[label] });
    return { label, config: resolveSupervisedConfig({ ...top, core }) };
  });
}

/** A command action that Ctrl-C / SIGTERM stop cleanly (see `stopOnSignals`); `signal` goes to `executeRuns`. */
export function interruptible<F>(action: (flags: F, signal: AbortSignal) => Promise<void>): (flags: F) => Promise<void> {
  return (flags) => stopOnSignals('finishing this step and writing a checkpoint', (signal) => action(flags, signal));
}

/**
 * Runs each planned run in `<out>/<name>[/<core>]`, with a progress bar; returns the results by label. When
 * `signal` aborts, the current run checkpoints and this throws `Stopped`, saying how to continue.
 */
export async function executeRuns(flags: SupervisedFlags, runs: PlannedRun[], signal?: AbortSignal): Promise<Map<string, TrainResult>> {
  if (flags.printConfig) {
    console.log(JSON.stringify(runs.length === 1 ? runs[0].config : Object.fromEntries(runs.map((r) => [r.label, r.config])), null, 2));
    return new Map();
  }
  const backend = await initBackend(flags.backend);
  console.log(`backend ${backend.active}`);
  const results = new Map<string, TrainResult>();
  for (const run of runs) {
    const c = run.config;
    const base = flags.name ?? (runs.length > 1 ? `${c.task}-compare-s${c.seed}` : `${c.task}-${run.label}-s${c.seed}`);
    const runDir = runs.length > 1 ? join(flags.out, base, run.label) : join(flags.out, base);
    const bar = process.stdout.isTTY
      ? new cliProgress.SingleBar({ format: `${run.label} {bar} {value}/{total} steps | loss {loss} | ETA {eta_formatted}` }, cliProgress.Presets.shades_classic)
      : undefined;
    bar?.start(c.steps, 0, { loss: '-' });
    const result = await trainSupervised(c, {
      runDir,
      // In a comparison, --resume also starts the runs an interruption never reached.
      resume: flags.resume && (runs.length === 1 || hasCheckpoint(runDir)),
      signal,
      onStep: (step, loss) => bar?.update(step, { loss: loss.toFixed(3) }),
      onEval: (m) => {
        const line = Object.entries(m)
          .filter(([k]) => k.includes('/') && !k.endsWith('/loss'))
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join(' | ');
        if (bar) bar.stop();
        console.log(`${run.label} step ${m.step}: train loss ${m.trainLoss.toFixed(3)} | ${line} | ${m.stepsPerS.toFixed(1)} steps/s`);
        if (bar && m.step < c.steps) bar.start(c.steps, m.step, { loss: m.trainLoss.toFixed(3) });
      },
    });
    bar?.stop();
    if (result.interrupted) {
      throw new Stopped(`Stopped ${run.label} at step ${result.step}; checkpoint in ${join(runDir, 'checkpoint')}. Continue with the same command plus --resume.`);
    }
    console.log(`${run.label}: metrics in ${runDir}/metrics.csv`);
    results.set(run.label, result);
  }
  return results;
}

/** Writes a results table next to the runs and prints it. */
export async function reportTable(flags: SupervisedFlags, folder: string, basename: string, table: ResultsTable): Promise<void> {
  const paths = await writeResultsTable(join(flags.out, folder), basename, table);
  console.log(`\n${toMarkdown(table)}`);
  console.log(`Table written to ${paths.md} and ${paths.csv}`);
}

/** A percentage cell (null when missing). */
export function pct(x: number | undefined): Cell {
  return x === undefined ? null : 100 * x;
}
