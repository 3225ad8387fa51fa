/**
 * Host cost of one WebGPU dispatch, piece by piece (issue 11: tfjs' host-side dispatch bounds PPO on a GPU):
 *
 *   node dist/bench/dispatch.js          (HQLT_WEBGPU_ADAPTER=software runs it without a GPU)
 *
 * Times, in µs per call, the Dawn calls tfjs makes for every kernel launch (a bind group layout lookup, a uniform
 * write, a bind group, the encoding, an empty submit) and a whole small op through tfjs (`tf.add` of 1,024 floats).
 * With HQLT_BIND_GROUP_CACHE=0 the Dawn figures are Dawn's own (the dispatch caches of memory/webgpu/bind-groups.ts
 * wrap the layout lookup and `createBindGroup`); the `tf.add` figure with and without it is what the caches save.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../memory/backend.js';

/** The parts of Dawn's and tfjs' WebGPU objects timed here (not in tfjs' public typings). */
interface Gpu {
  createBuffer(d: { size: number; usage: number }): object;
  createBindGroup(d: { layout: object; entries: { binding: number; resource: { buffer: object } }[] }): object;
  createCommandEncoder(): { beginComputePass(): Pass; finish(): object };
  queue: { writeBuffer(b: object, offset: number, data: ArrayBufferView): void; submit(c: object[]): void };
}
interface Pass {
  setPipeline(p: object): void;
  setBindGroup(i: number, g: object): void;
  dispatchWorkgroups(x: number, y: number, z: number): void;
  end(): void;
}
interface Pipeline {
  getBindGroupLayout(i: number): object;
}
declare const GPUBufferUsage: Record<'STORAGE' | 'UNIFORM' | 'COPY_DST', number>;

const info = await initBackend('webgpu');
if (info.active !== 'webgpu') throw new Error('bench/dispatch: needs WebGPU (a GPU, or HQLT_WEBGPU_ADAPTER=software).');
const backend = tf.backend() as unknown as {
  device: Gpu;
  pipelineCache: Record<string, Pipeline>;
  bufferManager: { acquireBuffer(size: number, usage: number): object; releaseBuffer(b: object): void };
};
const device = backend.device;
const x = tf.ones([1024]);
await tf.add(x, x).data(); // compiles the Add pipeline
const pipeline = Object.values(backend.pipelineCache)[0]!;

const results: Record<string, number> = {};
function time(name: string, n: number, f: () => void): void {
  for (let i = 0; i < 100; i++) f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  results[name] = ((performance.now() - t0) / n) * 1000;
  console.log(`${name.padEnd(48)} ${results[name]!.toFixed(2).padStart(8)} µs`);
}

const layout = pipeline.getBindGroupLayout(0);
const storage = () => device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE });
const uniform = device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
const entries = [storage(), storage(), storage(), uniform].map((buffer, binding) => ({ binding, resource: { buffer } }));
const group = device.createBindGroup({ layout, entries });
time('pipeline.getBindGroupLayout(0)', 5000, () => pipeline.getBindGroupLayout(0));
time('queue.writeBuffer, 64 bytes (a uniform)', 5000, () => device.queue.writeBuffer(uniform, 0, new Int32Array(16)));
time("tfjs' pool: acquire + release a uniform buffer", 5000, () => {
  const usage = GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
  backend.bufferManager.releaseBuffer(backend.bufferManager.acquireBuffer(64, usage));
});
time('device.createBindGroup, 4 entries', 5000, () => device.createBindGroup({ layout, entries }));
const encoder = device.createCommandEncoder();
const pass = encoder.beginComputePass();
time('setPipeline + setBindGroup + dispatchWorkgroups', 5000, () => {
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(1, 1, 1);
});
pass.end();
device.queue.submit([encoder.finish()]);
time('encoder + pass + finish + submit (empty)', 2000, () => {
  const e = device.createCommandEncoder();
  e.beginComputePass().end();
  device.queue.submit([e.finish()]);
});
time(`tf.add of 1,024 floats + dispose (bind group cache ${process.env.HQLT_BIND_GROUP_CACHE === '0' ? 'off' : 'on'})`, 3000, () =>
  tf.add(x, x).dispose(),
);
await tf.add(x, x).data();
x.dispose();
process.exit(0); // Dawn keeps the event loop alive
