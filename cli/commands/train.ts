/**
 * `hqlt train`: recurrent PPO on a registered env with any memory core; metrics to `<out>/<name>/metrics.*`,
 * checkpoints to `<out>/<name>/checkpoint/` (every N updates, at the end, and on Ctrl-C or SIGTERM), `--resume` to
 * continue. One process at a time writes a run folder (`run-lock.ts`).
 */
import { Command, Option } from 'commander';
import { basename, dirname, join } from 'node:path';
import { coreTypes, resolveCoreConfig } from '../../memory/registry.js';
import { checkpointDir, readCheckpointConfig } from '../../training/rl/checkpoint.js';
import { mergeConfigs, parseTrainConfig, readConfigFile, type TrainConfig, type TrainConfigInput } from '../../training/rl/config.js';
import { stopOnSignals, Stopped } from '../../util/interrupt.js';
import { readMetrics } from '../../training/metrics.js';
import { returnSummary, runTraining } from '../../training/rl/train.js';
import { backendOption, intArg, numberArg, remoteTimeoutOption, runNameArg } from './options.js';

interface TrainFlags {
  env?: string;
  core?: string;
  blend?: string;
  mixing?: string;
  steps?: number;
  seed?: number;
  numEnvs?: number;
  rollout?: number;
  seqLen?: number;
  epochs?: number;
  minibatches?: number;
  lr?: number;
  dim?: number;
  layers?: number;
  heads?: number;
  window?: number;
  backend?: string;
  name?: string;
  out?: string;
  config?: string;
  printConfig?: boolean;
  resume?: string;
  checkpointEvery?: number;
  previousAction?: boolean;
  remoteTimeout?: number;
}


/** Flags → a partial config (only the flags given). */
function flagsToConfig(f: TrainFlags): TrainConfigInput {
  const core: Record<string, unknown> = {};
  for (const key of ['blend', 'mixing', 'dim', 'layers', 'heads', 'window'] as const) if (f[key] !== undefined) core[key] = f[key];
  if (f.core !== undefined) core.type = f.core;
  return {
    env: f.env,
    steps: f.steps,
    seed: f.seed,
    numEnvs: f.numEnvs,
    rollout: f.rollout,
    seqLen: f.seqLen,
    epochs: f.epochs,
    minibatches: f.minibatches,
    lr: f.lr,
    backend: f.backend,
    name: f.name,
    out: f.out,
    checkpointEvery: f.checkpointEvery,
    previousAction: f.previousAction === false ? false : undefined,
    remoteTimeoutMs: f.remoteTimeout,
    core: Object.keys(core).length ? core : undefined,
  };
}

/** Flags that may change on --resume (others would break the run's continuity). */
const RESUMABLE = new Set(['steps', 'checkpointEvery', 'backend', 'remoteTimeoutMs']);

/** The config for a command line: defaults ← --config file ← flags, or the checkpoint's for --resume. */
export function resolveTrainConfig(f: TrainFlags): { config: TrainConfig; resume: boolean } {
  const flags = flagsToConfig(f);
  if (f.resume) {
    const changed = Object.entries(flags).filter(([k, v]) => v !== undefined && !RESUMABLE.has(k)).map(([k]) => k);
    if (changed.length || f.config) {
      throw new Error(
        `--resume continues a run with its saved config; only --steps, --checkpoint-every and --backend may be given ` +
          `(got: ${[...changed, ...(f.config ? ['config'] : [])].join(', ')}).`,
      );
    }
    const saved = readCheckpointConfig(f.resume).config;
    const runDir = f.resume.replace(/\/+$/, '');
    const config = parseTrainConfig(mergeConfigs(saved, flags, { out: dirname(runDir), name: basename(runDir) }), 'resumed config');
    return { config, resume: true };
  }
  const file = f.config ? readConfigFile(f.config) : {};
  return { config: parseTrainConfig(mergeConfigs(file, flags), f.config ? `config (${f.config} + flags)` : 'config'), resume: false };
}

