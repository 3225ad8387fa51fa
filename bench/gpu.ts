/**
 * GPU benchmark and cross-backend check (issue: GPU training through WebGPU).
 *
 *   node dist/bench/gpu.js [--backend webgpu] [--precision f32|f16] [--check] [--sizes small,batch10] [--ppo-envs 64] [--out file]
 *
 * --check first computes on the cpu backend, then on the chosen one, and prints (one JSON line each, target
 * ≤ 1e-5 relative) the largest differences of a core's sequence form and gradients (every HQLT blend, GRU, LSTM) and
 * of the weights after 3 PPO updates; with --precision f16 (large products on tensor cores) also those of a core
 * wide enough for its products to take that path (D=256, target ≤ 1e-2). Timings: core
 * forward+backward tokens/s at B=64, T=256, D=256, L=2, H=4, S=64 (`small`) and at 10× the batch (`batch10`), and
 * PPO env-steps/s at each of --ppo-envs (comma-separated; default 64) with a per-phase breakdown of an update. On a GPU machine: `source .gpu/setup.sh && $NODE dist/bench/gpu.js --check`.
 *
 * First it prints the figures of issue 11, one line each, with the fused WebGPU kernels (memory/webgpu) off and on
 * (--fused off,on): kernels (tf.profile) and GPU dispatches of one acting step of a 2-layer HQLT core (D=64, H=4,
 * S=16, B=64; target ≤ 24 kernels) and of one forward+backward of it at T=48 (target ≤ 400), and forward+backward
 * tokens/s of HQLT-sync at B=64, T=256, D=256, L=2, H=4, S=64 (target ≥ 600k); the same kernel counts and tokens/s
 * for a 2-layer GRU (target ≥ 500k). --figures-only stops after them;
 * --smoke measures the throughput at a small size instead (for a software adapter). --profile first prints where
 * one forward+backward of that HQLT-sync core (at --profile-batch streams, default 64) spends its time, per kernel
 * name and per kernel name and input shapes (GPU timestamps where the device has them), and per kernel name with
 * each kernel call replayed in isolation.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend, parsePrecision, webgpuErrorCount } from '../memory/backend.js';
import { createCore } from '../memory/registry.js';
import { disposeState } from '../memory/state.js';
import { setFusedKernels } from '../memory/webgpu/index.js';
import { formatKernelTimes, profileKernels, timestampsAvailable } from '../memory/webgpu/profile.js';
import { buildAgent } from '../training/rl/train.js';
import { parseTrainConfig, ppoSettings, type TrainConfig } from '../training/rl/config.js';
import { PpoTrainer } from '../training/rl/ppo.js';
import { PhaseTimer } from '../util/phase-timer.js';
import { ACT_PHASES } from '../agents/agent.js';
import { benchCores } from './core.js';

/** The cores --check compares with cpu: every HQLT blend, and the GRU and LSTM (fused GRU kernels on WebGPU). */
const CHECKED: Record<string, unknown>[] = [
  ...['synchronous', 'delayed-streaming', 'delayed-chunk', 'synchronous-linear'].map((blend) => ({ type: 'hqlt', blend, heads: 2, window: 8 })),
  { type: 'gru' },
  { type: 'lstm' },
];

async function readAll(ts: tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
}

/** Sequence-form outputs and gradients of a small HQLT core, read asynchronously. */
async function coreOutputs(config: Record<string, unknown>, [B, T, D] = [4, 40, 32]): Promise<Float32Array[]> {
  const core = createCore({ dim: D, layers: 2, ...config } as Parameters<typeof createCore>[0], 3);
  // Inputs made on the host: a GPU's sin() of large arguments is itself off by ~1e-3, which is not the core's error.
  const xs = tf.tensor3d(Float32Array.from({ length: B * T * D }, (_, i) => Math.sin(i)), [B, T, D]);
  const starts = tf.tensor2d(Float32Array.from({ length: B * T }, (_, i) => (i % 17 === 5 ? 1 : 0)), [B, T]);
  const state = core.initialState(B);
  const { value, grads } = tf.variableGrads(() => {
    const r = core.forward(xs, state, starts);
    disposeState(r.state);
    return tf.mean(tf.square(r.ys)) as tf.Scalar;
  }, core.trainableVariables());
  const r = core.forward(xs, state, starts);
  const out = await readAll([r.ys, ...core.trainableVariables().map((v) => grads[v.name])]);
  tf.dispose([xs, starts, value, r.ys, ...Object.values(grads)]);
  disposeState(r.state);
  disposeState(state);
  core.dispose();
  return out;
}

