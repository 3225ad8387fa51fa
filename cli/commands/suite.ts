import { InvalidArgumentError, type Command } from 'commander';
import { toMarkdown } from '../../training/results-table.js';
import { stopOnSignals } from '../../util/interrupt.js';
import { mergeConfigs, readConfigFile } from '../../training/rl/config.js';
import { ENV_PRESETS, expandEnvs, runSuite, SUITE_BUDGETS, suiteTable } from '../../training/rl/suite.js';
import { writeSuiteReport } from '../../training/rl/suite-report.js';
import { commandLine, describeHardware, recordCommand } from '../../training/results.js';
import { resolveJobs } from '../../training/rl/suite/pool.js';
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
  config?: string;
  checkpointEvery?: number;
  jobs: number | 'auto';
  queue?: string;
  budget?: string;
  results?: string;
}

/** `--jobs <n|auto>`. */
export function jobsArg(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("Expected a positive integer or 'auto'.");
  return n;
}

export function registerSuite(program: Command): void {
  program
    .command('suite')
    .description(
      "train and evaluate every env × core pair; write POPGym's raw MMER per pair (markdown + CSV), plus a normalised score where the env's optimum is reachable. Running it again skips finished trials and resumes interrupted ones",
    )
    .option('--envs <list>', `env ids and presets (${Object.keys(ENV_PRESETS).join(', ')})`, 'memory')
    .option('--cores <list>', 'core types or presets, comma-separated', 'hqlt-sync,gru,mlp')
    .option('--steps <n>', 'env steps per run (default: the train default)', positiveIntArg)
    .option('--seeds <n>', 'seeds per pair', positiveIntArg, 3)
    .option('--seed <n>', 'first seed', intArg, 1)
    .option('--num-envs <n>', 'parallel envs per run', positiveIntArg)
    .option('--config <file>', 'JSON train config shared by every run (flags override it; env, core and seed are set per trial)')
    .option('--checkpoint-every <n>', 'checkpoint every n updates (what an interrupted trial resumes from)', intArg)
    .option('--out <dir>', 'folder for the runs (<out>/runs/<env>/<core>/s<seed>/) and the table', 'runs/suite')
    .option('--jobs <n|auto>', 'trials at once, each in its own process (auto: one per core, or per GPU with a GPU backend)', jobsArg, 1)
    .option('--queue <url>', "queue the trials on Redis (redis://host:6379/0) for 'hqlt worker's on any machines, wait, and write the table")
    .option('--budget <name>', `shrink every trial: ${Object.keys(SUITE_BUDGETS).join(', ')} (a seconds-long smoke test; the config file and flags override it)`)
    .option('--results <dir>', 'also write the tables, learning curves (mean ± std over seeds), per-trial numbers and this command into <dir> (for results/)')
    .addOption(backendOption())
    .action(async (f: SuiteFlags) => {
      const started = performance.now();
      const envs = expandEnvs(f.envs);
      const cores = f.cores.split(',').map((s) => s.trim()).filter(Boolean);
      if (f.budget !== undefined && !(f.budget in SUITE_BUDGETS)) throw new Error(`Unknown budget '${f.budget}'. Choose one of: ${Object.keys(SUITE_BUDGETS).join(', ')}.`);
      const base = mergeConfigs(f.budget ? SUITE_BUDGETS[f.budget] : {}, f.config ? readConfigFile(f.config) : {}, {
        seed: f.seed,
        steps: f.steps,
        numEnvs: f.numEnvs,
        backend: f.backend,
        checkpointEvery: f.checkpointEvery,
      });
      const seeds = f.seeds;
      const { jobs, env } = resolveJobs(f.jobs, f.backend);
      const where = f.queue ? `on the workers of ${f.queue}` : jobs > 1 ? `${jobs} at a time` : 'one at a time';
      console.log(`suite: ${envs.length} env(s) × ${cores.length} core(s) × ${seeds} seed(s), ${where} → ${f.out}`);
      await stopOnSignals(f.queue ? 'no longer waiting (the workers go on)' : 'checkpointing the running trials', async (signal) => {
        const { cells, files } = await runSuite({ envs, cores, seeds, base, out: f.out, signal, jobs, childEnv: env, queue: f.queue, progress: 'auto' });
        console.log(toMarkdown(suiteTable(cells, { envs, cores, seeds, base })));
        console.log(`wrote ${files.md} and ${files.csv}`);
        if (f.results) {
          const written = await writeSuiteReport(f.results, { envs, cores, seeds, base, out: f.out }, cells);
          const backend = f.backend ?? process.env.HQLT_BACKEND ?? 'auto';
          const hardware = describeHardware(`${backend}${f.queue ? ', trials run by queue workers' : jobs > 1 ? `, ${jobs} trials at a time` : ''}`);
          const title = `Suite: ${f.envs} × ${cores.join(', ')}`;
          await recordCommand(f.results, { title }, { command: commandLine(), hardware, wallSeconds: (performance.now() - started) / 1000, date: new Date().toISOString(), files: written });
          console.log(`Results (tables, curves, per-trial numbers) written to ${f.results}`);
        }
      });
    });
}
