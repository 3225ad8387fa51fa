/**
 * Reuses tfjs' per-dispatch WebGPU objects (issue 11: host-side dispatch cost dominates PPO on a GPU).
 *
 * For every kernel launch tfjs writes a fresh uniform buffer (shapes and sizes) and creates a bind group. On the
 * H200's host `createBindGroup` alone costs about 23 µs of the 60–80 µs a small op takes (`bench/dispatch.ts`;
 * the README gives the figures). Both repeat: an op's uniforms depend only on
 * its shapes, and tfjs' buffer pool hands the same buffers to the same ops update after update. So:
 * - uniform buffers are cached by content, written once and never written again (read-only from then on);
 * - bind groups are cached by pipeline layout and bound buffers.
 * Pooled storage buffers are never destroyed while the backend lives (tfjs returns them to its pool), so a cached
 * bind group only ever refers to live buffers; both caches are bounded.
 */

interface GpuBuffer {
  readonly size: number;
  readonly usage: number;
}
type Resource = { buffer?: GpuBuffer; offset?: number; size?: number };
interface BindGroupDescriptor {
  layout: object;
  entries: { binding: number; resource: Resource }[];
}
interface Pipeline {
  getBindGroupLayout(index: number): object;
}
interface ProgramUniform {
  type: string;
  data: ArrayLike<number>;
}
/** The parts of tfjs' WebGPU backend used here (not in its public typings). */
export interface DispatchingBackend {
  device: { createBindGroup(descriptor: BindGroupDescriptor): object };
  bufferManager: { freeBuffers: Map<string, GpuBuffer[]>; releaseBuffer(buffer: GpuBuffer, reuse?: boolean): void };
  makeUniforms(uniforms: ProgramUniform[]): Resource;
  uniformPendingDisposal: GpuBuffer[];
  recordAndSubmit(program: { pipeline: Pipeline }, ...rest: unknown[]): void;
  bindGroupCache?: BindGroupStats;
}

/** Hits and misses of the caches since they were installed (tests check that steady loops hit). */
export interface BindGroupStats {
  bindGroupHits: number;
  bindGroupMisses: number;
  uniformHits: number;
  uniformMisses: number;
}

const MAX_BIND_GROUPS = 16384;
const MAX_UNIFORMS = 4096;

/** The caches' counters on the active backend (null where they are not installed). */
export function bindGroupCacheStats(backend: unknown): BindGroupStats | null {
  return (backend as Partial<DispatchingBackend>).bindGroupCache ?? null;
}

/** Installs the caches on tfjs' WebGPU backend (once); returns their counters. */
export function cacheBindGroups(backend: DispatchingBackend): BindGroupStats {
  if (backend.bindGroupCache) return backend.bindGroupCache;
  const stats: BindGroupStats = { bindGroupHits: 0, bindGroupMisses: 0, uniformHits: 0, uniformMisses: 0 };
  backend.bindGroupCache = stats;

  // tfjs asks the pipeline for its layout on every dispatch, and each call returns a new object: one per pipeline
  // gives the bind-group key a stable layout identity.
  const layouts = new WeakSet<Pipeline>();
  const record = backend.recordAndSubmit.bind(backend);
  backend.recordAndSubmit = (program, ...rest) => {
    const pipeline = program.pipeline;
    if (!layouts.has(pipeline)) {
      const layout = pipeline.getBindGroupLayout(0);
      pipeline.getBindGroupLayout = (index) => (index === 0 ? layout : Object.getPrototypeOf(pipeline).getBindGroupLayout.call(pipeline, index));
      layouts.add(pipeline);
    }
    record(program, ...rest);
  };

  const uniforms = new Map<string, Resource>();
  const makeUniforms = backend.makeUniforms.bind(backend);
  backend.makeUniforms = (programUniform) => {
    const key = programUniform.map((u) => `${u.type[0]}${Array.prototype.join.call(u.data, ',')}`).join(';');
    const hit = uniforms.get(key);
    if (hit) {
      stats.uniformHits++;
      return hit;
    }
    stats.uniformMisses++;
    const made = makeUniforms(programUniform);
    if (uniforms.size < MAX_UNIFORMS) {
      // Keep it out of the pool: tfjs would release it after the submit and hand it to other uniforms.
      backend.uniformPendingDisposal.pop();
      uniforms.set(key, made);
    }
    return made;
  };

  const ids = new WeakMap<object, number>();
  let nextId = 0;
  const idOf = (o: object) => {
    let id = ids.get(o);
    if (id === undefined) ids.set(o, (id = nextId++));
    return id;
  };
  // tfjs' pool hands out the buffer freed last; which one that is depends on the order of earlier frees, so the
  // same op got different buffers each update and only about half of the bind groups repeated. Handing out the
  // lowest-numbered free buffer instead makes the assignment depend only on which buffers are free.
  const manager = backend.bufferManager;
  const release = manager.releaseBuffer.bind(manager);
  manager.releaseBuffer = (buffer, reuse) => {
    release(buffer, reuse);
    // (tfjs' pool key of a buffer.)
    const free = manager.freeBuffers.get(`${buffer.size}_${buffer.usage}`);
    if (!free || free[free.length - 1] !== buffer) return;
    // Keep the list in decreasing id order, so pop() takes the lowest.
    const id = idOf(buffer);
    let i = free.length - 1;
    while (i > 0 && idOf(free[i - 1]!) < id) {
      free[i] = free[i - 1]!;
      i--;
    }
    free[i] = buffer;
  };

  const groups = new Map<string, object>();
  const device = backend.device;
  const createBindGroup = device.createBindGroup.bind(device);
  device.createBindGroup = (descriptor) => {
    let key = `${idOf(descriptor.layout)}`;
    for (const { resource: r } of descriptor.entries) {
      if (!r.buffer) return createBindGroup(descriptor); // texture views and the like: not cached
      key += `|${idOf(r.buffer)}:${r.offset ?? ''}:${r.size ?? ''}`;
    }
    const hit = groups.get(key);
    if (hit) {
      stats.bindGroupHits++;
      return hit;
    }
    stats.bindGroupMisses++;
    if (groups.size >= MAX_BIND_GROUPS) groups.clear();
    const group = createBindGroup(descriptor);
    groups.set(key, group);
    return group;
  };
  return stats;
}
