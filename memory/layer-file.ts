/**
 * One HQLT layer run on files, for interoperability checks against the authors' PyTorch layer: a JSON config, the
 * weights in their layout and an input, all safetensors, give the sequence form's output in a safetensors file.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { initBackend } from './backend.js';
import { BLENDS, HqltLayer, MIXINGS, type Blend, type HqltLayerOptions, type Mixing } from './hqlt.js';
import { makeRng } from '../util/random.js';
import { readSafetensors, writeSafetensors, type FloatTensor } from '../util/safetensors.js';
import { disposeState } from './state.js';
import { assignWeights } from './weights.js';

/** The layer config file: everything the weights' shapes do not tell. Widths come from the weights. */
const LayerConfig = z
  .object({
    blend: z.enum(BLENDS as [Blend, ...Blend[]]).default('synchronous'),
    mixing: z.enum(MIXINGS as [Mixing, ...Mixing[]]).default('vector'),
    /** Optional: inferred from the weights (value width / o_norm width); checked when given. */
    heads: z.number().int().positive().optional(),
    window: z.number().int().positive().default(64),
    rope: z.boolean().default(false),
    shortConv: z.boolean().default(false),
    allowNegativeEigenvalues: z.boolean().default(true),
    memories: z.enum(['both', 'fw', 'kv']).default('both'),
  })
  .strict();

export interface LayerRunOptions {
  /** Path of the JSON layer config. */
  config: string;
  /** Path of the weights (layer-relative spec names: `q_proj.weight`, ...). */
  weights: string;
  /** Path of the input: `x` [B, T, D] and optionally `episode_start` [B, T]. */
  input: string;
  /** Path of the output: `y` [B, T, D]. */
  out: string;
  backend?: string;
}

function readConfig(path: string): z.output<typeof LayerConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`Cannot read layer config ${path}: ${(err as Error).message}`);
  }
  const parsed = LayerConfig.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new Error(`Invalid layer config ${path}:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

/** Layer options from the config plus the widths read off the weights. */
function layerOptions(config: z.output<typeof LayerConfig>, weights: Record<string, FloatTensor>, path: string): HqltLayerOptions {
  const shapeOf = (name: string): number[] => {
    const t = weights[name];
    if (!t || t.shape.length < 1) throw new Error(`${path} has no '${name}', needed to infer the layer's widths.`);
    return t.shape;
  };
  const [keyDim, dim] = shapeOf('q_proj.weight');
  const [valueDim] = shapeOf('v_proj.weight');
  const [headValue] = shapeOf('o_norm.weight');
  const heads = valueDim / headValue;
  if (!Number.isInteger(heads)) throw new Error(`${path}: v_proj rows (${valueDim}) are not a multiple of o_norm width (${headValue}).`);
  if (config.heads !== undefined && config.heads !== heads) {
    throw new Error(`The config says heads = ${config.heads} but the weights have ${heads} (v_proj rows ${valueDim} / o_norm ${headValue}).`);
  }
  return { ...config, heads, dim, keyDim, valueDim };
}

/**
 * The weights minus `b_proj.weight` where the layer has no β (synchronous-linear, or no FW-memory): the authors'
 * layer always stores it. Its shape is still checked, so a file for another layer is not silently accepted.
 */
function dropUnusedBeta(layer: HqltLayer, weights: Record<string, FloatTensor>, path: string): Record<string, FloatTensor> {
  const name = 'b_proj.weight';
  const beta = weights[name];
  if (!beta || layer.namedWeights().some((w) => w.name === name)) return weights;
  const want = [layer.options.heads, layer.options.dim];
  if (beta.shape.join(',') !== want.join(','))
    throw new Error(`${path}: '${name}' has shape [${beta.shape.join(', ')}], expected [${want.join(', ')}] (it is ignored, as this layer has no β, but must fit).`);
  const { [name]: _unused, ...rest } = weights;
  return rest;
}

/** Runs the layer over the input file from a zero state and writes `y`; returns the output shape. */
export async function runLayer(opts: LayerRunOptions): Promise<number[]> {
  await initBackend(opts.backend);
  const config = readConfig(opts.config);
  const { tensors: weights } = readSafetensors(opts.weights);
  const options = layerOptions(config, weights, opts.weights);
  const { tensors: input } = readSafetensors(opts.input);
  const extra = Object.keys(input).filter((n) => n !== 'x' && n !== 'episode_start');
  if (!input.x || extra.length) {
    throw new Error(`${opts.input} must hold 'x' [B, T, D] and optionally 'episode_start' [B, T]; found: ${Object.keys(input).join(', ') || 'nothing'}.`);
  }
  const { x, episode_start: start } = input;
  if (x.shape.length !== 3 || x.shape[2] !== options.dim) {
    throw new Error(`'x' has shape [${x.shape.join(', ')}]; expected [B, T, ${options.dim}] (the weights' input width).`);
  }
  const [B, T] = x.shape;
  if (B < 1 || T < 1) {
    throw new Error(`'x' has shape [${x.shape.join(', ')}]: it needs at least one sequence and one time step (B ≥ 1, T ≥ 1).`);
  }
  if (start && start.shape.join(',') !== `${B},${T}`) {
    throw new Error(`'episode_start' has shape [${start.shape.join(', ')}]; expected [${B}, ${T}] to match 'x'.`);
  }
  // The seed is irrelevant: every weight is overwritten by the file.
  const layer = new HqltLayer(options, makeRng(0));
  try {
    try {
      assignWeights(layer, dropUnusedBeta(layer, weights, opts.weights), opts.weights);
    } catch (err) {
      throw new Error(`${(err as Error).message} Check that the config's mixing, shortConv, memories and blend match the weights.`);
    }
    const xs = tf.tensor3d(x.data, [B, T, x.shape[2]]);
    const es = start ? tf.tensor2d(start.data, [B, T]) : tf.zeros([B, T]);
    const state = layer.initialState(B);
    const r = layer.forward(xs, state, es as tf.Tensor2D);
    const y = { shape: r.ys.shape, data: Float32Array.from(await r.ys.data()) };
    tf.dispose([xs, es, r.ys]);
    disposeState(state);
    disposeState(r.state);
    writeSafetensors(opts.out, { y }, { config: JSON.stringify(options) });
    return y.shape;
  } finally {
    layer.dispose();
  }
}

