/**
 * Named weights: seeded creation, and export/import as safetensors in the PyTorch layout of `HQLT-SPEC.md`
 * (variables flagged `transposed` are stored [in, out] for fast `linear` and transposed at the file boundary).
 */
import * as tf from '@tensorflow/tfjs';
import type { NamedWeight } from './core.js';
import { randn } from '../util/random.js';
import { readSafetensors, writeSafetensors, type FloatTensor } from '../util/safetensors.js';

/** Anything with named weights: a core, a mixer layer. */
export interface HasNamedWeights {
  namedWeights(): NamedWeight[];
}

/** A trainable variable of uniform values in [-bound, bound). */
export function uniformVariable(shape: number[], bound: number, rng: () => number): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (2 * rng() - 1) * bound;
  return tf.tidy(() => tf.variable(tf.tensor(data, shape)));
}

/** A trainable variable of normal values with the given standard deviation. */
export function normalVariable(shape: number[], std: number, rng: () => number): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = randn(rng) * std;
  return tf.tidy(() => tf.variable(tf.tensor(data, shape)));
}

/** A trainable variable filled with a constant (norm scales start at 1). */
export function constantVariable(shape: number[], value: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.fill(shape, value)));
}

/**
 * A linear map stored [in, out] (for `linear`), initialised like PyTorch's nn.Linear (uniform ±1/√in), named
 * in the [out, in] layout.
 */
export function linearWeight(name: string, inDim: number, outDim: number, rng: () => number): NamedWeight {
  return { name, variable: uniformVariable([inDim, outDim], 1 / Math.sqrt(inDim), rng), transposed: true };
}

/** Prefixes weight names, for layers nested in a core (`layers.0.attn.` + `q_proj.weight`). */
export function prefixWeights(weights: NamedWeight[], prefix: string): NamedWeight[] {
  return weights.map((w) => ({ ...w, name: prefix + w.name }));
}

/** Spec-layout shape of a named weight. */
function specShape(w: NamedWeight): number[] {
  return w.transposed ? [...w.variable.shape].reverse() : [...w.variable.shape];
}

/** The weights' values in the spec layout, keyed by name. */
export async function weightsToTensors(target: HasNamedWeights): Promise<Record<string, FloatTensor>> {
  const out: Record<string, FloatTensor> = {};
  for (const w of target.namedWeights()) {
    if (out[w.name]) throw new Error(`Duplicate weight name '${w.name}'.`);
    const t = w.transposed ? tf.transpose(w.variable) : w.variable;
    const data = (await t.data()) as Float32Array;
    if (t !== w.variable) t.dispose();
    out[w.name] = { shape: specShape(w), data: Float32Array.from(data) };
  }
  return out;
}

/**
 * Assigns weights from spec-layout tensors. Everything is checked before anything is assigned: every expected
 * name present, no unexpected names, shapes equal; `source` names the origin in errors.
 */
export function assignWeights(target: HasNamedWeights, tensors: Record<string, FloatTensor>, source: string): void {
  const weights = target.namedWeights();
  const expected = new Set(weights.map((w) => w.name));
  const missing = weights.filter((w) => !(w.name in tensors)).map((w) => w.name);
  const unexpected = Object.keys(tensors).filter((n) => !expected.has(n));
  const problems: string[] = [];
  if (missing.length) problems.push(`missing: ${missing.join(', ')}`);
  if (unexpected.length) problems.push(`unexpected: ${unexpected.join(', ')}`);
  for (const w of weights) {
    const t = tensors[w.name];
    const want = specShape(w);
    if (t && t.shape.join(',') !== want.join(',')) {
      problems.push(`'${w.name}' has shape [${t.shape.join(', ')}], expected [${want.join(', ')}]`);
    }
  }
  if (problems.length) {
    throw new Error(`${source} does not match the model's weights (${weights.length} expected): ${problems.join('; ')}.`);
  }
  for (const w of weights) {
    const { shape, data } = tensors[w.name];
    tf.tidy(() => {
      const t = tf.tensor(data, shape);
      w.variable.assign(w.transposed ? tf.transpose(t) : t);
    });
  }
}

/** Writes the weights to a safetensors file (atomically). */
export async function exportWeights(
  target: HasNamedWeights,
  path: string,
  metadata?: Record<string, string>,
): Promise<void> {
  writeSafetensors(path, await weightsToTensors(target), metadata);
}

/**
 * Loads weights from a safetensors file. Float files of any readable dtype (F32, F16, BF16, F64) load as
 * float32; other dtypes, wrong names and wrong shapes fail with a message naming them.
 */
export function importWeights(target: HasNamedWeights, path: string): void {
  assignWeights(target, readSafetensors(path).tensors, path);
}
