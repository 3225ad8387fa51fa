/**
 * `hqlt synth`: formal-language tasks (parity, modular arithmetic) as in Delétang et al. 2023, trained on
 * lengths 3–39 and tested on 40–256; accuracy normalised so chance is 0. `--preset paper-table3` reproduces the
 * comparison of the seed paper's Table 3 (Irie, Yau & Gershman 2025) at a size that runs on a laptop.
 */
import type { Command } from 'commander';
import type { Cell } from '../../training/results-table.js';
import type { TrainResult } from '../../training/supervised/trainer.js';
import { addSupervisedOptions, executeRuns, interruptible, pct, planRuns, reportTable, type PlannedRun, type SupervisedFlags } from './supervised-common.js';

const TASKS = ['parity', 'modular-arithmetic'] as const;

const DEFAULTS = {
  steps: 2000,
  batch: 32,
  lr: 1e-3,
  evalEvery: 500,
  core: { type: 'hqlt', dim: 64, layers: 2, heads: 4, window: 8, shortConv: true },
};

/** The seed paper's Table 3 (normalised test accuracy, %), for printing beside ours. */
export const PAPER_TABLE3: Record<string, { label: string; parity: string; 'modular-arithmetic': string }> = {
  deltanet: { label: 'DeltaNet', parity: '≈100', 'modular-arithmetic': '≈97' },
  'hqlt-sync': { label: 'HQLT Synchronous', parity: '≈100', 'modular-arithmetic': '≈97' },
  'hqlt-delayed': { label: 'HQLT Delayed-Streaming', parity: '3.3', 'modular-arithmetic': '27.8' },
  'hqlt-chunk': { label: 'HQLT Delayed-Chunk', parity: '2.8', 'modular-arithmetic': '1.4' },
  transformer: { label: 'Transformer', parity: '2.2', 'modular-arithmetic': '3.1' },
};

/**
 * `paper-table3`, scaled far down from the paper (width 128, 2–3 layers, long training) so all ten runs finish in
 * well under an hour on 2 CPU cores with the wasm backend (measured 3–9 training steps/s per run at this size on a
 * quiet 2-core machine): width 32, 2 layers, 4 heads, window 8 (16 for Delayed-Chunk), short convolutions, 1,000
 * steps of 16 sequences, 128 test sequences. Raise --steps (and --dim) with more compute.
 */
export const PAPER_TABLE3_PRESET = {
  cores: Object.keys(PAPER_TABLE3),
  defaults: {
    steps: 1000,
    batch: 16,
    lr: 3e-3,
    warmup: 50,
    evalEvery: 500,
    taskOptions: { testSize: 128 },
    core: { dim: 32, layers: 2, heads: 4, window: 8, shortConv: true, mlp: true },
  },
  overrides: { 'hqlt-chunk': { window: 16 } } as Record<string, Record<string, unknown>>,
};

interface SynthFlags extends SupervisedFlags {
  task: string;
  preset?: string;
}

function tableRows(labels: string[], results: Map<string, Map<string, TrainResult>>, withPaper: boolean): Cell[][] {
  return labels.map((label) => {
    const row: Cell[] = [withPaper ? (PAPER_TABLE3[label]?.label ?? label) : label];
    for (const task of TASKS) {
      const r = results.get(task)?.get(label);
      if (!results.has(task)) continue;
      row.push(pct(r?.final.test?.normalizedAccuracy));
      if (withPaper) row.push(PAPER_TABLE3[label]?.[task] ?? null);
    }
    return row;
  });
}

export function registerSynth(program: Command): void {
  addSupervisedOptions(
    program
      .command('synth')
      .description('formal-language length generalisation (parity, modular arithmetic): train on lengths 3–39, test on 40–256')
      .option('--task <task>', `task: ${TASKS.join(', ')}, or 'all'`, 'parity')
      .option('--preset <name>', "'paper-table3': the seed paper's Table 3 comparison, scaled down (all cores, both tasks)"),
  ).action(interruptible(async (flags: SynthFlags, signal) => {
    if (flags.preset !== undefined && flags.preset !== 'paper-table3') {
      throw new Error(`Unknown preset '${flags.preset}'. The only preset is 'paper-table3'.`);
    }
    const preset = flags.preset === 'paper-table3';
    const tasks = preset || flags.task === 'all' ? [...TASKS] : [flags.task];
    for (const t of tasks) if (!(TASKS as readonly string[]).includes(t)) throw new Error(`Unknown task '${t}'. Choose one of: ${TASKS.join(', ')}, all.`);
    const cores = flags.cores ?? (preset ? PAPER_TABLE3_PRESET.cores.join(',') : undefined);
    const defaults = preset ? PAPER_TABLE3_PRESET.defaults : DEFAULTS;
    const plans = new Map<string, PlannedRun[]>(
      tasks.map((task) => [task, planRuns({ ...flags, cores }, { ...defaults, task }, preset ? PAPER_TABLE3_PRESET.overrides : {})]),
    );
    const results = new Map<string, Map<string, TrainResult>>();
    for (const [task, runs] of plans) {
      const name = flags.name ?? (preset ? 'paper-table3' : undefined);
      const done = await executeRuns({ ...flags, cores, name: name && runs.length > 1 ? `${name}/${task}` : name }, runs, signal);
      if (flags.printConfig) continue;
      results.set(task, done);
    }
    if (flags.printConfig) return;
    const labels = plans.get(tasks[0])!.map((r) => r.label);
    if (labels.length < 2 && !preset) return;
    const first = plans.get(tasks[0])![0].config;
    const size = `width ${String(first.core.dim)}, ${String(first.core.layers)} layers, ${first.steps} steps of ${first.batch} sequences, seed ${first.seed}`;
    const columns = ['model'];
    for (const task of tasks) columns.push(`${task} (ours)`, ...(preset ? [`${task} (paper)`] : []));
    await reportTable(flags, flags.name ?? (preset ? 'paper-table3' : `synth-compare-s${first.seed}`), 'results', {
      title: preset ? "Seed paper's Table 3, reproduced at small scale" : 'Formal-language length generalisation',
      caption:
        `Normalised test accuracy (%, chance = 0): (acc − 1/C)/(1 − 1/C) on lengths 40–256 after training on 3–39. ` +
        `Ours: ${size}` +
        (preset
          ? '; scaled down from the paper (width 128, 2–3 layers, much longer training) to finish in about an hour on 2 CPU cores. ' +
            'Paper: Irie, Yau & Gershman (2025), Table 3 (≈ where we quote the paper approximately).'
          : '.'),
      columns,
      rows: tableRows(labels, results, preset),
    });
  }));
}
