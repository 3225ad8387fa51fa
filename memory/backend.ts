/**
 * Tensor backend selection: the one place that decides which TensorFlow.js backend runs.
 *
 * `auto` prefers the native TensorFlow GPU bindings when installed, then WebGPU on a hardware GPU adapter (Dawn's
 * Node bindings, `webgpu` + `@tensorflow/tfjs-backend-webgpu`), then the native CPU bindings, then WebAssembly,
 * then the plain JavaScript CPU backend. The native bindings download libtensorflow at install time, so they and
 * the WebGPU packages are optional.
 */
import * as tf from '@tensorflow/tfjs';
import { installFastWasmSlice } from './ops.js';
import { cacheBindGroups, type DispatchingBackend } from './webgpu/bind-groups.js';
import { splitLongReductions } from './webgpu/reductions.js';
import { deterministicMatMul } from './webgpu/matmul.js';
import { checkTensorCores, tensorCores, useTensorCores, type MatrixShape } from './webgpu/gemm.js';
import { wrapKernel } from './kernels.js';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const BACKEND_NAMES = ['auto', 'wasm', 'cpu', 'webgpu', 'tensorflow', 'tensorflow-gpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What `initBackend` settled on. */
export interface BackendInfo {
  /** The name the user asked for (`auto` included). */
  requested: BackendName;
  /** tfjs' own name of the active backend (`wasm`, `cpu`, `tensorflow`, ...). */
  active: string;
  /** Relevant tfjs environment flags of the active backend. */
  flags: Record<string, unknown>;
  /** The precision of the large matrix products, and the subgroup matrices that run them in f16 (else null). */
  precision: Precision;
  tensorCores: MatrixShape | null;
}

const require = createRequire(import.meta.url);

const INSTALL_HINT: Record<Exclude<BackendName, 'auto'>, string> = {
  wasm: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0',
  webgpu:
    'npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0, on a machine with a Vulkan GPU driver ' +
    '(or Mesa for the software adapter: apt-get install libegl-mesa0 libgl1-mesa-dri, with HQLT_WEBGPU_ADAPTER=software)',
  cpu: '(built in; if this fails the @tensorflow/tfjs install is broken: reinstall it)',
  tensorflow: 'npm install @tensorflow/tfjs-node@4.22.0 (downloads libtensorflow at install time: needs internet)',
  'tensorflow-gpu':
    'npm install @tensorflow/tfjs-node-gpu@4.22.0 (downloads libtensorflow at install time and needs CUDA 11)',
};
const PACKAGE: Record<string, string> = {
  wasm: '@tensorflow/tfjs-backend-wasm',
  tensorflow: '@tensorflow/tfjs-node',
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
};
/** tfjs registers tfjs-node and tfjs-node-gpu both under the name `tensorflow`. */
const TF_NAME: Record<Exclude<BackendName, 'auto'>, string> = {
  wasm: 'wasm',
  cpu: 'cpu',
  webgpu: 'webgpu',
  tensorflow: 'tensorflow',
  'tensorflow-gpu': 'tensorflow',
};

/** Number formats of the large matrix products on WebGPU: f32, or f16 operands with f32 sums on tensor cores. */
export const PRECISIONS = ['f32', 'f16'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Parses a precision from a flag or environment variable, with a clear error for anything else. */
export function parsePrecision(name: string): Precision {
  if ((PRECISIONS as readonly string[]).includes(name)) return name as Precision;
  throw new Error(`Unknown precision '${name}'. Choose one of: ${PRECISIONS.join(', ')}.`);
}

/** Parses a backend name from a flag or environment variable, with a clear error for anything else. */
export function parseBackendName(name: string): BackendName {
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new Error(`Unknown backend '${name}'. Choose one of: ${BACKEND_NAMES.join(', ')}.`);
}

function tryLoad(name: Exclude<BackendName, 'auto' | 'cpu'>): boolean {
  try {
    require(PACKAGE[name]);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: Exclude<BackendName, 'auto'>, explicit: boolean, precision: Precision): Promise<boolean> {
  if (name === 'webgpu') {
    const software = explicit && process.env.HQLT_WEBGPU_ADAPTER === 'software';
    // Without a Vulkan loader there is no hardware adapter to find; skip Dawn's noisy failed probe in auto mode.
    if (!explicit && !hasVulkanLoader()) return false;
    return activateWebgpu(software, precision);
  }
  if (precision !== 'f32') return false;
  if (name !== 'cpu' && !tryLoad(name)) return false;
  try {
    return await tf.setBackend(TF_NAME[name]);
  } catch {
    return false;
  }
}

/** The backend `initBackend` last activated, and the precision it started with. */
let activeName: Exclude<BackendName, 'auto'> | undefined;
let activePrecision: Precision = 'f32';

/**
 * Selects and initialises the backend. The name comes from the argument, else `HQLT_BACKEND`, else `auto`; the
 * precision of the large matrix products from the second argument, else `HQLT_PRECISION`, else `f32`.
 * Fails with an install hint when an explicitly requested backend is not available, and with what is missing when
 * `f16` is asked of a backend or GPU that cannot run it.
 */
export async function initBackend(requested?: string, precisionName?: string): Promise<BackendInfo> {
  const name = parseBackendName(requested ?? process.env.HQLT_BACKEND ?? 'auto');
  const precision = parsePrecision(precisionName ?? process.env.HQLT_PRECISION ?? 'f32');
  if (precision === 'f16' && name !== 'webgpu')
    throw new Error(`Precision 'f16' runs matrix products on a GPU's tensor cores through WebGPU: add --backend webgpu, or use --precision f32 (backend '${name}').`);
  // Asking again for the backend in use, or for 'auto' once one is chosen, changes nothing (and must not set up a
  // second Dawn instance).
  if (activeName !== undefined && (name === activeName || name === 'auto') && tf.getBackend() === TF_NAME[activeName]) {
    if (precision !== activePrecision)
      throw new Error(`The ${activeName} backend already runs in precision '${activePrecision}'; it is fixed when the backend starts (asked for '${precision}').`);
    return activeInfo(name);
  }
  const order: Exclude<BackendName, 'auto'>[] =
    name === 'auto' ? ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] : [name];
  for (const candidate of order) {
    if (await activate(candidate, name !== 'auto', precision)) {
      activePrecision = precision;
      await tf.ready();
      if (candidate === 'wasm') installFastWasmSlice();
      activeName = candidate;
      return activeInfo(name);
    }
  }
  if (name === 'auto') throw new Error('No TensorFlow.js backend could be initialised, not even cpu.');
  if (name === 'webgpu') throw new Error(`Backend 'webgpu' is not available: ${webgpuUnavailable(process.env.HQLT_WEBGPU_ADAPTER === 'software')}`);
  throw new Error(`Backend '${name}' is not available. Install it with: ${INSTALL_HINT[name]}`);
}

/**
 * Why WebGPU did not start: the install hint only helps when a package is missing; with both installed, what is
 * missing is the driver (or Mesa, for the software adapter).
 */
function webgpuUnavailable(software: boolean): string {
  const missing = ['webgpu', '@tensorflow/tfjs-backend-webgpu'].filter((pkg) => {
    try {
      require.resolve(pkg);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) return `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed. Install with: ${INSTALL_HINT.webgpu}`;
  const installed = 'the WebGPU packages are installed, but';
  if (software) {
    return `${installed} Mesa's software OpenGL adapter could not be created: install Mesa (Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri).`;
  }
  if (!hasVulkanLoader()) {
    return (
      `${installed} there is no Vulkan driver: the Vulkan loader (libvulkan.so.1) is missing. Install the GPU's Vulkan ` +
      `driver (Debian: apt-get install libvulkan1, plus the NVIDIA driver's Vulkan support or mesa-vulkan-drivers). ` +
      `Without a GPU, HQLT_WEBGPU_ADAPTER=software runs WebGPU on Mesa's software adapter (slow; for testing).`
    );
  }
  return (
    `${installed} no hardware GPU adapter was found (no Vulkan GPU driver answered, or only a software one): check the ` +
    `GPU's Vulkan driver (vulkaninfo --summary lists the devices Vulkan sees).`
  );
}

function activeInfo(requested: BackendName): BackendInfo {
  const tensorCoresOn = activeName === 'webgpu' ? tensorCores() : null;
  return { requested, active: tf.getBackend(), flags: backendFlags(), precision: activePrecision, tensorCores: tensorCoresOn };
}

function backendFlags(): Record<string, unknown> {
  const features = tf.env().features;
  const flags: Record<string, unknown> = {};
  for (const key of Object.keys(features)) if (!key.startsWith('IS_')) flags[key] = features[key];
  return flags;
}

function hasVulkanLoader(): boolean {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':'), '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib'];
  return dirs.some((dir) => dir !== '' && existsSync(join(dir, 'libvulkan.so.1')));
}

/** The parts of Dawn's Node bindings (`webgpu` package) used here. */
interface DawnAdapter {
  limits: Record<(typeof RAISED_LIMITS)[number], number>;
  features: ReadonlySet<string>;
  info?: {
    description?: string;
    vendor?: string;
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    subgroupMatrixConfigs?: readonly { componentType: string; resultComponentType: string; M: number; N: number; K: number }[];
  };
  requestDevice(descriptor?: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<unknown>;
}

/** What f16 products with f32 results on tensor cores need from the device. */
const F16_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'];

/**
 * The adapter's subgroup-matrix shape for f16 operands and f32 results (16 × 16 × 16 where offered), or a clear
 * error saying what the adapter lacks.
 */
function f16Matrices(adapter: DawnAdapter): MatrixShape {
  const info = adapter.info ?? {};
  const missing = F16_FEATURES.filter((f) => !adapter.features.has(f));
  // Where the bindings do not list the shapes, assume NVIDIA's 16 × 16 × 16 (the check before use catches a wrong guess).
  const listed = info.subgroupMatrixConfigs ?? [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }];
  const configs = listed.filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32');
  const sizes = [info.subgroupMinSize, info.subgroupMaxSize];
  const problem = missing.length
    ? `it lacks ${missing.join(', ')}`
    : !configs.length
      ? 'it offers no subgroup matrices with f16 operands and f32 results'
      : sizes[0] !== sizes[1] || !sizes[0]
        ? `its subgroup size varies (${sizes.join(' to ')})`
        : null;
  if (problem)
    throw new Error(`--precision f16 runs matrix products on tensor cores (WebGPU subgroup matrices), but this GPU's adapter (${info.description ?? 'unnamed'}) cannot: ${problem}. Use --precision f32.`);
  const square = configs.find((c) => c.M === 16 && c.N === 16 && c.K === 16) ?? configs[0]!;
  return { M: square.M, N: square.N, K: square.K, subgroup: sizes[0]! };
}
interface DawnGpu {
  requestAdapter(options?: Record<string, unknown>): Promise<DawnAdapter | null>;
}
interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

/**
 * Device limits raised to the adapter's maximum: storage buffers (see `activateWebgpu`), and workgroup memory and
 * size, which the fused kernels (memory/webgpu) use to keep a head's fast-weight matrix on chip.
 */
const RAISED_LIMITS = ['maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const;

/**
 * Sets up Dawn for tfjs' WebGPU backend: a Vulkan adapter (hardware GPU), or Mesa's software OpenGL adapter when
 * `software` is set (useful for CI without a GPU). Raises the storage-buffer limit (tfjs keeps WebGPU's default
 * of 8, and AddN with more inputs silently drops GPU work) and the workgroup limits, and turns off
 * WEBGPU_CPU_FORWARD (else small ops run on the CPU).
 */
async function activateWebgpu(software: boolean, precision: Precision): Promise<boolean> {
  let dawn: DawnModule;
  try {
    dawn = (await import('webgpu' as string)) as DawnModule;
    require.resolve('@tensorflow/tfjs-backend-webgpu');
  } catch {
    return false;
  }
  process.env.EGL_PLATFORM ??= 'surfaceless';
  Object.assign(globalThis, dawn.globals);
  // HQLT_WEBGPU_TIMESTAMPS=1 (bench/gpu.js --profile): expose 'timestamp-query' (tfjs requests it when the adapter
  // has it) and keep Dawn from quantising timestamps, so per-kernel GPU times are exact. f16 products need Dawn's
  // experimental subgroup matrices (an unsafe API) and, on NVIDIA's Vulkan driver, its opt-in to shader-f16.
  const timestamps = process.env.HQLT_WEBGPU_TIMESTAMPS === '1';
  const toggles = [
    ...(timestamps || precision === 'f16' ? ['allow_unsafe_apis'] : []),
    ...(precision === 'f16' ? ['vulkan_enable_f16_on_nvidia'] : []),
  ];
  const gpu = dawn.create([
    software ? 'backend=opengl' : 'backend=vulkan',
    ...(toggles.length ? [`enable-dawn-features=${toggles.join(',')}`] : []),
    ...(timestamps ? ['disable-dawn-features=timestamp_quantization'] : []),
  ]);
  const adapterOptions = software ? { featureLevel: 'compatibility' } : {};
  const probe = await gpu.requestAdapter(adapterOptions).catch(() => null);
  if (!probe) return false;
  if (!software && /llvmpipe|swiftshader|lavapipe/i.test(probe.info?.description ?? '')) return false;
  useTensorCores(precision === 'f16' ? f16Matrices(probe) : null);
  const features = precision === 'f16' ? F16_FEATURES : [];
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  gpu.requestAdapter = async (options = {}) => {
    const adapter = await requestAdapter({ ...options, ...adapterOptions });
    if (!adapter) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    adapter.requestDevice = (descriptor = {}) =>
      requestDevice({
        ...descriptor,
        requiredFeatures: [...new Set([...(descriptor.requiredFeatures ?? []), ...features])],
        requiredLimits: {
          ...(descriptor.requiredLimits ?? {}),
          ...Object.fromEntries(RAISED_LIMITS.map((name) => [name, adapter.limits[name]])),
        },
      });
    return adapter;
  };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true });
  // The backend registers itself on import only if navigator.gpu exists, so import it after the line above.
  require('@tensorflow/tfjs-backend-webgpu');
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  try {
    if (!(await tf.setBackend('webgpu'))) return false;
  } catch {
    return false;
  }
  const device = (tf.backend() as unknown as { device: WebgpuDevice }).device;
  chunkAddN(device.limits.maxStorageBuffersPerShaderStage - 2);
  deviceSideReductionGradients();
  splitLongReductions();
  deterministicMatMul();
  deviceSideZeroGradients();
  uploadThroughQueue(tf.backend() as unknown as UploadingBackend);
  // HQLT_BIND_GROUP_CACHE=0 keeps tfjs' own per-dispatch uniforms and bind groups (for before/after benchmarks).
  if (process.env.HQLT_BIND_GROUP_CACHE !== '0') cacheBindGroups(tf.backend() as unknown as DispatchingBackend);
  // WebGPU reports failed GPU work (out of memory, invalid pipelines) only through this event, and the results are
  // silently wrong; count them so benchmarks and tests can refuse such numbers.
  device.addEventListener?.('uncapturederror', () => gpuErrors++);
  const matrix = tensorCores();
  if (matrix) {
    // Subgroup matrices are an experimental Dawn feature: prove on this device that they mean what the program
    // assumes before any result depends on them.
    const errorsBefore = gpuErrors;
    const worst = await checkTensorCores(matrix);
    if (!(worst <= 1e-3) || gpuErrors > errorsBefore)
      throw new Error(
        `--precision f16: the tensor-core product failed its check on this GPU (largest error ${worst} of Σ|a·b|, 1e-3 allowed` +
          `${gpuErrors > errorsBefore ? `; ${gpuErrors - errorsBefore} GPU errors` : ''}). Use --precision f32.`,
      );
  }
  return true;
}

/** The parts of tfjs' WebGPU backend that `uploadThroughQueue` replaces and uses (not in its public typings). */
interface UploadingBackend {
  tensorMap: { get(dataId: tf.DataId): { resource: unknown; values: unknown; dtype: tf.DataType; shape: number[] } };
  bufferManager: { acquireBuffer(size: number, usage: number): unknown };
  queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBufferView): void };
  uploadToGPU(dataId: tf.DataId): void;
}

