/**
 * Runs hand-written WGSL compute shaders through tfjs' WebGPU backend, with any number of outputs.
 *
 * tfjs' own programs write one output buffer and wrap the user code in generated bindings. The fused kernels here
 * write several tensors per dispatch (outputs, next states), so the whole shader is generated here: binding 0 is the
 * first output, then the inputs (read-only), then the other outputs (read_write), then the uniform buffer tfjs
 * always binds. The dispatch itself goes through the backend's `recordAndSubmit`, so command batching, buffer
 * lifetimes and profiling behave as for any tfjs kernel. Sizes are baked into the shader source as constants (the
 * pipeline cache key includes them), so no uniforms are needed.
 */
import * as tf from '@tensorflow/tfjs';

/** A compute program: bindings plus the body of `fn main(wg: u32, lid: u32)`. */
export interface FusedProgram {
  /** Unique for the generated source: kernel name plus every baked constant. */
  key: string;
  /** Read-only input buffers (f32, named `in_<name>` in WGSL), in the order tensors are passed. */
  inputs: readonly string[];
  /** Output buffers (f32, named `out_<name>` in WGSL) and their shapes, in the order they are returned. */
  outputs: readonly { name: string; shape: number[] }[];
  /** Invocations per workgroup (one-dimensional). */
  workgroupSize: number;
  /** Number of workgroups (spread over x and y when above the per-dimension limit). */
  workgroups: number;
  /** WGSL directives the source needs (`enable f16;` ...), placed before every declaration. */
  directives?: string;
  /**
   * WGSL: constants, workgroup variables, helper functions and `fn main(wg: u32, lid: u32)`, called with the
   * flat workgroup index and the local invocation index.
   */
  source: string;
}

/** The parts of tfjs' WebGPU backend used here (not in its public typings). */
interface WebgpuBackend {
  device: GpuDevice;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  uploadToGPU(dataId: tf.DataId): void;
  recordAndSubmit(program: object, output: tf.TensorInfo, inputs: tf.TensorInfo[]): void;
}
interface GpuDevice {
  limits: { maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number; maxComputeWorkgroupsPerDimension: number; maxStorageBuffersPerShaderStage: number };
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
  createComputePipeline(descriptor: { compute: { module: unknown; entryPoint: string }; layout: 'auto'; label?: string }): unknown;
}

const pipelines = new WeakMap<object, Map<string, unknown>>();
let dispatchCount = 0;

/** Dispatches issued by fused programs so far (tests and benchmarks count kernels with it). */
export function fusedDispatchCount(): number {
  return dispatchCount;
}

/** The device limits that decide whether a fused kernel fits (null when the active backend is not WebGPU). */
export function webgpuLimits(): GpuDevice['limits'] | null {
  if (tf.getBackend() !== 'webgpu') return null;
  return (tf.backend() as unknown as WebgpuBackend).device.limits;
}

/** Whether a program with these needs can run on the active WebGPU device. */
export function fits(sharedBytes: number, workgroupSize: number, buffers: number): boolean {
  const limits = webgpuLimits();
  return (
    limits !== null &&
    sharedBytes <= limits.maxComputeWorkgroupStorageSize &&
    workgroupSize <= limits.maxComputeInvocationsPerWorkgroup &&
    buffers <= limits.maxStorageBuffersPerShaderStage
  );
}

/** The whole WGSL module of a program: its bindings, its source and the entry point that calls `main`. */
export function shaderSource(p: FusedProgram): string {
  const [first, ...rest] = p.outputs;
  const names = [`out_${first!.name}`, ...p.inputs.map((n) => `in_${n}`), ...rest.map((o) => `out_${o.name}`)];
  const decl = names.map((name, i) => {
    const access = i === 0 || i > p.inputs.length ? 'read_write' : 'read';
    return `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<f32>;`;
  });
  // Every binding must be statically used, or the 'auto' layout drops it and the bind group no longer matches.
  const uses = names.map((n) => `  _ = ${n}[0];`).join('\n');
  return `${p.directives ?? ''}
${decl.join('\n')}
struct Uniforms { raw: vec4<u32> };
@group(0) @binding(${names.length}) var<uniform> uniforms: Uniforms;

${p.source}

@compute @workgroup_size(${p.workgroupSize})
fn _start(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  _ = uniforms.raw;
${uses}
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= ${p.workgroups}u) { return; }
  main(wg, lid);
}
`;
}

/**
 * Runs `program` on `inputs` (float32 tensors on the WebGPU backend) and returns its outputs as new tensor infos
 * owned by the caller (a kernel function returns them to the engine).
 */
export function runProgram(backendIn: unknown, program: FusedProgram, inputs: tf.TensorInfo[]): tf.TensorInfo[] {
  const backend = backendIn as unknown as WebgpuBackend;
  if (inputs.length !== program.inputs.length)
    throw new Error(`${program.key}: expected ${program.inputs.length} inputs, got ${inputs.length}`);
  for (const [i, t] of inputs.entries())
    if (t.dtype !== 'float32') throw new Error(`${program.key}: input '${program.inputs[i]}' must be float32, got ${t.dtype}`);
  let cache = pipelines.get(backend);
  if (!cache) pipelines.set(backend, (cache = new Map()));
  let pipeline = cache.get(program.key);
  if (!pipeline) {
    const module = backend.device.createShaderModule({ code: shaderSource(program), label: program.key });
    pipeline = backend.device.createComputePipeline({ compute: { module, entryPoint: '_start' }, layout: 'auto', label: program.key });
    cache.set(program.key, pipeline);
  }
  const outputs = program.outputs.map((o) => backend.makeTensorInfo(o.shape, 'float32'));
  for (const t of [...inputs, ...outputs]) backend.uploadToGPU(t.dataId);
  const maxPerDim = backend.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(program.workgroups, maxPerDim);
  const dispatch = [x, Math.ceil(program.workgroups / x), 1];
  // recordAndSubmit binds [output, ...inputs, uniforms]: the other outputs travel as trailing "inputs".
  const record = { key: program.key, pipeline, dispatch, workgroupSize: [program.workgroupSize, 1, 1] };
  backend.recordAndSubmit(record, outputs[0]!, [...inputs, ...outputs.slice(1)]);
  dispatchCount++;
  return outputs;
}

interface Disposer {
  disposeData(dataId: tf.DataId): void;
}

/**
 * Registers `name` as a WebGPU kernel running the program `make` builds for its inputs and attributes. It returns
 * the program's first `keep` outputs (default: all), one tensor when that is one; the rest are scratch, freed at once.
 */
export function registerProgramKernel(
  name: string,
  make: (inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap) => FusedProgram,
  keep?: number,
): void {
  tf.registerKernel({
    kernelName: name,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const p = make(inputs, attrs ?? {});
      const outs = runProgram(backend, p, p.inputs.map((n) => inputs[n]!));
      const kept = outs.slice(0, keep ?? outs.length);
      for (const scratch of outs.slice(kept.length)) (backend as Disposer).disposeData(scratch.dataId);
      return kept.length === 1 ? kept[0]! : kept;
    },
  });
}
