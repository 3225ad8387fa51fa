/**
 * Tensor backend selection: the one place that decides which TensorFlow.js backend runs.
 *
 * `auto` prefers the native TensorFlow bindings when they are installed (they download libtensorflow at
 * install time, so they are optional), then WebAssembly, then the plain JavaScript CPU backend.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';

export const BACKEND_NAMES = ['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What `initBackend` settled on. */
export interface BackendInfo {
  /** The name the user asked for (`auto` included). */
  requested: BackendName;
  /** tfjs' own name of the active backend (`wasm`, `cpu`, `tensorflow`, ...). */
  active: string;
  /** Relevant tfjs environment flags of the active backend. */
  flags: Record<string, unknown>;
}

const require = createRequire(import.meta.url);

const INSTALL_HINT: Record<Exclude<BackendName, 'auto'>, string> = {
  wasm: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0',
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
  tensorflow: 'tensorflow',
  'tensorflow-gpu': 'tensorflow',
};

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

async function activate(name: Exclude<BackendName, 'auto'>): Promise<boolean> {
  if (name !== 'cpu' && !tryLoad(name)) return false;
  try {
    return await tf.setBackend(TF_NAME[name]);
  } catch {
    return false;
  }
}

/**
 * Selects and initialises the backend. The name comes from the argument, else `HQLT_BACKEND`, else `auto`.
 * Fails with an install hint when an explicitly requested backend is not available.
 */
export async function initBackend(requested?: string): Promise<BackendInfo> {
  const name = parseBackendName(requested ?? process.env.HQLT_BACKEND ?? 'auto');
  const order: Exclude<BackendName, 'auto'>[] =
    name === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [name];
  for (const candidate of order) {
    if (await activate(candidate)) {
      await tf.ready();
      return { requested: name, active: tf.getBackend(), flags: backendFlags() };
    }
  }
  if (name === 'auto') throw new Error('No TensorFlow.js backend could be initialised, not even cpu.');
  throw new Error(`Backend '${name}' is not available. Install it with: ${INSTALL_HINT[name]}`);
}

function backendFlags(): Record<string, unknown> {
  const features = tf.env().features;
  const flags: Record<string, unknown> = {};
  for (const key of Object.keys(features)) if (!key.startsWith('IS_')) flags[key] = features[key];
  return flags;
}