/**
 * tfjs uploads host data through a staging buffer of its own per tensor (created, mapped, copied, destroyed),
 * which on a GPU costs more than a small kernel; PPO uploads observations, starts and minibatch arrays every step.
 * `queue.writeBuffer` stages through Dawn's own ring instead. Order is kept: a buffer from the free pool is used by
 * no command that is recorded and not yet submitted (tfjs defers freeing those), and the write is queued before
 * the commands recorded after it are submitted.
 */
function uploadThroughQueue(backend: UploadingBackend): void {
  const original = backend.uploadToGPU.bind(backend);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  backend.uploadToGPU = (dataId) => {
    const data = backend.tensorMap.get(dataId);
    const values = data.values;
    const typed = (data.dtype === 'float32' && values instanceof Float32Array) || (data.dtype === 'int32' && values instanceof Int32Array);
    if (data.resource != null || !typed || values.length === 0) return original(dataId);
    const buffer = backend.bufferManager.acquireBuffer(values.byteLength, usage);
    backend.queue.writeBuffer(buffer, 0, values);
    data.values = null; // as tfjs does once uploaded: the GPU copy is the tensor now
    data.resource = buffer;
  };
}

interface WebgpuDevice {
  limits: { maxStorageBuffersPerShaderStage: number };
  addEventListener?(type: 'uncapturederror', listener: () => void): void;
}

