/**
 * Timing of one HQLT layer: forward+backward of the sequence form (training) and one step (acting), per blend.
 * Usage: npx tsc -p . && node dist/bench/hqlt-layer.js [--backend wasm] [--batch 16] [--time 256] [--dim 128]
 *        [--heads 4] [--window 64] [--reps 3] [--only <blend>] [--cpu-time] [--memory]
 * --memory reports, instead of timings, the bytes held right after the forward inside tf.variableGrads (what the
 * backward pass must keep) and the largest groups of tensors saved by the gradient tape.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../memory/backend.js';
import { BLENDS, HqltLayer, type HqltLayerOptions } from '../memory/hqlt.js';
import { makeRng } from '../util/random.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/**
 * Mean milliseconds per run: wall time, or with --cpu-time this process's CPU time (a steadier measure on a
 * machine shared with other jobs: the wasm backend runs on one thread).
 */
async function timeMs(reps: number, run: () => Promise<void>): Promise<number> {
  await run(); // warm-up (kernel compilation, allocations)
  const cpu = process.argv.includes('--cpu-time');
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) await run();
  const c = process.cpuUsage(c0);
  return (cpu ? (c.user + c.system) / 1000 : performance.now() - t0) / reps;
}

/** Bytes alive after the forward under gradient recording, and the tape's saved tensors grouped by kernel and shape. */
function memoryReport(layer: HqltLayer, xs: tf.Tensor3D, starts: tf.Tensor2D, init: ReturnType<HqltLayer['initialState']>): void {
  const vars = layer.namedWeights().map((w) => w.variable);
  const before = tf.memory().numBytes;
  let held = 0;
  const groups = new Map<string, { bytes: number; count: number }>();
  const { value, grads } = tf.variableGrads(() =>
    tf.tidy(() => {
      const loss = tf.mean(tf.square(layer.forward(xs, init, starts).ys)) as tf.Scalar;
      held = tf.memory().numBytes - before;
      const tape = (tf.engine().state as unknown as { activeTape: { kernelName: string; saved?: tf.Tensor[] }[] }).activeTape;
      const seen = new Set<object>();
      for (const node of tape ?? [])
        for (const t of node.saved ?? []) {
          if (seen.has(t.dataId) || t.isDisposed) continue;
          seen.add(t.dataId);
          const key = `${node.kernelName} [${t.shape}]`;
          const g = groups.get(key) ?? { bytes: 0, count: 0 };
          g.bytes += t.size * 4;
          g.count++;
          groups.set(key, g);
        }
      return loss;
    }),
    vars,
  );
  tf.dispose([value, ...Object.values(grads)]);
  const label = `${layer.options.memories}/${layer.options.blend}/S${layer.options.window}`.padEnd(36);
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const perToken = (b: number) => `${Math.round(b / (xs.shape[0] * xs.shape[1]))} B/token`;
  // numBytes counts every tensor handle (a reshape, or the tape's clone of a saved tensor, counts again though it
  // shares the data); the wasm heap only grows, so its size is the peak of this process so far (use --only).
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length;
  console.log(`${label} numBytes after forward ${mib(held)} (${perToken(held)})` + (heap ? `, wasm heap ${mib(heap)}` : ''));
  const saved = [...groups.values()].reduce((a, g) => a + g.bytes, 0);
  console.log(`    tape saves ${mib(saved)} (distinct buffers) in ${[...groups.values()].reduce((a, g) => a + g.count, 0)} tensors`);
  const top = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 12);
  for (const [key, g] of top) console.log(`    ${(g.bytes / 2 ** 20).toFixed(1).padStart(7)} MiB  ${g.count}x ${key}`);
}

async function benchLayer(options: HqltLayerOptions, B: number, T: number, reps: number): Promise<void> {
  const layer = new HqltLayer(options, makeRng(1));
  const vars = layer.namedWeights().map((w) => w.variable);
  const xs = tf.randomNormal([B, T, options.dim], 0, 1, 'float32', 2) as tf.Tensor3D;
  const starts = tf.zeros([B, T]) as tf.Tensor2D;
  const init = layer.initialState(B);
  if (process.argv.includes('--memory')) {
    memoryReport(layer, xs, starts, init);
    tf.dispose([xs, starts, ...Object.values(init)]);
    layer.dispose();
    return;
  }
  const trainMs = await timeMs(reps, async () => {
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.mean(tf.square(layer.forward(xs, init, starts).ys)) as tf.Scalar), vars);
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
  });
  const fwdMs = await timeMs(reps, async () => {
    const { ys, state } = layer.forward(xs, init, starts);
    await ys.data();
    tf.dispose([ys, ...Object.values(state)]);
  });
  const x = tf.randomNormal([B, options.dim]) as tf.Tensor2D;
  const e = tf.zeros([B]) as tf.Tensor1D;
  // Steps carry their state (as when acting), starting from the sequence's final state: a full buffer.
  const warm = layer.forward(xs, init, starts);
  warm.ys.dispose();
  let state = warm.state;
  const stepMs = await timeMs(reps * 50, async () => {
    const r = layer.step(x, state, e);
    await r.y.data();
    tf.dispose([r.y, ...Object.values(state)]);
    state = r.state;
  });
  tf.dispose(Object.values(state));
  const label = `${options.memories ?? 'both'}/${options.blend}/S${options.window}`.padEnd(36);
  console.log(
    `${label} fwd+bwd ${trainMs.toFixed(1).padStart(7)} ms (${Math.round((B * T) / (trainMs / 1000))} tok/s)` +
      `  fwd ${fwdMs.toFixed(1).padStart(6)} ms  step(B=${B}) ${stepMs.toFixed(2)} ms`,
  );
  tf.dispose([xs, starts, x, e, ...Object.values(init)]);
  layer.dispose();
}

async function main(): Promise<void> {
  const info = await initBackend(arg('backend', 'wasm'));
  const B = Number(arg('batch', '16'));
  const T = Number(arg('time', '256'));
  const dim = Number(arg('dim', '128'));
  const heads = Number(arg('heads', '4'));
  const window = Number(arg('window', '64'));
  const reps = Number(arg('reps', '3'));
  console.log(`backend ${info.active}: B=${B} T=${T} D=${dim} H=${heads} S=${window}`);
  const base = { dim, heads, window, mixing: 'vector', rope: true, shortConv: false, allowNegativeEigenvalues: true } as const;
  const only = arg('only', '');
  const cases: HqltLayerOptions[] = [
    ...BLENDS.map((blend) => ({ ...base, blend })),
    { ...base, blend: 'synchronous', memories: 'fw' },
    { ...base, blend: 'synchronous', memories: 'kv' },
    { ...base, blend: 'synchronous', memories: 'kv', window: 1024 },
  ];
  for (const c of cases) if (!only || (c.memories ?? 'both') === only || c.blend === only) await benchLayer(c, B, T, reps);
}

void main();
