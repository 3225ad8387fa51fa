/**
 * Memory-core speed: step latency (acting, B streams) and forward+backward throughput (training) per core type,
 * on the backend in use. Writes `bench/results/core-<backend>.json` and prints a table.
 *
 *   node dist/bench/core.js [--backend wasm] [--steps 200] [--passes 3] [--types hqlt-sync,gru] [--cpu-time]
 *
 * --cpu-time measures this process's CPU time instead of wall time: steadier on a machine shared with other jobs
 * (the wasm backend runs on one thread).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend } from '../memory/backend.js';
import type { CoreConfig } from '../memory/core.js';
import { createCore, describeCore } from '../memory/registry.js';
import { disposeState } from '../memory/state.js';

export interface BenchCoreOptions {
  backend?: string;
  /** Core types or presets to run (default: every HQLT blend and every baseline). */
  types?: string[];
  batch?: number;
  seqLen?: number;
  dim?: number;
  layers?: number;
  heads?: number;
  window?: number;
  /** Timed steps (after `warmup` untimed ones). */
  steps?: number;
  warmup?: number;
  /** Timed forward+backward passes, after `warmupPasses` untimed ones. */
  passes?: number;
  /** Untimed passes first: shader compilation, and on WebGPU tfjs' host code still warming up in V8's JIT. */
  warmupPasses?: number;
  /** ...and at least this many seconds of them. */
  warmupSeconds?: number;
  /** Where to write the JSON (default bench/results/core-<backend>.json; '' to skip). */
  out?: string;
  /** Time with process CPU time instead of wall time. */
  cpuTime?: boolean;
}

/** Milliseconds now: wall clock, or this process's CPU time. */
function clock(cpuTime: boolean): number {
  if (!cpuTime) return performance.now();
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

export interface BenchCoreResult {
  type: string;
  description: string;
  stepMs: number;
  trainTokensPerSecond: number;
}

export const DEFAULT_BENCH_TYPES = [
  'hqlt-sync',
  'hqlt-delayed',
  'hqlt-chunk',
  'hqlt-linear',
  'deltanet',
  'window-attention',
  'transformer',
  'linear-attention',
  'gru',
  'lstm',
  'mlp',
];

/** The config of `type` at the benchmark's sizes (only the fields that type has). */
function benchConfig(type: string, o: Required<BenchCoreOptions>): CoreConfig {
  const base: CoreConfig = { type, dim: o.dim, layers: o.layers };
  if (['gru', 'lstm', 'mlp'].includes(type)) return base;
  const attn = { ...base, heads: o.heads };
  if (type === 'transformer') return { ...attn, maxContext: o.seqLen };
  if (type.startsWith('hqlt') || type === 'window-attention') return { ...attn, window: o.window };
  return attn;
}

async function timeSteps(config: CoreConfig, o: Required<BenchCoreOptions>): Promise<number> {
  const core = createCore(config, 0);
  const x = tf.randomNormal([o.batch, o.dim], 0, 1, 'float32', 1) as tf.Tensor2D;
  const e = tf.zeros([o.batch]) as tf.Tensor1D;
  let state = core.initialState(o.batch);
  let start = 0;
  for (let i = 0; i < o.warmup + o.steps; i++) {
    if (i === o.warmup) start = clock(o.cpuTime);
    const r = core.step(x, state, e);
    await r.y.data(); // wait for the backend: the latency an agent sees
    r.y.dispose();
    disposeState(state);
    state = r.state;
  }
  const ms = (clock(o.cpuTime) - start) / o.steps;
  disposeState(state);
  tf.dispose([x, e]);
  core.dispose();
  return ms;
}

async function timeTraining(config: CoreConfig, o: Required<BenchCoreOptions>): Promise<number> {
  const core = createCore(config, 0);
  const xs = tf.randomNormal([o.batch, o.seqLen, o.dim], 0, 1, 'float32', 2) as tf.Tensor3D;
  // A few episode boundaries, as in real rollouts.
  const es = tf.tidy(() => tf.cast(tf.less(tf.randomUniform([o.batch, o.seqLen], 0, 1, 'float32', 3), 0.01), 'float32')) as tf.Tensor2D;
  const state = core.initialState(o.batch);
  const pass = async () => {
    const { value, grads } = tf.variableGrads(() => {
      const r = core.forward(xs, state, es);
      disposeState(r.state);
      return tf.mean(tf.square(r.ys)) as tf.Scalar;
    }, core.trainableVariables());
    await Promise.all(Object.values(grads).map((g) => g.data()));
    tf.dispose([value, ...Object.values(grads)]);
  };
  const warmupEnd = performance.now() + 1000 * o.warmupSeconds;
  for (let i = 0; i < o.warmupPasses || performance.now() < warmupEnd; i++) await pass();
  const start = clock(o.cpuTime);
  for (let i = 0; i < o.passes; i++) await pass();
  const seconds = (clock(o.cpuTime) - start) / 1000 / o.passes;
  disposeState(state);
  tf.dispose([xs, es]);
  core.dispose();
  return (o.batch * o.seqLen) / seconds;
}

/** Runs the benchmark; returns the results (also written as JSON and printed as a table). */
export async function benchCores(opts: BenchCoreOptions = {}): Promise<BenchCoreResult[]> {
  const info = await initBackend(opts.backend);
  const o: Required<BenchCoreOptions> = {
    backend: info.active,
    types: DEFAULT_BENCH_TYPES,
    batch: 16,
    seqLen: 256,
    dim: 128,
    layers: 2,
    heads: 4,
    window: 64,
    steps: 200,
    warmup: 20,
    passes: 3,
    warmupPasses: 1,
    warmupSeconds: 0,
    cpuTime: false,
    out: join('bench', 'results', `core-${info.active}.json`),
    // Options left undefined keep their defaults.
    ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as BenchCoreOptions),
  };
  const results: BenchCoreResult[] = [];
  console.log(`backend ${info.active}: B=${o.batch} T=${o.seqLen} D=${o.dim} L=${o.layers} H=${o.heads} S=${o.window}`);
  console.log(`${'core'.padEnd(18)} ${'step ms'.padStart(9)} ${'train tok/s'.padStart(12)}`);
  const { out: _out, ...settings } = o;
  const save = () => {
    if (!o.out) return;
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify({ date: new Date().toISOString(), node: process.version, settings, results }, null, 2));
  };
  for (const type of o.types) {
    const config = benchConfig(type, o);
    const stepMs = await timeSteps(config, o);
    const trainTokensPerSecond = await timeTraining(config, o);
    results.push({ type, description: describeCore(config), stepMs, trainTokensPerSecond });
    console.log(`${type.padEnd(18)} ${stepMs.toFixed(2).padStart(9)} ${trainTokensPerSecond.toFixed(0).padStart(12)}`);
    save(); // after every core, so a long run that is cut short keeps what it measured
  }
  if (o.out) console.log(`wrote ${o.out}`);
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' },
      types: { type: 'string' },
      steps: { type: 'string' },
      passes: { type: 'string' },
      out: { type: 'string' },
      'cpu-time': { type: 'boolean' },
    },
  });
  benchCores({
    backend: values.backend,
    types: values.types?.split(','),
    steps: values.steps ? Number(values.steps) : undefined,
    passes: values.passes ? Number(values.passes) : undefined,
    out: values.out,
    cpuTime: values['cpu-time'],
  }).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
