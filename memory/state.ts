/**
 * Generic helpers over memory states (`State`: named tensors with the batch as their first axis).
 *
 * Cores made of several layers nest their layers' states by key prefix (`layers.0.W`), so every state stays a
 * flat record and these helpers work on any core without knowing its layout. An empty state `{}` (a core with
 * no memory, such as `mlp`) is valid everywhere.
 */
import * as tf from '@tensorflow/tfjs';
import type { State } from './core.js';

function mapState(state: State, fn: (t: tf.Tensor) => tf.Tensor): State {
  const out: State = {};
  for (const [key, t] of Object.entries(state)) out[key] = fn(t);
  return out;
}

/**
 * The streams of `state` at `indices` (a list of batch rows), or the `size` rows from `start` when given two
 * numbers. The result holds new tensors; the input is untouched.
 */
export function sliceState(state: State, indices: number[]): State;
export function sliceState(state: State, start: number, size: number): State;
export function sliceState(state: State, indicesOrStart: number[] | number, size?: number): State {
  if (Array.isArray(indicesOrStart)) {
    const indices = indicesOrStart;
    return tf.tidy(() => {
      const idx = tf.tensor1d(indices, 'int32');
      return mapState(state, (t) => tf.gather(t, idx, 0));
    });
  }
  if (size === undefined) throw new Error('sliceState(state, start, size): size is missing.');
  const start = indicesOrStart;
  const batch = stateBatchSize(state);
  if (batch !== undefined && (start < 0 || size < 0 || start + size > batch)) {
    throw new Error(`sliceState: rows ${start}..${start + size - 1} are out of range for batch ${batch}.`);
  }
  return mapState(state, (t) => tf.slice(t, [start, ...t.shape.slice(1).map(() => 0)], [size, ...t.shape.slice(1)]));
}

/** Joins states along the batch axis (stream order as given). All states must have the same keys. */
export function concatStates(states: State[]): State {
  if (states.length === 0) throw new Error('concatStates needs at least one state.');
  const keys = Object.keys(states[0]).sort();
  for (const s of states) {
    const other = Object.keys(s).sort();
    if (other.join(',') !== keys.join(',')) {
      throw new Error(`concatStates: states have different keys ([${keys.join(', ')}] vs [${other.join(', ')}]).`);
    }
  }
  const out: State = {};
  for (const key of keys) out[key] = tf.concat(states.map((s) => s[key]), 0);
  return out;
}

/** Disposes every tensor of a state. */
export function disposeState(state: State): void {
  for (const t of Object.values(state)) t.dispose();
}

/** Marks every tensor of a state to survive the enclosing `tf.tidy`; returns the same state. */
export function keepState(state: State): State {
  for (const t of Object.values(state)) tf.keep(t);
  return state;
}

/** A copy of a state that can be disposed independently of the original. */
export function cloneState(state: State): State {
  return mapState(state, (t) => tf.clone(t));
}

/**
 * Zeroes the streams whose `episodeStart` flag is 1 (float 0/1 tensor [B]); other streams are untouched.
 * Multiplying by (1 − flag) keeps it differentiable and works for any tensor rank.
 */
export function resetStreams(state: State, episodeStart: tf.Tensor1D): State {
  return tf.tidy(() => {
    const keep = tf.sub(1, episodeStart);
    return mapState(state, (t) => tf.mul(t, tf.reshape(keep, [t.shape[0], ...t.shape.slice(1).map(() => 1)])));
  });
}

/** Nests a layer's state under `prefix` (e.g. `layers.0.`) so several layers share one flat record. */
export function prefixState(state: State, prefix: string): State {
  const out: State = {};
  for (const [key, t] of Object.entries(state)) out[prefix + key] = t;
  return out;
}

/** The part of a nested state under `prefix`, with the prefix removed (same tensors, not copies). */
export function subState(state: State, prefix: string): State {
  const out: State = {};
  for (const [key, t] of Object.entries(state)) if (key.startsWith(prefix)) out[key.slice(prefix.length)] = t;
  return out;
}

/** Number of streams in a state, or undefined for an empty state. */
export function stateBatchSize(state: State): number | undefined {
  const first = Object.values(state)[0];
  return first?.shape[0];
}