/** The agent's weights after `updates` PPO updates on RepeatPreviousEasy. */
async function ppoWeights(config: TrainConfig, updates: number): Promise<Float32Array[]> {
  const { agent, env } = await buildAgent(config);
  const trainer = new PpoTrainer(agent, env, ppoSettings(config), config.seed);
  await trainer.start(config.seed);
  for (let i = 0; i < updates; i++) await trainer.iterate();
  const out = await readAll(agent.trainableVariables());
  trainer.dispose();
  agent.dispose();
  await env.close();
  return out;
}

/** The largest difference of any tensor, relative to that tensor's largest magnitude (floored at 1). */
function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  a.forEach((x, i) => {
    const scale = Math.max(1, ...Array.from(b[i], Math.abs));
    x.forEach((v, j) => (d = Math.max(d, Math.abs(v - b[i][j]) / scale)));
  });
  return d;
}

/** GPU dispatches issued while `f` runs (every WebGPU kernel goes through `recordAndSubmit`); null off WebGPU. */
async function countDispatches(f: () => void): Promise<{ kernels: number; dispatches: number | null }> {
  const backend = tf.backend() as unknown as { recordAndSubmit?: (...args: unknown[]) => void };
  const original = backend.recordAndSubmit;
  let dispatches = 0;
  if (original) backend.recordAndSubmit = (...args: unknown[]) => (dispatches++, original.apply(backend, args));
  try {
    const profile = await tf.profile(f);
    return { kernels: profile.kernels.length, dispatches: original ? dispatches : null };
  } finally {
    if (original) backend.recordAndSubmit = original;
  }
}

/** Kernel counts of the acting step and forward+backward (2-layer HQLT, D=64, H=4, S=16, B=64, T=48). */
async function kernelCounts(): Promise<Record<string, number | null>> {
  const core = createCore({ type: 'hqlt', dim: 64, layers: 2, heads: 4, window: 16 }, 1);
  const [B, T] = [64, 48];
  const x = tf.tensor2d(Float32Array.from({ length: B * 64 }, (_, i) => Math.sin(i)), [B, 64]);
  const xs = tf.tensor3d(Float32Array.from({ length: B * T * 64 }, (_, i) => Math.sin(i)), [B, T, 64]);
  const starts = tf.zeros([B]) as tf.Tensor1D;
  const startsSeq = tf.zeros([B, T]) as tf.Tensor2D;
  let state = core.initialState(B);
  const step = () => {
    const r = core.step(x, state, starts);
    tf.dispose([r.y, ...Object.values(state)]);
    state = r.state;
  };
  const train = () => {
    const { value, grads } = tf.variableGrads(() => {
      const r = core.forward(xs, state, startsSeq);
      disposeState(r.state);
      return tf.mean(tf.square(r.ys)) as tf.Scalar;
    }, core.trainableVariables());
    tf.dispose([value, ...Object.values(grads)]);
  };
  step(); // warm-up: shader compilation and cached weights
  train();
  const s = await countDispatches(step);
  const t = await countDispatches(train);
  // The same forward+backward for a 2-layer GRU core (fused: one recurrence kernel each way per layer).
  const gru = createCore({ type: 'gru', dim: 64, layers: 2 }, 1);
  const gruState = gru.initialState(B);
  const gruTrain = () => {
    const { value, grads } = tf.variableGrads(() => {
      const r = gru.forward(xs, gruState, startsSeq);
      disposeState(r.state);
      return tf.mean(tf.square(r.ys)) as tf.Scalar;
    }, gru.trainableVariables());
    tf.dispose([value, ...Object.values(grads)]);
  };
  gruTrain();
  const g = await countDispatches(gruTrain);
  tf.dispose([x, xs, starts, startsSeq]);
  disposeState(state);
  disposeState(gruState);
  core.dispose();
  gru.dispose();
  return {
    stepKernels: s.kernels, stepDispatches: s.dispatches, trainKernels: t.kernels, trainDispatches: t.dispatches,
    gruTrainKernels: g.kernels, gruTrainDispatches: g.dispatches,
  };
}

