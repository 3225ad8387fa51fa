/**
 * Training a PPO agent as a library call: `runTraining(config)` builds the vector env and agent a config describes,
 * trains with checkpoints, metrics and resume in `<out>/<name>/`, and frees everything it made. One process at a
 * time writes a run folder (`util/run-lock.ts`).
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { cleanStaleTemporaries, writeFileAtomicSync } from '../../util/files.js';
import { join, resolve, sep } from 'node:path';
import { RecurrentAgent } from '../../agents/agent.js';
import { SyncVectorEnv, type VectorEnv } from '../../envs/index.js';
import { isRemoteEnvId, makeRemoteVectorEnv } from '../../envs/remote/index.js';
import { initBackend } from '../../memory/backend.js';
import { deriveSeed } from '../../util/random.js';
import { createCore } from '../../memory/registry.js';
import { checkpointDir, loadCheckpoint, readCheckpointConfig, saveCheckpoint } from './checkpoint.js';
import { ppoSettings, stepsNote, totalUpdates, type TrainConfig } from './config.js';
import { METRIC_COLUMNS, MetricsLog, Progress } from '../metrics.js';
import { PpoTrainer, type UpdateMetrics } from './ppo.js';
import { lockRunDir } from '../../util/run-lock.js';
import { checkTrainingFits } from './sizing.js';

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

function makeAgent(config: TrainConfig, spaces: Pick<VectorEnv, 'singleObservationSpace' | 'singleActionSpace'>): RecurrentAgent {
  const core = createCore(config.core, deriveSeed(config.seed, 'core'));
  return new RecurrentAgent(core, spaces.singleObservationSpace, spaces.singleActionSpace, {
    seed: config.seed,
    previousAction: config.previousAction,
  });
}

/**
 * The vector env and agent a config describes (weights from the config's seed). `beforeEnvs` sees the agent before
 * the in-process envs are made (from one probe env's spaces), so a size check can refuse a run before it allocates.
 */
export async function buildAgent(
  config: TrainConfig,
  numEnvs = config.numEnvs,
  beforeEnvs?: (agent: RecurrentAgent) => void,
): Promise<BuiltAgent> {
  if (isRemoteEnvId(config.env)) {
    const env = await makeVectorEnv(config, numEnvs);
    const agent = makeAgent(config, env);
    try {
      beforeEnvs?.(agent);
    } catch (err) {
      agent.dispose();
      await env.close();
      throw err;
    }
    return { agent, env };
  }
  const probe = new SyncVectorEnv({ id: config.env, kwargs: config.envKwargs, numEnvs: 1 });
  const agent = makeAgent(config, probe);
  await probe.close();
  try {
    beforeEnvs?.(agent);
    return { agent, env: await makeVectorEnv(config, numEnvs) };
  } catch (err) {
    agent.dispose();
    throw err;
  }
}

/** `<out>/<name>`, checked to lie inside `out` (the config schema already refuses names with separators). */
export function runDirOf(config: Pick<TrainConfig, 'out' | 'name'>): string {
  const runDir = join(config.out, config.name);
  if (!resolve(runDir).startsWith(resolve(config.out) + sep)) {
    throw new Error(`The run name '${config.name}' would put the run outside ${config.out}: give a plain name.`);
  }
  return runDir;
}

export interface TrainOptions {
  /** Continue the run in this folder from its checkpoint (the config comes from the checkpoint). */
  resume?: boolean;
  /** Aborting finishes the current update, writes a checkpoint and returns (Ctrl-C, SIGTERM). */
  signal?: AbortSignal;
  /** Called after every update (tests use it to simulate a crash by throwing). */
  onUpdate?: (m: UpdateMetrics) => void | Promise<void>;
  /** Called after every checkpoint is written, with its update (e.g. to publish it for other machines). */
  onCheckpoint?: (update: number) => void | Promise<void>;
  /** Progress display: 'auto' (bar on a TTY, lines otherwise), or 'none'. */
  progress?: 'auto' | 'none';
}

export interface TrainResult {
  runDir: string;
  metrics: UpdateMetrics[];
  interrupted: boolean;
}

