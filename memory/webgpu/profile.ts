/**
 * Where the GPU time of a piece of tensor work goes, per kernel name (tfjs ops and the fused kernels alike).
 *
 * Two measurements: WebGPU timestamp queries through `tf.profile` (exact GPU time per dispatch; needs the device
 * feature 'timestamp-query', which `initBackend` requests when `HQLT_WEBGPU_TIMESTAMPS=1`), and a replay that runs
 * every recorded kernel call again in isolation, N times back to back, timed by wall clock up to a 1-element
 * readback (works on any backend; for tiny kernels it measures the CPU cost of a dispatch, which is real cost too).
 */
import * as tf from '@tensorflow/tfjs';

/** Time of one kernel name over the profiled work. */
export interface KernelTime {
  name: string;
  calls: number;
  /** Summed over the calls. */
  ms: number;
}

export interface KernelProfile {
  /** Wall time of the whole work, awaited (mean of a few runs after a warm-up). */
  wallMs: number;
  /** Per kernel name from GPU timestamps, sorted by time; null when the device has no timestamp queries. */
  timestamps: KernelTime[] | null;
  /** Per kernel name and input shapes from GPU timestamps (which product shapes cost the time), sorted by time. */
  timestampsByShape: KernelTime[] | null;
  /** Per kernel name from the isolated replay, sorted by time. */
  isolated: KernelTime[];
}

interface RecordedCall {
  name: string;
  inputs: tf.NamedTensorMap;
  attrs: tf.NamedAttrMap;
}

type RunKernel = (name: string, inputs: tf.NamedTensorMap, attrs?: tf.NamedAttrMap) => tf.Tensor | tf.Tensor[];

/** Whether the active backend times kernels with GPU timestamps (WebGPU with 'timestamp-query'). */
export function timestampsAvailable(): boolean {
  return tf.getBackend() === 'webgpu' && (tf.backend() as unknown as { supportTimestampQuery?: boolean }).supportTimestampQuery === true;
}

const asList = (t: tf.Tensor | tf.Tensor[]): tf.Tensor[] => (Array.isArray(t) ? t : [t]);

/** Waits for all queued GPU work up to now: reading one element is ordered after everything submitted before. */
async function sync(ts: tf.Tensor[]): Promise<void> {
  const t = ts.find((x) => x.size > 0 && x.dtype !== 'string' && x.dtype !== 'complex64');
  if (!t) return;
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), 0, 1));
  await one.data();
  one.dispose();
}

function sortedTimes(entries: Map<string, KernelTime>): KernelTime[] {
  return [...entries.values()].sort((a, b) => b.ms - a.ms);
}

/** Records the top-level kernel calls of `f` (inputs kept alive as clones, which share the data). */
function record(f: () => tf.Tensor[]): RecordedCall[] {
  const engine = tf.engine() as unknown as { runKernel: RunKernel };
  const original = engine.runKernel;
  const calls: RecordedCall[] = [];
  let depth = 0;
  engine.runKernel = function (this: unknown, name, inputs, attrs = {}) {
    if (depth === 0) {
      depth++;
      try {
        // Concat and AddN take an array of tensors rather than a map: keep the structure.
        const clone = (t: tf.Tensor) => tf.keep(original.call(engine, 'Identity', { x: t }, {}) as tf.Tensor);
        const kept = Array.isArray(inputs)
          ? (inputs as tf.Tensor[]).map(clone)
          : Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, clone(t)]));
        calls.push({ name, inputs: kept as tf.NamedTensorMap, attrs: { ...attrs } });
      } finally {
        depth--;
      }
    }
    depth++;
    try {
      return original.call(engine, name, inputs, attrs);
    } finally {
      depth--;
    }
  };
  try {
    tf.dispose(f());
  } finally {
    engine.runKernel = original;
  }
  return calls;
}

/** Mean ms of one call of `c`, replayed back to back about `targetMs` long in all. */
async function replay(c: RecordedCall, targetMs: number): Promise<number> {
  const engine = tf.engine() as unknown as { runKernel: RunKernel };
  const run = (n: number) => {
    let last: tf.Tensor[] = [];
    for (let i = 0; i < n; i++) {
      tf.dispose(last);
      last = asList(engine.runKernel(c.name, c.inputs, c.attrs));
    }
    return last;
  };
  const timed = async (n: number) => {
    await sync(Object.values(c.inputs));
    const t0 = performance.now();
    const outs = run(n);
    await sync(outs);
    const ms = performance.now() - t0;
    tf.dispose(outs);
    return ms;
  };
  await timed(1); // compilation
  const once = Math.max(await timed(1), 1e-3);
  const reps = Math.min(50, Math.max(3, Math.ceil(targetMs / once)));
  // The readback itself costs about one round trip: measured as a zero-rep run and taken off.
  const overhead = await timed(0);
  return Math.max(0, (await timed(reps)) - overhead) / reps;
}