const { values } = parseArgs({
  options: {
    fused: { type: 'string', default: 'off,on' },
    'figures-only': { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'profile-batch': { type: 'string', default: '64' },
    backend: { type: 'string', default: 'webgpu' },
    precision: { type: 'string' },
    check: { type: 'boolean', default: false },
    sizes: { type: 'string', default: 'small,batch10' },
    types: { type: 'string', default: 'hqlt-sync,gru' },
    'ppo-envs': { type: 'string', default: '64' },
    'ppo-updates': { type: 'string', default: '4' },
    out: { type: 'string' },
  },
});
const report: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };
// Before any backend starts: Dawn's flags are fixed when the WebGPU instance is made.
if (values.profile) process.env.HQLT_WEBGPU_TIMESTAMPS = '1';
const ppoConfig = (backend: string, numEnvs: number, steps: number) =>
  parseTrainConfig({
    env: 'popgym-RepeatPreviousEasy-v0', numEnvs, rollout: 64, seqLen: 16, steps, backend, checkpointEvery: 0,
    out: mkdtempSync(join(tmpdir(), 'hqlt-gpu-bench-')), name: 'ppo',
  });

// --precision (else HQLT_PRECISION, else f32) reaches every backend start below through the environment.
const precision = parsePrecision(values.precision ?? process.env.HQLT_PRECISION ?? 'f32');
process.env.HQLT_PRECISION = precision;
/** The cores --check compares, by figure name; with f16 products, also one wide and long enough to take them. */
const checkedCores = [
  ...CHECKED.map((config) => ({ name: config.type === 'hqlt' ? `core hqlt ${config.blend}` : `core ${config.type}`, config, size: undefined, target: '<= 1e-5' })),
  ...(precision === 'f16'
    ? [{ name: 'core hqlt synchronous, D=256, products on tensor cores', config: { type: 'hqlt', blend: 'synchronous', heads: 4, window: 16 }, size: [16, 64, 256] as [number, number, number], target: '<= 1e-2 (f16 operands)' }]
    : []),
];

if (values.check) {
  await initBackend('cpu', 'f32');
  const reference = { core: [] as Float32Array[][], ppo: await ppoWeights(ppoConfig('cpu', 8, 8 * 64 * 3), 3) };
  for (const { config, size } of checkedCores) reference.core.push(await coreOutputs(config, size));
  await initBackend(values.backend);
  // f32 relative 1e-5 for outputs; gradients and PPO weights (which go through 3 updates) are listed against it too.
  const check: Record<string, { value: number; target: string }> = {};
  for (const [i, { name, config, size, target }] of checkedCores.entries()) {
    const [ys, ...grads] = await coreOutputs(config, size);
    const [refYs, ...refGrads] = reference.core[i];
    check[`${name}: outputs, max |Δ|/max(1,|ref|)`] = { value: maxRelDiff([ys], [refYs]), target };
    check[`${name}: gradients, max |Δ|/max(1,|ref|) per tensor`] = { value: maxRelDiff(grads, refGrads), target };
  }
  const ppo = maxRelDiff(await ppoWeights(ppoConfig(values.backend, 8, 8 * 64 * 3), 3), reference.ppo);
  check['PPO: weights after 3 updates, max |Δ|/max(1,|ref|)'] = { value: ppo, target: '<= 1e-5' };
  for (const [figure, { value, target }] of Object.entries(check)) console.log(JSON.stringify({ figure: `check vs cpu: ${figure}`, value, target }));
  report.checkAgainstCpu = Object.fromEntries(Object.entries(check).map(([figure, { value }]) => [figure, value]));
}

const info = await initBackend(values.backend);
report.backend = info.active;

/**
 * --profile: where the time of one HQLT-sync forward+backward goes, per kernel name (fused kernels on), from GPU
 * timestamps when the device has them and from replaying each kernel call in isolation.
 */
