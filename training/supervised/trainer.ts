/**
 * Memory cores as plain supervised sequence models: token embedding → core → linear head, trained with
 * cross-entropy on the positions that carry a label (see `training/supervised/tasks/`).
 *
 * Batches of unequal lengths are padded at the end: cores are causal (their sequence form equals stepping), so
 * padding never changes an earlier position's output, and padded positions carry no label. Evaluation sorts
 * samples by length and batches neighbours, so little padding is computed.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { MemoryCore, NamedWeight } from '../../memory/core.js';
import { linear, oneHotFloat } from '../../memory/ops.js';
import { deriveSeed, makeRng, type Rng } from '../../util/random.js';
import { createCore, resolveCoreConfig } from '../../memory/registry.js';
import { encodeSafetensors, readSafetensors, type FloatTensor } from '../../util/safetensors.js';
import { disposeState } from '../../memory/state.js';
import { importWeights, linearWeight, normalVariable, uniformVariable, weightsToTensors } from '../../memory/weights.js';
import { cleanStaleTemporaries, recoverFolder, writeFileAtomic, writeFolderAtomicSync } from '../../util/files.js';
import { yieldToEventLoop } from '../../util/interrupt.js';
import { MetricsLog } from '../metrics.js';
import { Adam, globalNormScale } from '../optim.js';
import { lockRunDir, type RunLock } from '../../util/run-lock.js';
import { makeTask, NO_LABEL, TASK_NAMES, type Sample, type SequenceTask } from './tasks/index.js';


/** A core wrapped with an input embedding and an output head. */
export class SequenceModel {
  /** [vocab, dim] (nn.Embedding layout) */
  private readonly embedding: tf.Variable;
  private readonly head: NamedWeight;
  private readonly bias: tf.Variable;

  constructor(
    readonly core: MemoryCore,
    readonly vocabSize: number,
    readonly numClasses: number,
    seed: number | string,
  ) {
    const rng = makeRng(deriveSeed(seed, 'sequence-model'));
    // nn.Embedding initialises N(0, 1); the core's first RMSNorm makes the scale irrelevant.
    this.embedding = normalVariable([vocabSize, core.dim], 1, rng);
    this.head = linearWeight('head.weight', core.dim, numClasses, rng);
    this.bias = uniformVariable([numClasses], 1 / Math.sqrt(core.dim), rng);
  }

  /** Core weights plus `embed.weight`, `head.weight`, `head.bias` (PyTorch layout). */
  namedWeights(): NamedWeight[] {
    return [
      { name: 'embed.weight', variable: this.embedding, transposed: false },
      ...this.core.namedWeights().map((w) => ({ ...w, name: `core.${w.name}` })),
      this.head,
      { name: 'head.bias', variable: this.bias, transposed: false },
    ];
  }

  trainableVariables(): tf.Variable[] {
    return this.namedWeights().map((w) => w.variable);
  }

  /** Logits [B·T, classes] for tokens [B, T] (int32), from a zero memory state. */
  logits(tokens: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, t] = tokens.shape;
      // A one-hot matMul embeds faster than gather on wasm and its gradient is a plain matMul.
      const onehot = oneHotFloat(tf.reshape(tokens, [-1]) as tf.Tensor1D, this.vocabSize);
      const xs = tf.reshape(linear(onehot as tf.Tensor2D, this.embedding as tf.Variable<tf.Rank.R2>), [b, t, this.core.dim]);
      const state = this.core.initialState(b);
      const { ys, state: last } = this.core.forward(xs as tf.Tensor3D, state, tf.zeros([b, t]));
      disposeState(state);
      disposeState(last);
      const flat = tf.reshape(ys, [b * t, this.core.dim]) as tf.Tensor2D;
      return tf.add(linear(flat, this.head.variable as tf.Variable<tf.Rank.R2>), this.bias) as tf.Tensor2D;
    });
  }

  dispose(): void {
    this.core.dispose();
    tf.dispose([this.embedding, this.head.variable, this.bias]);
  }
}