export function registerTrain(program: Command): void {
  const D = parseTrainConfig({}); // the defaults, so the help text cannot drift from the schema
  program
    .command('train')
    .description('train a recurrent PPO agent with a memory core on a POMDP')
    .option('--env <id>', `registered env id, or remote:<endpoint>[,...] (default ${D.env})`)
    .addOption(remoteTimeoutOption())
    .option('--core <type>', `memory core: ${coreTypes().join(', ')} (default hqlt)`)
    .option('--blend <blend>', 'HQLT blend (synchronous, delayed-streaming, delayed-chunk, synchronous-linear)')
    .option('--mixing <mixing>', 'HQLT mixing (sum, scalar, vector)')
    .option('--steps <n>', `total env steps (default ${D.steps})`, intArg)
    .option('--seed <n>', `seed of everything random (default ${D.seed})`, intArg)
    .option('--num-envs <n>', `parallel envs (default ${D.numEnvs})`, intArg)
    .option('--rollout <n>', `steps per env per rollout (default ${D.rollout})`, intArg)
    .option('--seq-len <n>', `BPTT sequence length, divides --rollout (default ${D.seqLen})`, intArg)
    .option('--epochs <n>', `PPO epochs per rollout (default ${D.epochs})`, intArg)
    .option('--minibatches <n>', `minibatches per epoch (default ${D.minibatches})`, intArg)
    .option('--lr <x>', `Adam learning rate, annealed linearly to 0 (default ${D.lr})`, numberArg)
    .option('--dim <n>', `core width (default ${D.core.dim})`, intArg)
    .option('--layers <n>', `core layers (default ${D.core.layers})`, intArg)
    .option('--heads <n>', `attention heads (default ${D.core.heads} for hqlt)`, intArg)
    .option('--window <n>', `HQLT KV-memory window (default ${D.core.window})`, intArg)
    .option('--no-previous-action', 'do not feed the previous action and first-step flag to the agent')
    .addOption(backendOption())
    .option('--name <name>', 'run name, a folder under --out (default <env>-<core>-s<seed>)', runNameArg)
    .option('--out <dir>', `runs folder (default ${D.out})`)
    .option('--config <file>', 'JSON config file (flags override it)')
    .option('--print-config', 'print the resolved config and exit')
    .option('--resume <runDir>', 'continue a run from its checkpoint, e.g. runs/<name>')
    .addOption(new Option('--checkpoint-every <n>', `checkpoint every N updates (0: only at the end; default ${D.checkpointEvery})`).argParser(intArg))
    .action(async (flags: TrainFlags) => {
      const { config, resume } = resolveTrainConfig(flags);
      if (flags.printConfig) {
        // The core as the registry completes it, so every effective setting shows.
        console.log(JSON.stringify({ ...config, core: resolveCoreConfig(config.core) }, null, 2));
        return;
      }
      await stopOnSignals('finishing this update and writing a checkpoint', async (signal) => {
        const result = await runTraining(config, { resume, signal });
        const { runDir } = result;
        if (result.interrupted) {
          throw new Stopped(`Stopped after update ${result.metrics.at(-1)?.update}; checkpoint in ${checkpointDir(runDir)}. Continue with: hqlt train --resume ${runDir}`);
        }
        const all = readMetrics(join(runDir, 'metrics.jsonl'));
        const summary = returnSummary(all);
        if (resume && result.metrics.length === 0) {
          const done = all.at(-1)?.globalStep ?? 0;
          console.log(
            `Nothing to train: ${runDir} has already trained ${done} steps, all that --steps ${config.steps} asks for (${summary}). ` +
              `To train further, resume with a larger --steps, e.g. hqlt train --resume ${runDir} --steps ${2 * done}.`,
          );
          return;
        }
        console.log(`Done: ${summary}. Metrics in ${runDir}/metrics.csv; evaluate with: hqlt eval --run ${runDir}`);
      });
    });
}
