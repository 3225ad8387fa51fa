/** Changing how tfjs runs one of its own kernels on a backend. */
import * as tf from '@tensorflow/tfjs';

/**
 * Replaces tfjs' kernel `name` on `backendName` by `wrap(original)`, once per process: a second backend set-up
 * finds the kernel wrapped and leaves it (tfjs' kernel registry has no other hook).
 */
export function wrapKernel(name: string, backendName: string, wrap: (original: tf.KernelFunc) => tf.KernelFunc): void {
  const config = tf.getKernel(name, backendName);
  if (!config || (config as { wrapped?: boolean }).wrapped) return;
  tf.unregisterKernel(name, backendName);
  tf.registerKernel({ ...config, kernelFunc: wrap(config.kernelFunc), ...({ wrapped: true } as object) } as tf.KernelConfig);
}
