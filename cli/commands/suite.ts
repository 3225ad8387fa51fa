import type { Command } from 'commander';
import { toMarkdown } from '../../training/results-table.js';
import { stopOnSignals } from '../../util/interrupt.js';
import { ENV_PRESETS, expandEnvs, runSuite, suiteTable } from '../../training/rl/suite.js';
import { backendOption, intArg, positiveIntArg } from './options.js';

interface SuiteFlags {
  envs: string;
  cores: string;
  steps?: number;
  seeds: number;
  seed: number;
  numEnvs?: number;
  backend?: string;
  out: string;
}


export function registerSuite(program: Command): void {
  program
    .command('suite')
    .description(
      "train and evaluate every env × core pair; write POPGym's raw MMER per pair (markdown + CSV), plus a normalised score where the env's optimum is reachable",
    )
    .option('--envs <list>', `env ids and presets (${Object.keys(ENV_PRESETS).join(', ')})`, 'memory')
    .option('--cores <list>', 'core types or presets, comma-separated', 'hqlt-sync,gru,mlp')
    .option('--steps <n>', 'env steps per run (default: the train default)', positiveIntArg)
    .option('--seeds <n>', 'seeds per pair', positiveIntArg, 3)
    .option('--seed <n>', 'first seed', intArg, 1)
    .option('--num-envs <n>', 'parallel envs per run', positiveIntArg)
    .option('--out <dir>', 'folder for the runs and the table', 'runs/suite')
    .addOption(backendOption())
    .action(async (f: SuiteFlags) => {
      const envs = expandEnvs(f.envs);
      const cores = f.cores.split(',').map((s) => s.trim()).filter(Boolean);
      const base = {
        seed: f.seed,
        ...(f.steps ? { steps: f.steps } : {}),
        ...(f.numEnvs ? { numEnvs: f.numEnvs } : {}),
        ...(f.backend ? { backend: f.backend } : {}),
      };
      const seeds = f.seeds;
      console.log(`suite: ${envs.length} env(s) × ${cores.length} core(s) × ${seeds} seed(s) → ${f.out}`);
      await stopOnSignals('finishing the current update and writing a checkpoint', async (signal) => {
        const { cells, files } = await runSuite({
          envs,
          cores,
          seeds,
          base,
          out: f.out,
          onRun: (env, core, seed, mmer) => console.log(`  ${env} ${core} seed ${seed}: MMER ${mmer.toFixed(3)}`),
          signal,
        });
        console.log(toMarkdown(suiteTable(cells, { envs, cores, seeds, base })));
        console.log(`wrote ${files.md} and ${files.csv}`);
      });
    });
}
