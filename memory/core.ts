/**
 * The interface every memory core implements (HQLT and the baselines), so agents and benchmarks swap them by name.
 *
 * Conventions: inputs and outputs have width `dim`. A state is a plain object of tensors whose first axis is the
 * batch (one row per stream), so it can be stored, sliced per stream, concatenated and disposed generically
 * (see `memory/state.ts`). `episodeStart` is a float tensor of 0/1 flags: a 1 zeroes that stream's state before
 * the step it marks. Cores never dispose inputs they are given; callers own them.
 */
import type * as tf from '@tensorflow/tfjs';

/** A memory state: named tensors, each with the batch as its first axis. */
export type State = Record<string, tf.Tensor>;

/** One named weight in the PyTorch layout of `HQLT-SPEC.md` (nn.Linear: [out, in]). */
export interface NamedWeight {
  /** Spec name, e.g. `layers.0.attn.q_proj.weight`. */
  name: string;
  /** The variable that holds it (its own layout may differ, see `transposed`). */
  variable: tf.Variable;
  /** True when the variable is stored as [in, out] and must be transposed to and from the PyTorch layout. */
  transposed: boolean;
}

export interface StepResult {
  /** [B, dim] */
  y: tf.Tensor2D;
  state: State;
  /** The layer internals asked for with `introspect` (see `Introspection`); absent otherwise. The caller owns them. */
  introspection?: Introspection;
}

/** Options of a step; leaving them out costs nothing. */
export interface StepOptions {
  /** Also return the memory's internals of this step (viewers, tests): extra tensors, so off when acting. */
  introspect?: boolean;
}

/**
 * Internals of one step, by name, each with the batch as its first axis; a stacked core nests each layer's under
 * `layers.{i}.`. The HQLT layer reports (where it has them):
 * - `attention` [B, H, S]: KV-memory softmax weights over the window slots, oldest first (slot i holds the step
 *   S - 1 - i back); rows sum to 1 and slots before the episode start (or outside the chunk) are 0;
 * - `gate` [B, H, V]: vector mixing's γ (FW-memory's share of each value channel), in (0, 1);
 * - `alpha` [B, H, 2]: scalar mixing's [α^FW, α^KV] per head, in (0, 1);
 * - `beta` [B, H]: the write strength β;
 * - `fwUpdate` [B, H]: the Frobenius norm of this step's write into the FW-memory (W' − W).
 */
export type Introspection = Record<string, tf.Tensor>;

export interface ForwardResult {
  /** [B, T, dim] */
  ys: tf.Tensor3D;
  state: State;
}

/** A recurrent memory core: step form for acting, sequence form for training. */
export interface MemoryCore {
  /** Input and output width. */
  readonly dim: number;
  /** The JSON-able config that created it (see `memory/registry.ts`). */
  readonly config: CoreConfig;
  /** Zero state for `batch` streams. */
  initialState(batch: number): State;
  /** One step for B streams: x [B, dim], episodeStart [B]. */
  step(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D, options?: StepOptions): StepResult;
  /** A sequence: xs [B, T, dim], episodeStart [B, T]; equal to T calls of `step`. Differentiable. */
  forward(xs: tf.Tensor3D, state: State, episodeStart: tf.Tensor2D): ForwardResult;
  /** All trainable variables. */
  trainableVariables(): tf.Variable[];
  /** The weights with their spec names, in a stable order. */
  namedWeights(): NamedWeight[];
  /** Frees the variables. */
  dispose(): void;
}

/** JSON-able description of a core; `type` picks the implementation. Fields are validated by the registry. */
export interface CoreConfig {
  type: string;
  [key: string]: unknown;
}

/**
 * A token-mixing layer inside a core's block (the HQLT layer, attention baselines, recurrent cells): the same
 * step/sequence contract as a core, with weights named relative to the layer (`q_proj.weight`, ...).
 */
export interface MixerLayer {
  readonly dim: number;
  initialState(batch: number): State;
  step(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D, options?: StepOptions): StepResult;
  forward(xs: tf.Tensor3D, state: State, episodeStart: tf.Tensor2D): ForwardResult;
  namedWeights(): NamedWeight[];
  dispose(): void;
}
