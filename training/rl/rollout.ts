/**
 * The rollout buffer of N streams × T steps, GAE(λ), and minibatches of whole sequences for truncated BPTT.
 *
 * Autoreset (Gymnasium 1.x `next-step` mode): the step after an episode ends is a *reset step*: the env ignores
 * its action, returns reward 0 and the first observation of the next episode. We keep reset steps in the buffer so
 * every stream stays a regular [T] sequence, but mark them invalid (`valid = 0`): they get no advantage and are
 * masked out of every loss term. The reset step's value is V(final observation) computed with the memory state at
 * that point, which is exactly the bootstrap a truncated episode needs (and `lastValues` plays that role when an
 * episode ends on the rollout's last step).
 *
 * Layout: stream-major, index (n·T + t), so the L steps of a sequence are contiguous.
 */
import type { State } from '../../memory/core.js';
import { concatStates, disposeState, sliceState } from '../../memory/state.js';

export interface RolloutBuffer {
  numEnvs: number;
  steps: number;
  featureDim: number;
  actionDim: number;
  /** [N·T·featureDim] */
  features: Float32Array;
  /** [N·T·actionDim] */
  actions: Float32Array;
  logProbs: Float32Array;
  values: Float32Array;
  rewards: Float32Array;
  /** 1 where obs_t is the first observation of an episode (resets that stream's state before step t). */
  episodeStart: Float32Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  /** 0 for reset steps (see the module comment), 1 for real steps. */
  valid: Float32Array;
  /** [N] V of the observation after the last step, with the state at that point. */
  lastValues: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

export function createBuffer(numEnvs: number, steps: number, featureDim: number, actionDim: number): RolloutBuffer {
  const n = numEnvs * steps;
  return {
    numEnvs,
    steps,
    featureDim,
    actionDim,
    features: new Float32Array(n * featureDim),
    actions: new Float32Array(n * actionDim),
    logProbs: new Float32Array(n),
    values: new Float32Array(n),
    rewards: new Float32Array(n),
    episodeStart: new Float32Array(n),
    terminated: new Uint8Array(n),
    truncated: new Uint8Array(n),
    valid: new Float32Array(n),
    lastValues: new Float32Array(numEnvs),
    advantages: new Float32Array(n),
    returns: new Float32Array(n),
  };
}

/** What GAE reads: per-step arrays in the buffer's stream-major layout. */
export type GaeInput = Pick<
  RolloutBuffer,
  'numEnvs' | 'steps' | 'rewards' | 'values' | 'terminated' | 'truncated' | 'valid' | 'lastValues'
>;

/**
 * GAE(λ) per stream, backwards in time. Termination: no bootstrap. Truncation: bootstrap from the next value
 * (V(final obs), see the module comment) but stop the λ-chain. Reset steps: advantage 0 and the chain restarts.
 * Returns = advantages + values (0 on reset steps).
 */
export function computeGae(b: GaeInput, gamma: number, lambda: number): { advantages: Float32Array; returns: Float32Array } {
  const { numEnvs: N, steps: T } = b;
  const advantages = new Float32Array(N * T);
  const returns = new Float32Array(N * T);
  for (let n = 0; n < N; n++) {
    let gae = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = n * T + t;
      if (!b.valid[i]) {
        gae = 0;
        continue;
      }
      const nextValue = t + 1 < T ? b.values[i + 1] : b.lastValues[n];
      if (b.terminated[i]) gae = b.rewards[i] - b.values[i];
      else if (b.truncated[i]) gae = b.rewards[i] + gamma * nextValue - b.values[i];
      else gae = b.rewards[i] + gamma * nextValue - b.values[i] + gamma * lambda * gae;
      advantages[i] = gae;
      returns[i] = gae + b.values[i];
    }
  }
  return { advantages, returns };
}

/**
 * Splits N streams × T steps into sequences of L steps (sequence s = chunk c of stream n with s = c·N + n, so
 * its initial state is row s of the chunk-major stored states) and deals them, shuffled, into `minibatches`
 * groups of near-equal size. Every sequence appears in exactly one group.
 */
export function sequenceMinibatches(
  numEnvs: number,
  steps: number,
  seqLen: number,
  minibatches: number,
  rng: () => number,
): number[][] {
  const count = numEnvs * (steps / seqLen);
  const ids = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const swap = ids[i]!; // not a destructuring swap: that allocates an array per step
    ids[i] = ids[j]!;
    ids[j] = swap;
  }
  const groups: number[][] = [];
  for (let m = 0; m < minibatches; m++) {
    groups.push(ids.slice(Math.floor((m * count) / minibatches), Math.floor(((m + 1) * count) / minibatches)));
  }
  return groups;
}