let gpuErrors = 0;

/** How many GPU errors the WebGPU device has reported (0 on other backends); any means wrong results. */
export function webgpuErrorCount(): number {
  return gpuErrors;
}

/**
 * tfjs' Sum and Mean gradients multiply by `ones(x.shape)` made on the host, so on WebGPU every backward pass
 * uploads one such tensor per reduction. `onesLike` fills it on the device instead; the maths is unchanged.
 */
function deviceSideReductionGradients(): void {
  const expand = (dy: tf.Tensor, x: tf.Tensor, axes: number[]) =>
    tf.mul(tf.reshape(dy, x.shape.map((d, i) => (axes.includes(i) ? 1 : d))), tf.onesLike(x));
  const axesOf = (x: tf.Tensor, attrs: tf.NamedAttrMap) => tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
  const reciprocals = new Map<number, tf.Scalar>();
  tf.registerGradient({
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({ x: () => expand(dy as tf.Tensor, x, axesOf(x, attrs)) }),
  });
  tf.registerGradient({
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const axes = axesOf(x, attrs);
        const size = axes.reduce((n, a) => n * x.shape[a], 1);
        // A cached reciprocal: a JS number in an op would be a fresh upload on every backward pass.
        if (!reciprocals.has(size)) reciprocals.set(size, tf.keep(tf.scalar(1 / size)));
        return tf.mul(expand(dy as tf.Tensor, x, axes), reciprocals.get(size)!);
      },
    }),
  });
}

