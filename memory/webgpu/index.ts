/**
 * Fused WGSL kernels for the WebGPU backend (issue 11: per-op dispatch dominated). Each kernel has the same
 * semantics as the tfjs-ops code it replaces, which stays the path on every other backend; layers ask
 * `fusedKernelsActive()` and the kernel's own `...Fits` check before taking the fused path.
 */
import * as tf from '@tensorflow/tfjs';

export { fusedDispatchCount } from './runner.js';

let enabled = process.env.HQLT_FUSED_KERNELS !== '0';

/** Turns the fused kernels on or off (default on; `HQLT_FUSED_KERNELS=0` starts with them off). */
export function setFusedKernels(on: boolean): void {
  enabled = on;
}

/** Whether layers should use the fused kernels now: enabled and the WebGPU backend active. */
export function fusedKernelsActive(): boolean {
  return enabled && tf.getBackend() === 'webgpu';
}