/** Samples padded at the end into a [B, T] token matrix, with labels flattened to B·T (`NO_LABEL` for none). */
export interface Batch {
  batch: number;
  length: number;
  tokens: Int32Array;
  labels: Int32Array;
  /** Number of labelled positions. */
  count: number;
}

export function makeBatch(samples: Sample[]): Batch {
  if (samples.length === 0) throw new Error('makeBatch: no samples.');
  const length = Math.max(...samples.map((s) => s.tokens.length));
  const tokens = new Int32Array(samples.length * length);
  const labels = new Int32Array(samples.length * length).fill(NO_LABEL);
  let count = 0;
  samples.forEach((s, i) => {
    if (s.labels.length !== s.tokens.length) throw new Error(`Sample ${i} has ${s.tokens.length} tokens but ${s.labels.length} labels.`);
    tokens.set(s.tokens, i * length);
    labels.set(s.labels, i * length);
    count += s.labels.filter((l) => l !== NO_LABEL).length;
  });
  if (count === 0) throw new Error('makeBatch: the samples carry no labels.');
  return { batch: samples.length, length, tokens, labels, count };
}

/**
 * Summed negative log-likelihood (nats) and number of correct argmax predictions over the labelled positions, and
 * the correct predictions of each sequence ([B]).
 */
function scoreBatch(model: SequenceModel, batch: Batch): { nll: tf.Scalar; correct: tf.Scalar; perSequence: tf.Tensor1D } {
  return tf.tidy(() => {
    const logits = model.logits(tf.tensor2d(batch.tokens, [batch.batch, batch.length], 'int32'));
    const labels = tf.tensor1d(batch.labels, 'int32');
    const mask = tf.cast(tf.notEqual(labels, NO_LABEL), 'float32');
    // Masked one-hot targets: unlabelled rows are all zero and add nothing. (The wasm oneHot zeroes the whole
    // output when an index is −1, so they are clamped first.)
    const clamped = tf.tensor1d(batch.labels.map((l) => Math.max(l, 0)), 'int32');
    const target = tf.mul(oneHotFloat(clamped, model.numClasses), tf.expandDims(mask, 1));
    const nll = tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)))) as tf.Scalar;
    const hits = tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'), mask);
    const perSequence = tf.sum(tf.reshape(hits, [batch.batch, batch.length]), 1) as tf.Tensor1D;
    return { nll, correct: tf.sum(hits) as tf.Scalar, perSequence };
  });
}

/** Scores of one evaluation group. */
export interface EvalResult {
  /** Mean cross-entropy per labelled position, in nats. */
  loss: number;
  accuracy: number;
  /** (accuracy − 1/C) / (1 − 1/C): 0 at chance, 1 when perfect. */
  normalizedAccuracy: number;
  /** loss / ln 2: bits per predicted token (bits per character for char-lm). */
  bpc: number;
  count: number;
  /** Accuracy by sequence length (tokens, end token included), shortest first. */
  byLength: { length: number; accuracy: number; count: number }[];
}

/** Evaluates samples in batches of similar length (sorted by length, then padded). */
export async function evaluate(model: SequenceModel, samples: Sample[], batchSize: number): Promise<EvalResult> {
  const sorted = [...samples].sort((a, b) => a.tokens.length - b.tokens.length);
  let nll = 0;
  let correct = 0;
  let count = 0;
  const lengths = new Map<number, { correct: number; count: number }>();
  for (let i = 0; i < sorted.length; i += batchSize) {
    await yieldToEventLoop(); // a long evaluation must not hold off a second Ctrl-C
    const samples = sorted.slice(i, i + batchSize);
    const batch = makeBatch(samples);
    const scores = scoreBatch(model, batch);
    const [n, c, per] = await Promise.all([scores.nll.data(), scores.correct.data(), scores.perSequence.data()]);
    tf.dispose([scores.nll, scores.correct, scores.perSequence]);
    nll += n[0];
    correct += c[0];
    count += batch.count;
    samples.forEach((s, j) => {
      const cell = lengths.get(s.tokens.length) ?? { correct: 0, count: 0 };
      cell.correct += per[j];
      cell.count += s.labels.filter((l) => l !== NO_LABEL).length;
      lengths.set(s.tokens.length, cell);
    });
  }
  const accuracy = correct / count;
  const chance = 1 / model.numClasses;
  return {
    loss: nll / count,
    accuracy,
    normalizedAccuracy: (accuracy - chance) / (1 - chance),
    bpc: nll / count / Math.LN2,
    count,
    byLength: [...lengths]
      .filter(([, c]) => c.count > 0)
      .map(([length, c]) => ({ length, accuracy: c.correct / c.count, count: c.count })),
  };
}