/**
 * Takes the run folder's lock (one writer per run), removes temporaries a killed run left there, and refuses to
 * start afresh over an existing run. Returns the lock; a folder this call made is removed again on failure.
 */
async function openRunDir(runDir: string, resume: boolean, signal?: AbortSignal): Promise<{ release(): void }> {
  const created = !existsSync(runDir);
  mkdirSync(runDir, { recursive: true });
  const lock = await lockRunDir(runDir, signal);
  try {
    const removed = cleanStaleTemporaries(runDir);
    if (removed.length) console.warn(`Note: removed ${removed.join(', ')} from ${runDir}: left by a run killed mid-write.`);
    if (!resume && existsSync(checkpointDir(runDir))) {
      throw new Error(`${runDir} already holds a run. Continue it with --resume ${runDir}, or pick another --name.`);
    }
  } catch (err) {
    lock.release();
    throw err;
  }
  return {
    release() {
      lock.release();
      // A run that failed before writing anything leaves no folder behind.
      if (created && readdirSync(runDir).length === 0) rmdirSync(runDir);
    },
  };
}

/** Trains per `config` (see `TrainOptions`); returns the run folder and this invocation's metrics. */
export async function runTraining(config: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const backend = await initBackend(config.backend, config.precision);
  const runDir = runDirOf(config);
  const run = await openRunDir(runDir, opts.resume ?? false, opts.signal);
  let built: BuiltAgent;
  try {
    const where = { localEnvs: !isRemoteEnvId(config.env), backend: backend.active };
    built = await buildAgent(config, config.numEnvs, (agent) => checkTrainingFits(config, agent, where));
  } catch (err) {
    run.release();
    throw err;
  }
  const { agent, env } = built;
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
      writeFileAtomicSync(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
      await trainer.start(config.seed);
    }
    const resumedAt = trainer.update;
    const log = new MetricsLog<UpdateMetrics>(runDir, {
      columns: METRIC_COLUMNS,
      keep: opts.resume ? (m) => m.update <= resumedAt : undefined,
    });
    const save = async () => {
      await saveCheckpoint(runDir, agent, await trainer.snapshot(), config, backend.active);
      await opts.onCheckpoint?.(trainer.update);
    };
    const totalSteps = total * config.numEnvs * config.rollout;
    if (opts.progress !== 'none' && trainer.update < total) {
      const note = stepsNote(config);
      if (note) console.warn(note);
      progress = new Progress(totalSteps, trainer.globalStep);
    }
    let interrupted = false;
    try {
      while (trainer.update < total) {
        const m = await trainer.iterate();
        metrics.push(m);
        log.append(m);
        progress?.update(m);
        await opts.onUpdate?.(m);
        if (opts.signal?.aborted && trainer.update < total) {
          interrupted = true;
          break;
        }
        if (config.checkpointEvery > 0 && trainer.update % config.checkpointEvery === 0 && trainer.update < total) await save();
      }
      await save();
    } catch (err) {
      throw withResumeHint(err, runDir);
    }
    progress?.stop();
    return { runDir, metrics, interrupted };
  } finally {
    progress?.stop();
    trainer.dispose();
    agent.dispose();
    await env.close();
    run.release();
  }
}

/** A training failure, plus how to continue from the last checkpoint when there is one. */
function withResumeHint(err: unknown, runDir: string): unknown {
  if (!(err instanceof Error) || !existsSync(checkpointDir(runDir))) return err;
  const { update } = readCheckpointConfig(runDir);
  const hint = `The checkpoint of update ${update} in ${checkpointDir(runDir)} is intact: once the cause is fixed, continue with: hqlt train --resume ${runDir}`;
  return Object.assign(new Error(`${err.message}\n${hint}`, { cause: err }), { code: (err as NodeJS.ErrnoException).code });
}

/** The mean return of a run's last updates that finished episodes, in words. */
export function returnSummary(metrics: UpdateMetrics[]): string {
  const last = metrics.filter((m) => m.returnMean !== null).slice(-5);
  if (last.length === 0) return 'no episode has finished yet';
  const mean = last.reduce((a, m) => a + (m.returnMean ?? 0), 0) / last.length;
  return `mean return over the last ${last.length} update${last.length === 1 ? '' : 's'} with finished episodes ${mean.toFixed(3)}`;
}

