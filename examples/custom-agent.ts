/**
 * Plugging your own memory core into a PPO agent.
 *
 * `LeakyCore` is a custom `MemoryCore` (a leaky integrator: h ← decay·h + (1 − decay)·tanh(x·W)); any object with
 * the `MemoryCore` methods works the same way, as do the built-in cores from `createCore`. `RecurrentAgent` adds
 * the observation encoder, previous-action input and actor/critic heads; `PpoTrainer` trains it on a vector env.
 *
 * Run: `npx vitest run test/agent-example.test.ts`, which runs `main` with a small budget and checks it learns.
 */
import * as tf from '@tensorflow/tfjs';
import {
  initBackend,
  linearWeight,
  makeRng,
  parseTrainConfig,
  ppoSettings,
  PpoTrainer,
  RecurrentAgent,
  SyncVectorEnv,
  type CoreConfig,
  type CoreStepResult,
  type ForwardResult,
  type MemoryCore,
  type NamedWeight,
  type State,
  type UpdateMetrics,
} from 'hqlt';

/** h ← decay·(1 − start)·h + (1 − decay)·tanh(x·W); y = h. */
export class LeakyCore implements MemoryCore {
  readonly config: CoreConfig;
  private readonly w: NamedWeight;

  constructor(
    readonly dim: number,
    readonly decay: number,
    seed: string,
  ) {
    this.config = { type: 'leaky', dim, decay };
    this.w = linearWeight('in_proj.weight', dim, dim, makeRng(seed));
  }
  initialState(batch: number): State {
    return { h: tf.zeros([batch, this.dim]) };
  }
  step(x: tf.Tensor2D, state: State, episodeStart: tf.Tensor1D): CoreStepResult {
    return tf.tidy(() => {
      const keep = tf.mul(tf.sub(1, tf.expandDims(episodeStart, 1)), this.decay);
      const h = tf.add(tf.mul(state.h, keep), tf.mul(tf.tanh(tf.matMul(x, this.w.variable)), 1 - this.decay));
      return { y: h as tf.Tensor2D, state: { h: tf.clone(h) } };
    });
  }
  forward(xs: tf.Tensor3D, state: State, episodeStart: tf.Tensor2D): ForwardResult {
    return tf.tidy(() => {
      const ys: tf.Tensor2D[] = [];
      let h = state.h;
      for (let t = 0; t < xs.shape[1]; t++) {
        const x = tf.reshape(tf.slice(xs, [0, t, 0], [-1, 1, -1]), [xs.shape[0], this.dim]) as tf.Tensor2D;
        const s = tf.reshape(tf.slice(episodeStart, [0, t], [-1, 1]), [-1]) as tf.Tensor1D;
        h = this.step(x, { h }, s).y;
        ys.push(h as tf.Tensor2D);
      }
      return { ys: tf.stack(ys, 1) as tf.Tensor3D, state: { h } };
    });
  }
  trainableVariables(): tf.Variable[] {
    return [this.w.variable];
  }
  namedWeights(): NamedWeight[] {
    return [this.w];
  }
  dispose(): void {
    this.w.variable.dispose();
  }
}

/** Trains a LeakyCore agent on the short passive T-maze; returns each update's metrics. */
export async function main(opts: { updates?: number; log?: boolean } = {}): Promise<UpdateMetrics[]> {
  await initBackend();
  const env = new SyncVectorEnv({ id: 'PassiveTMazeShort-v0', numEnvs: 8 });
  const core = new LeakyCore(32, 0.5, 'example-core');
  const agent = new RecurrentAgent(core, env.singleObservationSpace, env.singleActionSpace, { seed: 1 });
  const updates = opts.updates ?? 40;
  // PPO settings: the `hqlt train` defaults, resized; any TrainConfig field can be set here.
  const settings = ppoSettings(parseTrainConfig({ numEnvs: 8, rollout: 32, seqLen: 8, lr: 3e-3, steps: updates * 8 * 32 }));
  const trainer = new PpoTrainer(agent, env, settings, 1);
  await trainer.start(1);
  const metrics: UpdateMetrics[] = [];
  for (let k = 0; k < updates; k++) {
    const m = await trainer.iterate();
    metrics.push(m);
    if (opts.log !== false) console.log(`update ${m.update}: return ${m.returnMean?.toFixed(3) ?? '-'}`);
  }
  trainer.dispose();
  agent.dispose();
  await env.close();
  return metrics;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