const posInt = z.number().int().positive();

/** Everything that defines a supervised run (JSON-able; `--config` files and `--print-config` use this shape). */
export const SupervisedConfigSchema = z
  .object({
    task: z.enum(TASK_NAMES),
    /** Task-specific options (length split, recall sizes, LM context; see `training/supervised/tasks/`). */
    taskOptions: z.record(z.unknown()).default({}),
    /** A core config for `createCore` (`{type: 'hqlt', dim: 64, ...}`). */
    core: z.object({ type: z.string() }).passthrough(),
    seed: z.union([z.number().int(), z.string()]).default(0),
    steps: posInt.default(2000),
    batch: posInt.default(32),
    lr: z.number().positive().default(1e-3),
    /** Linear warm-up steps, then cosine decay to `lr · minLrRatio`. */
    warmup: z.number().int().nonnegative().default(100),
    minLrRatio: z.number().min(0).max(1).default(0.1),
    /** Global gradient-norm clip. */
    clip: z.number().positive().default(1),
    /** Evaluate, log metrics and checkpoint every this many steps (and at the end). */
    evalEvery: posInt.default(500),
    evalBatch: posInt.default(64),
  })
  .strict();
export type SupervisedConfig = z.output<typeof SupervisedConfigSchema>;

/** Validates a config, fills defaults and checks the core config; errors list every bad field. */
export function resolveSupervisedConfig(raw: unknown): SupervisedConfig {
  const result = SupervisedConfigSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new Error(`Invalid supervised config:\n  ${lines.join('\n  ')}`);
  }
  resolveCoreConfig(result.data.core); // fails early, naming bad core fields
  return result.data;
}

/** The learning rate at `step` (0-based): linear warm-up, then cosine decay. */
export function learningRate(config: SupervisedConfig, step: number): number {
  if (step < config.warmup) return (config.lr * (step + 1)) / config.warmup;
  const progress = Math.min(1, (step - config.warmup) / Math.max(1, config.steps - config.warmup));
  const floor = config.lr * config.minLrRatio;
  return floor + 0.5 * (config.lr - floor) * (1 + Math.cos(Math.PI * progress));
}

/** One evaluation point, as logged to metrics.jsonl / metrics.csv. */
export interface SupervisedMetrics {
  step: number;
  /** Mean training loss since the previous evaluation. */
  trainLoss: number;
  lr: number;
  elapsedS: number;
  stepsPerS: number;
  /** `<group>/<metric>`, e.g. `test/normalizedAccuracy`, `valid/bpc`. */
  [key: string]: number;
}

export interface TrainOptions {
  /** Run directory (metrics and checkpoint go here); omit to write nothing. */
  runDir?: string;
  /** Continue from the checkpoint in `runDir` (its config must match). */
  resume?: boolean;
  /** Called after every training step (for a progress bar). */
  onStep?: (step: number, loss: number) => void;
  /** Called at every evaluation. */
  onEval?: (metrics: SupervisedMetrics) => void;
  /** Aborting stops after the current step, writes a checkpoint (with `runDir`) and returns (Ctrl-C, SIGTERM). */
  signal?: AbortSignal;
}

