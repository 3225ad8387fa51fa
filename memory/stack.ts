/**
 * A memory core made of L residual blocks around any mixer layer:
 *   x ← x + mixer(RMSNorm(x));  x ← x + W_down(SiLU(W_gate h) ⊙ W_up h) with h = RMSNorm(x);  y = RMSNorm(x).
 * Either half of a block may be absent (an `mlp` core has no mixer; `mlp: false` drops the MLP). The block sees
 * episode starts only through its mixer; the MLP has no memory. Layer states nest under `layers.{i}.`.
 */
import * as tf from '@tensorflow/tfjs';
import type { CoreConfig, ForwardResult, Introspection, MemoryCore, MixerLayer, NamedWeight, State, StepOptions, StepResult } from './core.js';
import { linear, rmsNorm } from './ops.js';
import { makeRng, deriveSeed } from '../util/random.js';
import { fusedKernelsActive } from './webgpu/index.js';
import { fusedSwiGlu } from './webgpu/rowwise.js';
import { prefixState, subState } from './state.js';
import { constantVariable, linearWeight, prefixWeights } from './weights.js';

/** The MLP hidden width used when none is given: 8·D/3 (a 4·D MLP's parameter count with gating), rounded up to 8. */
export function defaultMlpHidden(dim: number): number {
  return Math.ceil((dim * 8) / 3 / 8) * 8;
}

export interface StackOptions {
  dim: number;
  layers: number;
  /** Builds layer i's mixer from its own seeded generator; absent for a core without token mixing. */
  mixer?: (layer: number, rng: () => number) => MixerLayer;
  /** MLP hidden width, or 0 for no MLP. */
  mlpHidden: number;
}

interface Block {
  prefix: string;
  mixer?: { norm: tf.Variable; layer: MixerLayer };
  mlp?: { norm: tf.Variable; gate: tf.Variable; up: tf.Variable; down: tf.Variable };
  weights: NamedWeight[];
}

/** See the module comment. */
export class StackedCore implements MemoryCore {
  readonly dim: number;
  private readonly blocks: Block[];
  private readonly norm: tf.Variable;
  private readonly stateKeys: string[];

  constructor(
    readonly config: CoreConfig,
    options: StackOptions,
    seed: number | string,
  ) {
    const { dim, layers, mixer, mlpHidden } = options;
    if (!mixer && mlpHidden <= 0) throw new Error('A stacked core needs a mixer, an MLP, or both in each block.');
    this.dim = dim;
    this.blocks = [];
    for (let i = 0; i < layers; i++) {
      const prefix = `layers.${i}.`;
      // Each component draws from its own seeded stream, so e.g. toggling the MLP leaves mixer weights unchanged.
      const block: Block = { prefix, weights: [] };
      if (mixer) {
        const layer = mixer(i, makeRng(deriveSeed(seed, `${prefix}attn`)));
        if (layer.dim !== dim) throw new Error(`Layer ${i}'s mixer has width ${layer.dim}, expected ${dim}.`);
        const norm = constantVariable([dim], 1);
        block.mixer = { norm, layer };
        block.weights.push(
          { name: `${prefix}attn_norm.weight`, variable: norm, transposed: false },
          ...prefixWeights(layer.namedWeights(), `${prefix}attn.`),
        );
      }
      if (mlpHidden > 0) {
        const rng = makeRng(deriveSeed(seed, `${prefix}mlp`));
        const norm = constantVariable([dim], 1);
        const gate = linearWeight(`${prefix}mlp.gate_proj.weight`, dim, mlpHidden, rng);
        const up = linearWeight(`${prefix}mlp.up_proj.weight`, dim, mlpHidden, rng);
        const down = linearWeight(`${prefix}mlp.down_proj.weight`, mlpHidden, dim, rng);
        block.mlp = { norm, gate: gate.variable, up: up.variable, down: down.variable };
        block.weights.push({ name: `${prefix}mlp_norm.weight`, variable: norm, transposed: false }, gate, up, down);
      }
      this.blocks.push(block);
    }
    this.norm = constantVariable([dim], 1);
    const probe = this.initialState(1);
    this.stateKeys = Object.keys(probe).sort();
    for (const t of Object.values(probe)) t.dispose();
  }

  initialState(batch: number): State {
    const state: State = {};
    for (const b of this.blocks) if (b.mixer) Object.assign(state, prefixState(b.mixer.layer.initialState(batch), b.prefix));
    return state;
  }

