/**
 * `hqlt lm`: character-level language modelling on Moby-Dick (split by chapter); bits per character on the
 * held-out validation and test text, per core.
 */
import type { Command } from 'commander';
import { addSupervisedOptions, executeRuns, interruptible, planRuns, reportTable, type SupervisedFlags } from './supervised-common.js';

const DEFAULTS = {
  task: 'char-lm',
  steps: 2000,
  batch: 32,
  lr: 1e-3,
  evalEvery: 500,
  taskOptions: { context: 128, evalChars: 32768 },
  core: { type: 'hqlt', dim: 64, layers: 2, heads: 4, window: 16, shortConv: true },
};

interface LmFlags extends SupervisedFlags {
  context?: number;
  evalChars?: number;
}

export function registerLm(program: Command): void {
  addSupervisedOptions(
    program
      .command('lm')
      .description('character-level language modelling on Moby-Dick: bits per character on held-out chapters')
      .option('--context <n>', 'characters per training window (default 128)', (v) => Number(v))
      .option('--eval-chars <n>', 'held-out characters evaluated per split, 0 = all (default 32768)', (v) => Number(v)),
  ).action(interruptible(async (flags: LmFlags, signal) => {
    const taskOptions = { ...DEFAULTS.taskOptions };
    if (flags.context !== undefined) taskOptions.context = flags.context;
    if (flags.evalChars !== undefined) taskOptions.evalChars = flags.evalChars;
    const runs = planRuns(flags, { ...DEFAULTS, taskOptions });
    const results = await executeRuns(flags, runs, signal);
    if (flags.printConfig || runs.length < 2) return;
    await reportTable(flags, flags.name ?? `char-lm-compare-s${runs[0].config.seed}`, 'results', {
      title: 'Character-level language modelling (Moby-Dick)',
      caption: `Bits per character on held-out chapters (each window of ${taskOptions.context} characters from a fresh state; first ${taskOptions.evalChars || 'all'} characters of each split).`,
      columns: ['model', 'valid bpc', 'test bpc'],
      rows: runs.map((r) => [r.label, results.get(r.label)!.final.valid.bpc, results.get(r.label)!.final.test.bpc]),
      digits: 3,
    });
  }));
}