/** Checks the rollout shape settings, with a message that says how to fix them. */
export function checkSequenceSettings(numEnvs: number, steps: number, seqLen: number, minibatches: number): void {
  if (seqLen > steps || steps % seqLen !== 0) {
    throw new Error(`'seqLen' (${seqLen}) must divide 'rollout' (${steps}); e.g. use --seq-len ${steps}.`);
  }
  const sequences = numEnvs * (steps / seqLen);
  if (minibatches > sequences) {
    throw new Error(`'minibatches' (${minibatches}) exceeds the ${sequences} sequences per rollout (numEnvs × rollout / seqLen).`);
  }
}

/** One minibatch gathered from the buffer: rows [B, L, ...] plus the per-step loss inputs. */
export interface Minibatch {
  batch: number;
  length: number;
  features: Float32Array;
  actions: Float32Array;
  episodeStart: Float32Array;
  oldLogProbs: Float32Array;
  oldValues: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
  valid: Float32Array;
  /** Initial state per sequence (the caller disposes it). */
  state: State;
}

/**
 * Gathers sequences `ids` (see `sequenceMinibatches`) with their stored initial states. `states` holds the
 * states at the sequence boundaries, chunk-major: row c·N + n is stream n at step c·L. Advantages are normalised
 * over the minibatch's valid steps when `normalize` is set.
 */
export function gatherMinibatch(
  buf: RolloutBuffer,
  seqLen: number,
  ids: number[],
  states: State,
  normalize: boolean,
): Minibatch {
  const { numEnvs: N, steps: T, featureDim: F, actionDim: A } = buf;
  const L = seqLen;
  const B = ids.length;
  const mb: Minibatch = {
    batch: B,
    length: L,
    features: new Float32Array(B * L * F),
    actions: new Float32Array(B * L * A),
    episodeStart: new Float32Array(B * L),
    oldLogProbs: new Float32Array(B * L),
    oldValues: new Float32Array(B * L),
    advantages: new Float32Array(B * L),
    returns: new Float32Array(B * L),
    valid: new Float32Array(B * L),
    state: sliceState(states, ids),
  };
  // First row of each sequence in the buffer, then one array at a time: a monomorphic copy loop per array runs
  // several times faster than a loop over sequences that switches arrays (profiled at 4,096 envs).
  const starts = Int32Array.from(ids, (s) => (s % N) * T + Math.floor(s / N) * L);
  const perStep = [
    [buf.features, mb.features, F],
    [buf.actions, mb.actions, A],
    [buf.episodeStart, mb.episodeStart, 1],
    [buf.advantages, mb.advantages, 1],
    [buf.returns, mb.returns, 1],
    [buf.valid, mb.valid, 1],
    [buf.logProbs, mb.oldLogProbs, 1],
    [buf.values, mb.oldValues, 1],
  ] as const;
  for (const [from, to, width] of perStep) gatherSequences(from, to, width, starts, L);
  if (normalize) normalizeMasked(mb.advantages, mb.valid);
  return mb;
}

/**
 * Copies `rows` rows of `width` values from row `srcRow` of `src` to row `dstRow` of `dst`. A plain loop: PPO
 * copies thousands of short rows per step, where a `subarray` view per row cost more than the copy.
 */
export function copyRows(src: Float32Array, srcRow: number, dst: Float32Array, dstRow: number, rows: number, width: number): void {
  const from = srcRow * width;
  const to = dstRow * width;
  const n = rows * width;
  for (let i = 0; i < n; i++) dst[to + i] = src[from + i]!;
}

/** Sequence b of `dst` = rows starts[b] … starts[b] + length − 1 of `src` (rows of `width` values). */
function gatherSequences(src: Float32Array, dst: Float32Array, width: number, starts: Int32Array, length: number): void {
  for (let b = 0; b < starts.length; b++) copyRows(src, starts[b]!, dst, b * length, length, width);
}

/** (x − mean) / (std + 1e-8) over the entries where mask is 1; masked entries become 0. */
export function normalizeMasked(x: Float32Array, mask: Float32Array): void {
  let count = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) (count++, (sum += x[i]));
  if (count === 0) return;
  const mean = sum / count;
  let sq = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) sq += (x[i] - mean) ** 2;
  // Unbiased std, as torch's `.std()` in CleanRL.
  const std = Math.sqrt(count > 1 ? sq / (count - 1) : 0);
  for (let i = 0; i < x.length; i++) x[i] = mask[i] ? (x[i] - mean) / (std + 1e-8) : 0;
}

/** Joins the per-chunk boundary states into one chunk-major state (rows c·N + n) and frees the parts. */
export function joinBoundaryStates(states: State[]): State {
  const joined = concatStates(states);
  for (const s of states) disposeState(s);
  return joined;
}