async function profileTraining(size: { batch: number; seqLen: number; dim: number; window: number }): Promise<void> {
  setFusedKernels(true);
  const core = createCore({ type: 'hqlt', blend: 'synchronous', dim: size.dim, layers: 2, heads: 4, window: size.window }, 0);
  const [B, T, D] = [size.batch, size.seqLen, size.dim];
  const xs = tf.randomNormal([B, T, D], 0, 1, 'float32', 2) as tf.Tensor3D;
  const es = tf.tidy(() => tf.cast(tf.less(tf.randomUniform([B, T], 0, 1, 'float32', 3), 0.01), 'float32')) as tf.Tensor2D;
  const state = core.initialState(B);
  const pass = () => {
    const { value, grads } = tf.variableGrads(() => {
      const r = core.forward(xs, state, es);
      disposeState(r.state);
      return tf.mean(tf.square(r.ys)) as tf.Scalar;
    }, core.trainableVariables());
    return [value, ...Object.values(grads)];
  };
  const name = `HQLT-sync fwd+bwd, B=${B} T=${T} D=${D} L=2 H=4 S=${size.window}`;
  const p = await profileKernels(pass);
  console.log(`\n--profile: ${name}: ${p.wallMs.toFixed(2)} ms per pass (wall, awaited) = ${Math.round((B * T) / (p.wallMs / 1000))} tokens/s`);
  if (p.timestamps && p.timestampsByShape) {
    console.log(`GPU time per kernel name (timestamp queries, one pass):\n${formatKernelTimes(p.timestamps)}`);
    console.log(`GPU time per kernel name and input shapes:\n${formatKernelTimes(p.timestampsByShape, 20)}`);
  } else console.log(`GPU timestamps: not available on this device (${tf.getBackend()}${tf.getBackend() === 'webgpu' ? ", no 'timestamp-query' feature" : ''}); isolated timings only.`);
  console.log(`Each kernel call replayed in isolation (wall time per call up to a readback, times calls):\n${formatKernelTimes(p.isolated)}`);
  report.profile = { size: name, wallMs: p.wallMs, timestampsAvailable: timestampsAvailable(), timestamps: p.timestamps, timestampsByShape: p.timestampsByShape, isolated: p.isolated };
  tf.dispose([xs, es]);
  disposeState(state);
  core.dispose();
}

if (values.profile) {
  const batch = Number(values['profile-batch']);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`--profile-batch takes a positive integer, got '${values['profile-batch']}'`);
  await profileTraining(values.smoke ? { batch: 4, seqLen: 64, dim: 64, window: 16 } : { batch, seqLen: 256, dim: 256, window: 64 });
}

const figures: Record<string, unknown>[] = [];
for (const mode of values.fused!.split(',').filter(Boolean)) {
  if (mode !== 'on' && mode !== 'off') throw new Error(`--fused takes 'on' and/or 'off', got '${mode}'`);
  setFusedKernels(mode === 'on');
  const counts = await kernelCounts();
  const errorsBefore = webgpuErrorCount();
  // --smoke shrinks the throughput figure (B=4 T=64 D=64 S=16) so the script can be checked on a software adapter.
  const size = values.smoke ? { batch: 4, seqLen: 64, dim: 64, window: 16 } : { batch: 64, seqLen: 256, dim: 256, window: 64 };
  const sizeName = `B=${size.batch} T=${size.seqLen} D=${size.dim} L=2 H=4 S=${size.window}`;
  const [train, gruTrain] = await benchCores({
    backend: values.backend, types: ['hqlt-sync', 'gru'], ...size, layers: 2, heads: 4, steps: 20, warmup: 3, passes: 3, warmupPasses: 3, warmupSeconds: 3, out: '',
  });
  const valid = webgpuErrorCount() === errorsBefore;
  const lines: [string, number | null, string][] = [
    ['acting step kernels (tf.profile), 2-layer HQLT D=64 H=4 S=16 B=64', counts.stepKernels!, '<= 24'],
    ['acting step GPU dispatches, same core', counts.stepDispatches, ''],
    ['fwd+bwd kernels (tf.profile), same core, T=48', counts.trainKernels!, '<= 400'],
    ['fwd+bwd GPU dispatches, same core, T=48', counts.trainDispatches, ''],
    [`HQLT-sync fwd+bwd tokens/s, ${sizeName}`, valid ? Math.round(train!.trainTokensPerSecond) : null, values.smoke ? '' : '>= 600000'],
    [`HQLT-sync acting step ms, ${sizeName}`, valid ? train!.stepMs : null, ''],
    ['GRU fwd+bwd kernels (tf.profile), 2-layer GRU D=64 B=64 T=48', counts.gruTrainKernels!, ''],
    ['GRU fwd+bwd GPU dispatches, same core', counts.gruTrainDispatches, ''],
    [`GRU fwd+bwd tokens/s, B=${size.batch} T=${size.seqLen} D=${size.dim} L=2`, valid ? Math.round(gruTrain!.trainTokensPerSecond) : null, values.smoke ? '' : '>= 500000'],
  ];
  for (const [figure, value, target] of lines) {
    const line = { figure, fused: mode, value, target };
    figures.push(line);
    console.log(JSON.stringify(line));
  }
}
setFusedKernels(true);
report.figures = figures;
const out = values.out ?? join('bench', 'results', `gpu-${info.active}.json`);
const writeReport = () => {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
};
if (values['figures-only']) {
  writeReport();
  console.log(`wrote ${out}`);
  process.exit(0);
}
// `tiny` is a smoke test of the script itself (e.g. on a software adapter).
const SIZES: Record<string, { batch: number; dim: number }> = {
  tiny: { batch: 2, dim: 32 },
  small: { batch: 64, dim: 256 },
  batch5: { batch: 320, dim: 256 },
  batch10: { batch: 640, dim: 256 },
};
const cores: Record<string, unknown> = {};
for (const size of values.sizes!.split(',').filter(Boolean)) {
  const s = SIZES[size];
  if (!s) throw new Error(`Unknown size '${size}' (${Object.keys(SIZES).join(', ')}).`);
  for (const type of values.types!.split(',')) {
    const errorsBefore = webgpuErrorCount();
    const [result] = await benchCores({
      backend: values.backend, types: [type], batch: s.batch, seqLen: 256, dim: s.dim, layers: 2, heads: 4,
      window: 64, steps: 20, warmup: 3, passes: 3, warmupPasses: 3, warmupSeconds: 3, out: '',
    });
    const gpuErrors = webgpuErrorCount() - errorsBefore;
    if (gpuErrors > 0) console.log(`  ${type} at ${size}: ${gpuErrors} GPU errors (e.g. out of memory): timings invalid`);
    ((cores[size] ??= []) as unknown[]).push({ ...s, ...result, gpuErrors, valid: gpuErrors === 0 });
  }
}
report.cores = cores;

