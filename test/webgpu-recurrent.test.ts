/**
 * The fused GRU sequence kernels (memory/webgpu/recurrent.ts) on Mesa's software adapter against the tfjs-ops
 * `gruScan` on cpu: random widths (including one above a workgroup's 256 invocations), batches (including one
 * with two rows per workgroup and a partial last workgroup) and lengths, episode starts anywhere, non-zero initial
 * states; outputs, final state and gradients of the weights, inputs and initial state.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, it } from 'vitest';
import { makeRng } from '../util/random.js';
import { RecurrentMixer } from '../memory/recurrent.js';
import { checkCases, cpuReferences, hostTensor, type Case, type Outputs } from './fixtures/kernel-cases.js';

const int = (rng: () => number, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));

function gruCase(seed: number, sizes?: { B: number; T: number; D: number }): Case {
  const rng = makeRng(`gru-sizes${seed}`);
  const { B, T, D } = sizes ?? { B: int(rng, 1, 5), T: int(rng, 1, 40), D: int(rng, 1, 40) };
  return {
    name: `gru ${seed}: B=${B} T=${T} D=${D}`,
    run: async () => {
      const data = makeRng(`gru-data${seed}`);
      const layer = new RecurrentMixer('gru', D, makeRng(`gru-weights${seed}`));
      const xs = hostTensor(data, [B, T, D]) as tf.Tensor3D;
      const starts = tf.tensor2d(Array.from({ length: B * T }, () => (data() < 0.15 ? 1 : 0)), [B, T]);
      const h0 = hostTensor(data, [B, D], 0.5);
      const dy = hostTensor(data, [B, T, D]);
      const dh = hostTensor(data, [B, D]);
      const loss = (x: tf.Tensor, h: tf.Tensor) => {
        const r = layer.forward(x as tf.Tensor3D, { h }, starts);
        return tf.add(tf.sum(tf.mul(r.ys, dy)), tf.sum(tf.mul(r.state.h!, dh))) as tf.Scalar;
      };
      const r = layer.forward(xs, { h: h0 }, starts);
      const out: Record<string, tf.Tensor> = { ys: r.ys, 'state.h': r.state.h! };
      const vars = layer.namedWeights();
      const { value, grads } = tf.variableGrads(() => loss(xs, h0), vars.map((w) => w.variable));
      for (const w of vars) out[`d ${w.name}`] = grads[w.variable.name]!;
      const [dxs, dh0] = tf.grads(loss)([xs, h0]);
      out.dxs = dxs!;
      out.dh0 = dh0!;
      const result: Outputs = {};
      for (const [k, t] of Object.entries(out)) result[k] = (await t.data()) as Float32Array;
      tf.dispose([xs, starts, h0, dy, dh, value, ...Object.values(out)]);
      layer.dispose();
      return result;
    },
  };
}

const CASES = [
  ...Array.from({ length: 8 }, (_, i) => gruCase(i)),
  gruCase(100, { B: 2, T: 5, D: 300 }),
  gruCase(101, { B: 515, T: 3, D: 8 }),
];

describe('fused GRU sequence kernels (software adapter) against tfjs ops on cpu', () => {
  let reference: Map<string, Outputs>;
  beforeAll(async () => {
    reference = await cpuReferences(CASES);
  }, 300_000);

  it('outputs and final state match to 1e-5, gradients to 1e-4 (relative to max(1, |ref|)); no leaks', async () => {
    await checkCases(CASES, reference, 1e-5, 1e-4);
  }, 300_000);
});