  private checkState(state: State, batch: number): void {
    const keys = Object.keys(state).sort();
    if (keys.join(',') !== this.stateKeys.join(',')) {
      throw new Error(
        `State keys [${keys.join(', ')}] do not match this ${this.config.type} core's [${this.stateKeys.join(', ')}]; ` +
          'start from core.initialState(batch).',
      );
    }
    for (const [key, t] of Object.entries(state)) {
      if (t.shape[0] !== batch) throw new Error(`State '${key}' has batch ${t.shape[0]} but the input has ${batch}.`);
    }
  }

  private checkInput(x: tf.Tensor, episodeStart: tf.Tensor, rank: number): void {
    if (x.rank !== rank || x.shape[rank - 1] !== this.dim) {
      throw new Error(`Input has shape [${x.shape.join(', ')}]; expected rank ${rank} with last axis ${this.dim}.`);
    }
    if (episodeStart.shape.join(',') !== x.shape.slice(0, -1).join(',')) {
      throw new Error(
        `episodeStart has shape [${episodeStart.shape.join(', ')}]; expected [${x.shape.slice(0, -1).join(', ')}].`,
      );
    }
  }

  /** Runs the blocks; `run` is the mixer's step or forward, so both forms share one definition. */
  private apply<X extends tf.Tensor2D | tf.Tensor3D>(
    x: X,
    state: State,
    run: (layer: MixerLayer, h: X, s: State) => { out: X; state: State; introspection?: Introspection },
  ): { out: X; state: State; introspection: Introspection } {
    const next: State = {};
    const introspection: Introspection = {};
    for (const b of this.blocks) {
      if (b.mixer) {
        const r = run(b.mixer.layer, rmsNorm(x, b.mixer.norm as tf.Tensor1D) as X, subState(state, b.prefix));
        x = tf.add(x, r.out);
        Object.assign(next, prefixState(r.state, b.prefix));
        if (r.introspection) Object.assign(introspection, prefixState(r.introspection, b.prefix));
      }
      if (b.mlp) {
        const h = rmsNorm(x, b.mlp.norm as tf.Tensor1D);
        const g = linear(h, b.mlp.gate as tf.Tensor2D);
        const up = linear(h, b.mlp.up as tf.Tensor2D);
        const hidden = fusedKernelsActive() ? fusedSwiGlu(g, up) : tf.mul(tf.mul(g, tf.sigmoid(g)), up); // SiLU(g) ⊙ up
        x = tf.add(x, linear(hidden, b.mlp.down as tf.Tensor2D));
      }
    }
    return { out: rmsNorm(x, this.norm as tf.Tensor1D) as X, state: next, introspection };
  }

  step(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D, options: StepOptions = {}): StepResult {
    this.checkInput(x, episodeStart, 2);
    this.checkState(state, x.shape[0]);
    return tf.tidy(() => {
      const r = this.apply(x, state, (layer, h, s) => {
        const o = layer.step(h, s, episodeStart, options);
        return { out: o.y, state: o.state, introspection: o.introspection };
      });
      return options.introspect ? { y: r.out, state: r.state, introspection: r.introspection } : { y: r.out, state: r.state };
    });
  }

  forward(xs: tf.Tensor3D, state: State, episodeStart: tf.Tensor2D): ForwardResult {
    this.checkInput(xs, episodeStart, 3);
    this.checkState(state, xs.shape[0]);
    if (xs.shape[1] < 1) throw new Error('forward needs at least one time step.');
    return tf.tidy(() => {
      const r = this.apply(xs, state, (layer, h, s) => {
        const o = layer.forward(h, s, episodeStart);
        return { out: o.ys, state: o.state };
      });
      return { ys: r.out, state: r.state };
    });
  }

  trainableVariables(): tf.Variable[] {
    return this.namedWeights().map((w) => w.variable);
  }

  namedWeights(): NamedWeight[] {
    return [...this.blocks.flatMap((b) => b.weights), { name: 'norm.weight', variable: this.norm, transposed: false }];
  }

  dispose(): void {
    for (const b of this.blocks) {
      b.mixer?.layer.dispose();
      for (const w of b.weights) if (!w.name.startsWith(`${b.prefix}attn.`)) w.variable.dispose();
    }
    this.norm.dispose();
  }
}