/**
 * Profiles `f` (which returns the tensors it leaves, disposed here): wall time, GPU time per kernel name from
 * timestamps when available, and the isolated replay of every kernel call. Call it with shaders compiled (after a
 * warm-up run of `f`).
 */
export async function profileKernels(f: () => tf.Tensor[], options: { runs?: number; replayMs?: number } = {}): Promise<KernelProfile> {
  const runs = options.runs ?? 3;
  tf.dispose(f());
  let start = performance.now();
  for (let i = 0; i < runs; i++) {
    const outs = f();
    if (i === runs - 1) await sync(outs);
    tf.dispose(outs);
  }
  const wallMs = (performance.now() - start) / runs;

  let timestamps: KernelTime[] | null = null;
  let timestampsByShape: KernelTime[] | null = null;
  if (timestampsAvailable()) {
    const profile = await tf.profile(() => tf.dispose(f()));
    const byName = new Map<string, KernelTime>();
    const byShape = new Map<string, KernelTime>();
    for (const k of profile.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const shapes = `${k.name} ${k.inputShapes.map((s) => `[${s ?? ''}]`).join('')}`;
      for (const [map, name] of [[byName, k.name], [byShape, shapes]] as const) {
        const entry = map.get(name) ?? { name, calls: 0, ms: 0 };
        entry.calls++;
        entry.ms += ms;
        map.set(name, entry);
      }
    }
    timestamps = sortedTimes(byName);
    timestampsByShape = sortedTimes(byShape);
  }

  const calls = record(f);
  const bySignature = new Map<string, { call: RecordedCall; count: number }>();
  for (const c of calls) {
    const shapes = Object.entries(c.inputs).map(([k, t]) => `${k}:${t.dtype}[${t.shape}]`);
    const key = `${c.name}|${shapes.join(',')}|${JSON.stringify(c.attrs)}`;
    const entry = bySignature.get(key);
    if (entry) entry.count++;
    else bySignature.set(key, { call: c, count: 1 });
  }
  const isolated = new Map<string, KernelTime>();
  start = performance.now();
  for (const { call, count } of bySignature.values()) {
    const ms = await replay(call, options.replayMs ?? 20);
    const entry = isolated.get(call.name) ?? { name: call.name, calls: 0, ms: 0 };
    entry.calls += count;
    entry.ms += ms * count;
    isolated.set(call.name, entry);
  }
  for (const c of calls) tf.dispose(Object.values(c.inputs));
  return { wallMs, timestamps, timestampsByShape, isolated: sortedTimes(isolated) };
}

/** A table of kernel times: name, calls, total ms, share of the sum, ms per call. */
export function formatKernelTimes(times: KernelTime[], limit = 30): string {
  const total = times.reduce((s, t) => s + t.ms, 0);
  const width = Math.max(34, ...times.slice(0, limit).map((t) => t.name.length));
  const lines = [`${'kernel'.padEnd(width)} ${'calls'.padStart(6)} ${'total ms'.padStart(10)} ${'share'.padStart(7)} ${'ms/call'.padStart(9)}`];
  const row = (name: string, calls: number, ms: number) =>
    `${name.padEnd(width)} ${String(calls).padStart(6)} ${ms.toFixed(3).padStart(10)} ${`${((100 * ms) / Math.max(total, 1e-9)).toFixed(1)}%`.padStart(7)} ${(ms / Math.max(calls, 1)).toFixed(4).padStart(9)}`;
  for (const t of times.slice(0, limit)) lines.push(row(t.name, t.calls, t.ms));
  const rest = times.slice(limit);
  if (rest.length) lines.push(row(`(${rest.length} others)`, rest.reduce((s, t) => s + t.calls, 0), rest.reduce((s, t) => s + t.ms, 0)));
  lines.push(row('sum', times.reduce((s, t) => s + t.calls, 0), total));
  return lines.join('\n');
}
