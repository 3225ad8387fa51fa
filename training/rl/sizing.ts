/**
 * Up-front memory checks for `hqlt train`: a run far too large for the V8 heap, the machine or the wasm heap fails
 * at once with the limit it would hit and what to change, instead of dying minutes later with an out-of-memory
 * stack. The estimates are lower bounds (what the run certainly holds), so a run refused here could not have run.
 */
import { getHeapStatistics } from 'node:v8';
import { totalmem } from 'node:os';
import type { RecurrentAgent } from '../../agents/agent.js';
import type { TrainConfig } from './config.js';

/**
 * V8 heap held per in-process env, at the least. Measured 4–5 KiB for the registered envs (PassiveTMaze,
 * RepeatPrevious, MineSweeper, CountRecall: env objects, wrappers and observations); 1 KiB keeps it a lower bound.
 */
export const ENV_HEAP_BYTES = 1024;

/** tfjs-wasm's memory cannot grow past 4 GiB (wasm32); in practice it fails somewhat earlier. */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;

/** One thing that must fit: `fixed + perEnv · numEnvs` bytes within `limit`. */
export interface MemoryNeed {
  what: string;
  fixed: number;
  perEnv: number;
  limit: number;
  /** The limit, as the message names it ("the V8 heap limit"). */
  limitName: string;
  /** How to raise the limit, when it can be. */
  raise?: string;
}

/** The host memory a process may use: the machine's, or a container's cgroup limit when lower. */
function hostMemory(): number {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.() ?? 0;
  return constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
}

/** What a training run needs, given the agent (for its widths) and where tensors live. */
export function trainingNeeds(
  config: Pick<TrainConfig, 'numEnvs' | 'rollout' | 'seqLen' | 'minibatches'>,
  dims: { featureDim: number; actionDim: number; stateFloats: number },
  where: { localEnvs: boolean; backend: string },
): MemoryNeed[] {
  const { rollout: T, seqLen: L, minibatches: M } = config;
  const { featureDim: F, actionDim: A, stateFloats: S } = dims;
  const heap = getHeapStatistics();
  const host = hostMemory();
  // Rollout buffer (training/rl/rollout.ts): features, actions and 7 float32 columns, 2 uint8 ones, per env step.
  const buffer = T * ((F + A + 7) * 4 + 2);
  // Tensors: the carried state, the boundary states of a rollout (one per sequence, cloned, then joined), and one
  // minibatch's features.
  const tensors = 4 * (S * (2 * (T / L) + 2) + (T / M) * F);
  const needs: MemoryNeed[] = [];
  if (where.localEnvs) {
    needs.push({
      what: `the envs (at least ${ENV_HEAP_BYTES / 1024} KiB each)`,
      fixed: heap.used_heap_size,
      perEnv: ENV_HEAP_BYTES,
      limit: heap.heap_size_limit,
      limitName: 'the V8 heap limit',
      raise: 'NODE_OPTIONS=--max-old-space-size=<MiB>',
    });
  }
  const onHost = where.backend === 'cpu' || where.backend === 'tensorflow';
  needs.push({
    what: onHost ? 'the rollout buffers and tensors' : 'the rollout buffers',
    fixed: 0,
    perEnv: buffer + (onHost ? tensors : 0),
    limit: host,
    limitName: "this machine's memory",
  });
  if (where.backend === 'wasm') {
    needs.push({ what: 'the agent states and a minibatch', fixed: 0, perEnv: tensors, limit: WASM_HEAP_BYTES, limitName: 'the wasm heap maximum' });
  }
  return needs;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Throws one message listing every need that exceeds its limit, with the most envs that would fit. */
export function checkNeeds(needs: MemoryNeed[], numEnvs: number, sizes: string): void {
  const over = needs.filter((n) => n.fixed + n.perEnv * numEnvs > n.limit);
  if (over.length === 0) return;
  const lines = over.map(
    (n) =>
      `  - ${n.what} need at least ${formatBytes(n.fixed + n.perEnv * numEnvs)}, but ${n.limitName} is ${formatBytes(n.limit)}` +
      (n.raise ? ` (raise it with ${n.raise})` : ''),
  );
  const fixes: string[] = [];
  const envBound = over.filter((n) => n.fixed < n.limit);
  if (envBound.length) {
    const fit = Math.min(...envBound.map((n) => Math.floor((n.limit - n.fixed) / n.perEnv)));
    fixes.push(
      fit >= 1
        ? `Use fewer envs, or a shorter --rollout: --num-envs ${fit} is the most that could fit, and the real limit is lower.`
        : 'Not even one env fits: use a shorter --rollout.',
    );
  }
  if (envBound.length < over.length) {
    fixes.push('Use a machine with more memory.');
  }
  throw new Error(`${sizes} does not fit in memory:\n${lines.join('\n')}\n${fixes.join(' ')}`);
}

/** Checks a training run fits before any env or buffer is made (see `trainingNeeds`). */
export function checkTrainingFits(config: TrainConfig, agent: RecurrentAgent, where: { localEnvs: boolean; backend: string }): void {
  const state = agent.initialState(1);
  const stateFloats = Object.values(state).reduce((n, t) => n + t.size, 0);
  Object.values(state).forEach((t) => t.dispose());
  const dims = { featureDim: agent.encoder.dim, actionDim: agent.distribution.actionDim, stateFloats };
  const sizes = `--num-envs ${config.numEnvs} × --rollout ${config.rollout} (${config.steps.toLocaleString('en-US')} steps)`;
  checkNeeds(trainingNeeds(config, dims, where), config.numEnvs, sizes);
}