export interface TrainResult {
  config: SupervisedConfig;
  /** Final evaluation, by group (empty when interrupted before any evaluation). */
  final: Record<string, EvalResult>;
  history: SupervisedMetrics[];
  /** Stopped early by `signal`; `step` is where. */
  interrupted: boolean;
  step: number;
}

const CHECKPOINT = 'checkpoint';

interface CheckpointState {
  step: number;
  config: SupervisedConfig;
  rng: object;
  adam: { accBeta1: number; accBeta2: number };
  history: SupervisedMetrics[];
}

/** Whether `runDir` holds a supervised checkpoint to resume. */
export function hasCheckpoint(runDir: string): boolean {
  recoverFolder(join(runDir, CHECKPOINT));
  return existsSync(join(runDir, CHECKPOINT, 'state.json'));
}

/** Writes the checkpoint folder atomically, so weights, moments and step always belong together. */
async function saveCheckpoint(dir: string, model: SequenceModel, adam: Adam, state: Omit<CheckpointState, 'adam'>) {
  const opt = await adam.getState();
  const moments: Record<string, FloatTensor> = {};
  adam.variables.forEach((v, i) => {
    moments[`m.${i}`] = { shape: [...v.shape], data: opt.m[i] };
    moments[`v.${i}`] = { shape: [...v.shape], data: opt.v[i] };
  });
  const full: CheckpointState = { ...state, adam: { accBeta1: opt.accBeta1, accBeta2: opt.accBeta2 } };
  writeFolderAtomicSync(join(dir, CHECKPOINT), {
    'model.safetensors': encodeSafetensors(await weightsToTensors(model)),
    'optimizer.safetensors': encodeSafetensors(moments),
    'state.json': JSON.stringify(full),
  });
}

async function loadCheckpoint(dir: string, config: SupervisedConfig, model: SequenceModel, adam: Adam) {
  const ckpt = join(dir, CHECKPOINT);
  const statePath = join(ckpt, 'state.json');
  if (!hasCheckpoint(dir)) throw new Error(`No checkpoint to resume in ${ckpt}: run without --resume to start afresh.`);
  const state = JSON.parse(await readFile(statePath, 'utf8')) as CheckpointState;
  const { steps: _a, evalEvery: _b, ...want } = config;
  const { steps: _c, evalEvery: _d, ...have } = state.config;
  if (JSON.stringify(want) !== JSON.stringify(have)) {
    throw new Error(`The checkpoint in ${ckpt} was made with a different config (only steps and evalEvery may change on resume).`);
  }
  importWeights(model, join(ckpt, 'model.safetensors'));
  const moments = readSafetensors(join(ckpt, 'optimizer.safetensors')).tensors;
  adam.setState({
    ...state.adam,
    m: adam.variables.map((_, i) => moments[`m.${i}`].data),
    v: adam.variables.map((_, i) => moments[`v.${i}`].data),
  });
  return state;
}

async function evaluateAll(model: SequenceModel, task: SequenceTask, batch: number): Promise<Record<string, EvalResult>> {
  const out: Record<string, EvalResult> = {};
  for (const [group, samples] of Object.entries(task.evalSets())) out[group] = await evaluate(model, samples, batch);
  return out;
}

function flatten(results: Record<string, EvalResult>, metric: SequenceTask['metric']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [group, r] of Object.entries(results)) {
    out[`${group}/loss`] = r.loss;
    if (metric === 'bpc') out[`${group}/bpc`] = r.bpc;
    else {
      out[`${group}/accuracy`] = r.accuracy;
      out[`${group}/normalizedAccuracy`] = r.normalizedAccuracy;
    }
  }
  return out;
}

