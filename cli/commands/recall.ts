/**
 * `hqlt recall`: multi-query associative recall; accuracy (normalised, chance = 0) per number of key–value pairs,
 * for each core (and window size, via `--windows`).
 */
import type { Command } from 'commander';
import type { Cell } from '../../training/results-table.js';
import { addSupervisedOptions, executeRuns, interruptible, pct, planRuns, reportTable, type SupervisedFlags } from './supervised-common.js';

const DEFAULTS = {
  task: 'associative-recall',
  steps: 2000,
  batch: 32,
  lr: 1e-3,
  evalEvery: 500,
  taskOptions: { keys: 64, values: 64, minPairs: 2, maxPairs: 32, evalPairs: [4, 8, 16, 32], evalSize: 128 },
  core: { type: 'hqlt', dim: 64, layers: 2, heads: 4, window: 8, shortConv: true },
};

interface RecallFlags extends SupervisedFlags {
  windows?: string;
  pairs?: string;
}

export function registerRecall(program: Command): void {
  addSupervisedOptions(
    program
      .command('recall')
      .description('multi-query associative recall: accuracy vs number of key–value pairs and window size')
      .option('--windows <list>', 'comma-separated KV windows to compare (one run per core and window)')
      .option('--pairs <list>', 'comma-separated numbers of pairs to evaluate at (default 4,8,16,32)'),
  ).action(interruptible(async (flags: RecallFlags, signal) => {
    const defaults = { ...DEFAULTS, taskOptions: { ...DEFAULTS.taskOptions } };
    if (flags.pairs) {
      const pairs = flags.pairs.split(',').map(Number);
      if (pairs.some((p) => !Number.isInteger(p) || p < 1)) throw new Error(`--pairs must be positive integers, got '${flags.pairs}'.`);
      defaults.taskOptions.evalPairs = pairs;
      defaults.taskOptions.maxPairs = Math.max(...pairs);
    }
    const windows = flags.windows ? flags.windows.split(',').map(Number) : [undefined];
    const rows: Cell[][] = [];
    let pairs: number[] = [];
    for (const window of windows) {
      const runs = planRuns({ ...flags, window: window ?? flags.window }, defaults);
      const suffix = window === undefined ? '' : `-w${window}`;
      const labelled = runs.map((r) => ({ ...r, label: `${r.label}${suffix}` }));
      const results = await executeRuns(flags, labelled, signal);
      if (flags.printConfig) continue;
      for (const { label, config } of labelled) {
        const final = results.get(label)!.final;
        pairs = Object.keys(final).map((k) => Number(k.split('=')[1]));
        rows.push([label, (config.core.window as number | undefined) ?? null, ...pairs.map((p) => pct(final[`pairs=${p}`].normalizedAccuracy))]);
      }
    }
    if (flags.printConfig || rows.length < 2) return;
    await reportTable(flags, flags.name ?? 'recall-compare', 'results', {
      title: 'Multi-query associative recall',
      caption: 'Normalised accuracy (%, chance = 0) on held-out sequences, by number of key–value pairs.',
      columns: ['model', 'window', ...pairs.map((p) => `${p} pairs`)],
      rows,
    });
  }));
}