/**
 * PPO env-steps/s of the default agent on RepeatPreviousEasy at each `--ppo-envs` count, then the same updates
 * again with a synchronising `PhaseTimer`: where each millisecond of an update goes (the waits for the GPU land in
 * the phase that dispatched the work, so that pass runs a little slower than the timed one).
 */
async function benchPpo(numEnvs: number, updates: number): Promise<Record<string, unknown>> {
  const config = ppoConfig(values.backend, numEnvs, numEnvs * 64 * (2 * updates + 1));
  const { agent, env } = await buildAgent(config);
  const trainer = new PpoTrainer(agent, env, ppoSettings(config), 1);
  await trainer.start(1);
  await trainer.iterate(); // warm-up: shader compilation
  const t0 = performance.now();
  for (let i = 0; i < updates; i++) await trainer.iterate();
  const updateMs = (performance.now() - t0) / updates;
  const sps = (numEnvs * 64) / (updateMs / 1000);
  trainer.timer = new PhaseTimer(true);
  for (let i = 0; i < updates; i++) await trainer.iterate();
  console.log(JSON.stringify({ figure: `PPO env-steps/s, ${numEnvs} envs, RepeatPreviousEasy, default agent`, value: Math.round(sps), target: numEnvs === 4096 ? '>= 500000' : '' }));
  console.log(`PPO ${numEnvs} envs: ${updateMs.toFixed(1)} ms per update (${numEnvs} × 64 steps); breakdown per update (synchronised pass):\n${trainer.timer.format(updates)}`);
  const breakdown = trainer.timer.report().map((r) => ({ ...r, ms: r.ms / updates }));
  // One acting step of the agent = the phases inside agent.act (encode, upload + dispatch, readback, sampling).
  const acting = trainer.timer.report().filter((r) => (Object.values(ACT_PHASES) as string[]).includes(r.phase));
  const actMs = acting.reduce((sum, r) => sum + r.ms, 0) / (acting[0]?.calls ?? 1);
  console.log(JSON.stringify({ figure: `acting step of the default agent (encode, upload, dispatch, readback, sample), ms, ${numEnvs} envs`, value: actMs, target: numEnvs === 4096 ? '<= 2' : '' }));
  trainer.dispose();
  agent.dispose();
  await env.close();
  return { numEnvs, rollout: 64, seqLen: 16, core: config.core, updateMs, envStepsPerSecond: sps, actStepMs: actMs, breakdownMsPerUpdate: breakdown };
}

const updates = Number(values['ppo-updates']);
if (updates > 0) {
  const runs = [];
  for (const n of values['ppo-envs']!.split(',').filter(Boolean)) runs.push(await benchPpo(Number(n), updates));
  report.ppo = runs;
}
writeReport();
console.log(`wrote ${out}`);
process.exit(0); // Dawn keeps the event loop alive