/** The parts of tfjs' engine that `deviceSideZeroGradients` wraps (not in its public typings). */
interface TapeEngine {
  addTapeNode(kernelName: string, inputs: unknown, outputs: tf.Tensor[], ...rest: unknown[]): void;
  state: { activeTape: { gradient?: (dys: (tf.Tensor | null)[]) => unknown }[] };
  deviceZeros?: boolean;
}

/**
 * Backprop hands a kernel a zero gradient for each output the loss does not use, made on the host and uploaded:
 * for the fused kernels' final-state outputs that is megabytes per minibatch at thousands of envs (a PPO profile
 * on the H200 put 90 ms of an update there). Fill them on the device (`tf.fill`; `tf.zeros` is made on the host).
 */
function deviceSideZeroGradients(): void {
  const engine = tf.engine() as unknown as TapeEngine;
  if (engine.deviceZeros) return;
  engine.deviceZeros = true;
  const addTapeNode = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (kernelName, inputs, outputs, ...rest) => {
    addTapeNode(kernelName, inputs, outputs, ...rest);
    const node = engine.state.activeTape[engine.state.activeTape.length - 1];
    const gradient = node?.gradient;
    if (!gradient || outputs.length < 2) return;
    node.gradient = (dys) => gradient(dys.map((dy, i) => dy ?? tf.fill(outputs[i]!.shape, 0, outputs[i]!.dtype)));
  };
}

/**
 * tfjs' WebGPU AddN binds every input as a storage buffer; past the device's limit (16 on Mesa's software adapter)
 * the pipeline is invalid and the GPU work is silently dropped. Gradient accumulation of a tensor used in many
 * places makes such AddNs, so split them into chunks the device can bind.
 */
function chunkAddN(maxInputs: number): void {
  wrapKernel('AddN', 'webgpu', (addN) => (args) => {
    let inputs = args.inputs as unknown as tf.TensorInfo[];
    const backend = args.backend as { disposeData(id: object): void };
    const partials: tf.TensorInfo[] = [];
    while (inputs.length > maxInputs) {
      const sums: tf.TensorInfo[] = [];
      for (let i = 0; i < inputs.length; i += maxInputs) {
        const chunk = inputs.slice(i, i + maxInputs);
        sums.push(chunk.length === 1 ? chunk[0] : (addN({ ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo));
      }
      partials.push(...sums.filter((t) => !inputs.includes(t)));
      inputs = sums;
    }
    const out = addN({ ...args, inputs: inputs as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
    for (const t of partials) backend.disposeData(t.dataId);
    return out;
  });
}
