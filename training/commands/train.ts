/**
 * `hqlt train`: recurrent PPO on a registered env with any memory core; metrics to `<out>/<name>/metrics.*`,
 * checkpoints to `<out>/<name>/checkpoint/` (every N updates, at the end, and on Ctrl-C), `--resume` to continue.
 */
import { Command, Option } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { writeFileAtomicSync } from '../../memory/files.js';
import { basename, dirname, join } from 'node:path';
import { RecurrentAgent } from '../../agents/agent.js';
import { SyncVectorEnv, type VectorEnv } from '../../envs/index.js';
import { isRemoteEnvId, makeRemoteVectorEnv } from '../../envs/remote/index.js';
import { initBackend } from '../../memory/backend.js';
import { deriveSeed } from '../../memory/random.js';
import { coreTypes, createCore, resolveCoreConfig } from '../../memory/registry.js';
import { checkpointDir, loadCheckpoint, readCheckpointConfig, saveCheckpoint } from '../checkpoint.js';
import { mergeConfigs, parseTrainConfig, ppoSettings, readConfigFile, totalUpdates, type TrainConfig, type TrainConfigInput } from '../config.js';
import { METRIC_COLUMNS, MetricsLog, Progress } from '../metrics.js';
import { PpoTrainer, type UpdateMetrics } from '../ppo.js';
import { backendOption, intArg, numberArg, remoteTimeoutOption } from './options.js';

export interface BuiltAgent {
  agent: RecurrentAgent;
  env: VectorEnv;
}

/**
 * The vector env a config names: a registered id run in-process, or `remote:<endpoint>[,<endpoint>...]` served
 * over ZeroMQ (`hqlt serve` or the Python server), whose servers decide how many envs there are.
 */
export async function makeVectorEnv(config: TrainConfig, numEnvs = config.numEnvs): Promise<VectorEnv> {
  if (!isRemoteEnvId(config.env)) return new SyncVectorEnv({ id: config.env, kwargs: config.envKwargs, numEnvs });
  const env = await makeRemoteVectorEnv(config.env, { timeoutMs: config.remoteTimeoutMs });
  if (env.numEnvs !== numEnvs) {
    await env.close();
    throw new Error(`${config.env} serves ${env.numEnvs} envs in all, but the config asks for ${numEnvs}: pass --num-envs ${env.numEnvs}.`);
  }
  return env;
}

/** The vector env and agent a config describes (weights from the config's seed). */
export async function buildAgent(config: TrainConfig, numEnvs = config.numEnvs): Promise<BuiltAgent> {
  const env = await makeVectorEnv(config, numEnvs);
  const core = createCore(config.core, deriveSeed(config.seed, 'core'));
  const agent = new RecurrentAgent(core, env.singleObservationSpace, env.singleActionSpace, {
    seed: config.seed,
    previousAction: config.previousAction,
  });
  return { agent, env };
}

export interface TrainOptions {
  /** Continue the run in this folder from its checkpoint (the config comes from the checkpoint). */
  resume?: boolean;
  /** Aborting finishes the current update, writes a checkpoint and returns (Ctrl-C). */
  signal?: AbortSignal;
  /** Called after every update (tests use it to simulate a crash by throwing). */
  onUpdate?: (m: UpdateMetrics) => void | Promise<void>;
  /** Progress display: 'auto' (bar on a TTY, lines otherwise), or 'none'. */
  progress?: 'auto' | 'none';
}

export interface TrainResult {
  runDir: string;
  metrics: UpdateMetrics[];
  interrupted: boolean;
}

/** Trains per `config` (see `TrainOptions`); returns the run folder and this invocation's metrics. */
export async function runTraining(config: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const backend = await initBackend(config.backend);
  const runDir = join(config.out, config.name);
  if (!opts.resume && existsSync(checkpointDir(runDir))) {
    throw new Error(`${runDir} already holds a run. Continue it with --resume ${runDir}, or pick another --name.`);
  }
  const { agent, env } = await buildAgent(config);
  const trainer = new PpoTrainer(agent, env, ppoSettings(config), config.seed);
  const total = totalUpdates(config);
  const metrics: UpdateMetrics[] = [];
  let progress: Progress | undefined;
  try {
    if (opts.resume) {
      const ckpt = loadCheckpoint(runDir, agent);
      if (ckpt.backend !== backend.active) {
        console.warn(`Note: the checkpoint was written on backend '${ckpt.backend}', resuming on '${backend.active}': the run continues, but not bit for bit.`);
      }
      const { envRestored } = await trainer.restore(ckpt.snapshot);
      if (!envRestored) {
        console.warn(`Note: ${config.env} cannot save its envs, so resuming resets them (episodes in progress start over): the run continues, but not bit for bit.`);
      }
    } else {
      mkdirSync(runDir, { recursive: true });
      writeFileAtomicSync(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      await trainer.start(config.seed);
    }
    const resumedAt = trainer.update;
    const log = new MetricsLog<UpdateMetrics>(runDir, {
      columns: METRIC_COLUMNS,
      keep: opts.resume ? (m) => m.update <= resumedAt : undefined,
    });
    const save = () => trainer.snapshot().then((s) => saveCheckpoint(runDir, agent, s, config, backend.active));
    const totalSteps = total * config.numEnvs * config.rollout;
    progress = opts.progress === 'none' ? undefined : new Progress(totalSteps, trainer.globalStep);
    let interrupted = false;
    while (trainer.update < total) {
      const m = await trainer.iterate();
      metrics.push(m);
      log.append(m);
      progress?.update(m);
      await opts.onUpdate?.(m);
      if (opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      if (config.checkpointEvery > 0 && trainer.update % config.checkpointEvery === 0 && trainer.update < total) await save();
    }
    await save();
    progress?.stop();
    return { runDir, metrics, interrupted };
  } finally {
    progress?.stop();
    trainer.dispose();
    agent.dispose();
    await env.close();
  }
}

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
    .option('--name <name>', 'run name (default <env>-<core>-s<seed>)')
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
      const controller = new AbortController();
      const onSigint = () => {
        if (controller.signal.aborted) process.exit(130);
        console.error('\nInterrupted: finishing this update and writing a checkpoint (Ctrl-C again to quit now).');
        controller.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        const result = await runTraining(config, { resume, signal: controller.signal });
        const last = result.metrics.filter((m) => m.returnMean !== null).slice(-5);
        const ret = last.length ? (last.reduce((a, m) => a + (m.returnMean ?? 0), 0) / last.length).toFixed(3) : '-';
        console.log(
          result.interrupted
            ? `Stopped; checkpoint in ${checkpointDir(result.runDir)}. Continue with: hqlt train --resume ${result.runDir}`
            : `Done: mean return over the last updates ${ret}. Metrics in ${result.runDir}/metrics.csv; evaluate with: hqlt eval --run ${result.runDir}`,
        );
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
