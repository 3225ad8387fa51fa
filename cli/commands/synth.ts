/**
 * `hqlt synth`: formal-language tasks (parity, modular arithmetic) as in Delétang et al. 2023, trained on
 * lengths 3–39 and tested on 40–256; accuracy normalised so chance is 0. `--preset paper-table3[-full]` runs the
 * comparison of the seed paper's Table 3 (Irie, Yau & Gershman 2025); see training/supervised/synth.ts.
 */
import type { Command } from 'commander';
import { initBackend } from '../../memory/backend.js';
import { describeHardware, commandLine, recordCommand } from '../../training/results.js';
import {
  SYNTH_BUDGETS,
  SYNTH_PRESETS,
  SYNTH_TASKS,
  lengthSplitOf,
  synthTable,
  withBudget,
  writeSynthReport,
  type SynthRun,
} from '../../training/supervised/synth.js';
import { addSupervisedOptions, executeRuns, interruptible, planRuns, reportTable, type SupervisedFlags } from './supervised-common.js';
import { positiveIntArg } from './options.js';
import { readConfigFile } from '../../training/rl/config.js';

export { PAPER_TABLE3 } from '../../training/supervised/synth.js';
export const PAPER_TABLE3_PRESET = SYNTH_PRESETS['paper-table3'];

const DEFAULTS = {
  steps: 2000,
  batch: 32,
  lr: 1e-3,
  evalEvery: 500,
  core: { type: 'hqlt', dim: 64, layers: 2, heads: 4, window: 8, shortConv: true },
};

interface SynthFlags extends SupervisedFlags {
  task?: string;
  preset?: string;
  seeds?: number;
  budget?: string;
  results?: string;
}

export function registerSynth(program: Command): void {
  const presets = Object.entries(SYNTH_PRESETS).map(([name, p]) => `'${name}': ${p.description}`).join('; ');
  addSupervisedOptions(
    program
      .command('synth')
      .description('formal-language length generalisation (parity, modular arithmetic): train on lengths 3–39, test on 40–256')
      .option('--task <task>', `task: ${SYNTH_TASKS.join(', ')}, or 'all' (default: the --config file's, else parity)`)
      .option('--preset <name>', `${presets} (all cores, both tasks)`)
      .option('--seeds <n>', 'seeds per core and task, from --seed on (default 1, or the preset’s)', positiveIntArg)
      .option('--budget <name>', `shrink the preset or defaults: ${Object.keys(SYNTH_BUDGETS).join(', ')} (a seconds-long smoke test)`)
      .option('--results <dir>', 'also write the table, curves, accuracy by length, per-run numbers and this command into <dir> (for results/)'),
  ).action(interruptible(async (flags: SynthFlags, signal) => {
    const started = performance.now();
    const preset = flags.preset === undefined ? undefined : SYNTH_PRESETS[flags.preset];
    if (flags.preset !== undefined && !preset) throw new Error(`Unknown preset '${flags.preset}'. Choose one of: ${Object.keys(SYNTH_PRESETS).join(', ')}.`);
    const fileTask = flags.config ? readConfigFile(flags.config).task : undefined;
    const single = flags.task ?? (typeof fileTask === 'string' ? fileTask : 'parity');
    const tasks = preset || single === 'all' ? [...SYNTH_TASKS] : [single];
    for (const t of tasks) if (!(SYNTH_TASKS as readonly string[]).includes(t)) throw new Error(`Unknown task '${t}'. Choose one of: ${SYNTH_TASKS.join(', ')}, all.`);
    const cores = flags.cores ?? preset?.cores.join(',');
    const defaults = withBudget(preset?.defaults ?? DEFAULTS, flags.budget);
    const seeds = flags.seeds ?? preset?.seeds ?? 1;
    const first = flags.seed ?? 0;
    const name = flags.name ?? flags.preset;
    const runs: SynthRun[] = [];
    let labels: string[] = [];
    for (const task of tasks) {
      for (let seed = first; seed < first + seeds; seed++) {
        const plan = planRuns({ ...flags, cores, seed }, { ...defaults, task }, preset?.overrides ?? {});
        if (plan[0].config.task !== task) {
          throw new Error(`The --config file's task '${plan[0].config.task}' contradicts ${preset ? `the preset's task '${task}'` : `--task ${task}`}: drop one of them.`);
        }
        labels = plan.map((r) => r.label);
        // <name>[/<task>][/s<seed>][/<core>]; without a name, executeRuns names the folder by task, core and seed.
        const folder = name && [name, plan.length > 1 || tasks.length > 1 ? task : '', seeds > 1 ? `s${seed}` : ''].filter(Boolean).join('/');
        const done = await executeRuns({ ...flags, cores, name: folder || undefined }, plan, signal);
        for (const [core, result] of done) runs.push({ task, core, seed, result });
      }
    }
    if (flags.printConfig || (labels.length < 2 && !preset && seeds < 2 && !flags.results)) return;
    const c = runs[0].result.config;
    const split = lengthSplitOf(c);
    const size =
      `width ${String(c.core.dim)}, ${String(c.core.layers)} layers, ${c.steps} steps of ${c.batch} sequences, lr ${c.lr}, ` +
      `${seeds} seed(s) from ${first}${flags.budget ? `, budget '${flags.budget}'` : ''}`;
    const table = synthTable(runs, {
      tasks,
      cores: labels,
      paper: preset !== undefined,
      title: preset ? `Seed paper's Table 3: ${flags.preset}` : 'Formal-language length generalisation',
      caption:
        `Normalised accuracy (%, chance = 0): (acc − 1/C)/(1 − 1/C), mean ± std over seeds; 'test' on lengths ` +
        `${split.testMin}–${split.testMax}, 'train lengths' on fresh sequences of the training lengths ${split.trainMin}–${split.trainMax}. Ours: ${size}` +
        (preset ? `; ${preset.scale}. Paper: Irie, Yau & Gershman (2025), Table 3.` : '.'),
    });
    await reportTable(flags, name ?? `synth-compare-s${first}`, 'results', table);
    if (flags.results) {
      const files = await writeSynthReport(flags.results, runs, table);
      const backend = await initBackend(flags.backend);
      await recordCommand(
        flags.results,
        { title: table.title },
        { command: commandLine(), hardware: describeHardware(backend.active), wallSeconds: (performance.now() - started) / 1000, date: new Date().toISOString(), files },
      );
      console.log(`Results (table, curves, accuracy by length, per-run numbers) written to ${flags.results}`);
    }
  }));
}