/** Trains a core on a task; evaluates, logs and checkpoints every `evalEvery` steps and at the end. */
export async function trainSupervised(rawConfig: unknown, options: TrainOptions = {}): Promise<TrainResult> {
  const config = resolveSupervisedConfig(rawConfig);
  const task = makeTask(config.task, deriveSeed(config.seed, 'task'), config.taskOptions);
  const core = createCore(config.core, deriveSeed(config.seed, 'core'));
  const model = new SequenceModel(core, task.vocabSize, task.numClasses, deriveSeed(config.seed, 'model'));
  const variables = model.trainableVariables();
  const adam = new Adam(variables, { learningRate: config.lr });
  const clip = tf.keep(tf.scalar(config.clip));
  let rng: Rng = makeRng(deriveSeed(config.seed, 'train-data'));
  let step = 0;
  let history: SupervisedMetrics[] = [];
  const { runDir } = options;
  let log: MetricsLog<SupervisedMetrics> | undefined;
  let lock: RunLock | undefined;
  try {
    if (runDir) {
      await mkdir(runDir, { recursive: true });
      lock = await lockRunDir(runDir, options.signal);
      const removed = cleanStaleTemporaries(runDir);
      if (removed.length) console.warn(`Note: removed ${removed.join(', ')} from ${runDir}: left by a run killed mid-write.`);
      if (options.resume) {
        const state = await loadCheckpoint(runDir, config, model, adam);
        step = state.step;
        history = state.history;
        rng = makeRng(deriveSeed(config.seed, 'train-data'), state.rng);
      } else if (hasCheckpoint(runDir)) {
        throw new Error(`${runDir} already holds a run: pass --resume to continue it, or choose another --name.`);
      }
      await writeFileAtomic(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
      const resumedAt = step;
      log = new MetricsLog<SupervisedMetrics>(runDir, { keep: options.resume ? (m) => m.step <= resumedAt : undefined });
    }
    let lossSum = 0;
    let lossCount = 0;
    let windowStart = Date.now();
    let windowSteps = 0;
    const started = Date.now() - (history.at(-1)?.elapsedS ?? 0) * 1000;
    let final: Record<string, EvalResult> | undefined;
    let saved = step;
    while (step < config.steps) {
      await yieldToEventLoop(); // lets Ctrl-C / SIGTERM handlers run (see interrupt.ts)
      const lr = learningRate(config, step);
      adam.setLearningRate(lr);
      const batch = makeBatch(task.trainBatch(rng, config.batch));
      const loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const { nll } = scoreBatch(model, batch);
          return tf.div(nll, batch.count) as tf.Scalar;
        }, variables);
        const ordered = variables.map((v) => grads[v.name]);
        adam.applyGradients(ordered, globalNormScale(ordered, clip).scale);
        return value;
      });
      const lossValue = (await loss.data())[0];
      loss.dispose();
      if (!Number.isFinite(lossValue)) throw new Error(`Training diverged at step ${step} (loss ${lossValue}): lower --lr.`);
      step++;
      windowSteps++;
      lossSum += lossValue;
      lossCount++;
      options.onStep?.(step, lossValue);
      if (step % config.evalEvery === 0 || step === config.steps) {
        final = await evaluateAll(model, task, config.evalBatch);
        const now = Date.now();
        const metrics: SupervisedMetrics = {
          step,
          trainLoss: lossSum / lossCount,
          lr,
          elapsedS: (now - started) / 1000,
          stepsPerS: windowSteps / ((now - windowStart) / 1000),
          ...flatten(final, task.metric),
        };
        history.push(metrics);
        options.onEval?.(metrics);
        if (runDir) {
          log?.append(metrics);
          await saveCheckpoint(runDir, model, adam, { step, config, rng: rng.state(), history });
          saved = step;
        }
        lossSum = 0;
        lossCount = 0;
        windowStart = Date.now();
        windowSteps = 0;
      }
      if (options.signal?.aborted && step < config.steps) {
        // The loss average since the last evaluation is not saved: a resumed run's next trainLoss covers fewer steps.
        if (runDir && saved !== step) await saveCheckpoint(runDir, model, adam, { step, config, rng: rng.state(), history });
        return { config, final: final ?? {}, history, interrupted: true, step };
      }
    }
    final ??= await evaluateAll(model, task, config.evalBatch);
    return { config, final, history, interrupted: false, step };
  } finally {
    lock?.release();
    clip.dispose();
    adam.dispose();
    model.dispose();
  }
}
