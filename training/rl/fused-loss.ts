/**
 * The PPO loss as two WebGPU dispatches (issue 11): one workgroup computes every per-step term, the gradient slopes
 * and the six masked means in one pass, and the backward pass is one element-wise kernel. The tfjs-ops form in
 * `ppoLoss` launches about 45 small kernels per minibatch, each costing its host dispatch; the arithmetic here is
 * that form's, term for term (only the order of the sums differs).
 */
import * as tf from '@tensorflow/tfjs';
import { fits, registerProgramKernel, type FusedProgram } from '../../memory/webgpu/runner.js';
import { lit } from '../../memory/webgpu/wgsl.js';

const FORWARD = 'HqltPpoLoss';
const BACKWARD = 'HqltPpoLossGrad';
const NT = 256;
/** `PpoLossInputs`' fields (ppo.ts), as the forward kernel binds them. */
const INPUTS = ['newLogProbs', 'entropy', 'newValues', 'oldLogProbs', 'oldValues', 'advantages', 'returns', 'valid'] as const;
/** Forward outputs: [loss, policyLoss, valueLoss, entropy, approxKl, clipFraction, count], then the two slopes. */
const TOTALS = 7;

/** The loss knobs the kernels bake in. */
export interface FusedLossKnobs {
  clipCoef: number;
  clipValueLoss: boolean;
  vfCoef: number;
  entCoef: number;
}

/** Whether the fused loss can run here (WebGPU with room for the forward pass's 11 buffers). */
export function fusedPpoLossFits(): boolean {
  return fits(4 * 6 * NT, NT, INPUTS.length + 3);
}

function forwardProgram(n: number, k: FusedLossKnobs): FusedProgram {
  const c = lit(k.clipCoef);
  const value = k.clipValueLoss
    ? /* wgsl */ `
    let delta = v - in_oldValues[i];
    let clippedError = (in_oldValues[i] + clamp(delta, -${c}, ${c})) - in_returns[i];
    let clipped = clippedError * clippedError;
    let vTerm = max(unclipped, clipped);
    var vSlope = 0.0;
    if (unclipped >= clipped) { vSlope = error; } else if (delta >= -${c} && delta <= ${c}) { vSlope = clippedError; }`
    : /* wgsl */ `
    let vTerm = unclipped;
    let vSlope = error;`;
  const source = /* wgsl */ `
var<workgroup> partial: array<f32, ${6 * NT}>;

fn main(wg: u32, lid: u32) {
  // Masked sums of: valid, policy term, value term, entropy, KL term, clipped indicator.
  var s = array<f32, 6>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
  for (var i = lid; i < ${n}u; i += ${NT}u) {
    let w = in_valid[i];
    let logRatio = in_newLogProbs[i] - in_oldLogProbs[i];
    let ratio = exp(logRatio);
    let negAdv = -in_advantages[i];
    let pg1 = negAdv * ratio;
    let pg2 = negAdv * clamp(ratio, ${lit(1 - k.clipCoef)}, ${lit(1 + k.clipCoef)});
    // Where the clipped term is the larger one, the policy term is flat in the ratio.
    out_pslope[i] = select(0.0, pg1, pg1 >= pg2);
    let v = in_newValues[i];
    let error = v - in_returns[i];
    let unclipped = error * error;${value}
    out_vslope[i] = vSlope;
    s[0] += w;
    s[1] += max(pg1, pg2) * w;
    s[2] += vTerm * w;
    s[3] += in_entropy[i] * w;
    s[4] += ((ratio - 1.0) - logRatio) * w;
    s[5] += select(0.0, 1.0, abs(ratio - 1.0) > ${c}) * w;
  }
  for (var j = 0u; j < 6u; j++) { partial[j * ${NT}u + lid] = s[j]; }
  for (var half = ${NT / 2}u; half > 0u; half >>= 1u) {
    workgroupBarrier();
    if (lid < half) {
      for (var j = 0u; j < 6u; j++) { partial[j * ${NT}u + lid] += partial[j * ${NT}u + lid + half]; }
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    let count = max(partial[0], 1.0);
    let policyLoss = partial[${NT}u] / count;
    let valueLoss = 0.5 * (partial[${2 * NT}u] / count);
    let entropy = partial[${3 * NT}u] / count;
    out_totals[0] = (policyLoss - ${lit(k.entCoef)} * entropy) + ${lit(k.vfCoef)} * valueLoss;
    out_totals[1] = policyLoss;
    out_totals[2] = valueLoss;
    out_totals[3] = entropy;
    out_totals[4] = partial[${4 * NT}u] / count;
    out_totals[5] = partial[${5 * NT}u] / count;
    out_totals[6] = count;
  }
}
`;
  return {
    key: `${FORWARD}:${n}:${JSON.stringify(k)}`,
    inputs: INPUTS,
    outputs: [
      { name: 'totals', shape: [TOTALS] },
      { name: 'pslope', shape: [n] },
      { name: 'vslope', shape: [n] },
    ],
    workgroupSize: NT,
    workgroups: 1,
    source,
  };
}

/** d loss / d (log-prob, entropy, value) per step: the slopes times valid · dLoss / count, as `ppoLoss`'s gradFunc. */
function backwardProgram(n: number, k: FusedLossKnobs): FusedProgram {
  const source = /* wgsl */ `
fn main(wg: u32, lid: u32) {
  let i = wg * ${NT}u + lid;
  if (i >= ${n}u) { return; }
  let w = in_valid[i] * (in_dy[0] / in_totals[6]);
  out_dlp[i] = in_pslope[i] * w;
  out_dent[i] = w * ${lit(-k.entCoef)};
  out_dv[i] = in_vslope[i] * (w * ${lit(k.vfCoef)});
}
`;
  return {
    key: `${BACKWARD}:${n}:${JSON.stringify(k)}`,
    inputs: ['pslope', 'vslope', 'valid', 'totals', 'dy'],
    outputs: ['dlp', 'dent', 'dv'].map((name) => ({ name, shape: [n] })),
    workgroupSize: NT,
    workgroups: Math.ceil(n / NT),
    source,
  };
}

const knobsOf = (a: tf.NamedAttrMap): FusedLossKnobs => ({
  clipCoef: a.clipCoef as number,
  clipValueLoss: a.clipValueLoss as boolean,
  vfCoef: a.vfCoef as number,
  entCoef: a.entCoef as number,
});

let registered = false;

/**
 * The PPO loss's [loss, policyLoss, valueLoss, entropy, approxKl, clipFraction, count] (differentiable in the new
 * log-probs, entropies and values through the loss entry) (WebGPU only; check `fusedPpoLossFits`).
 */
export function fusedPpoLoss(x: Record<(typeof INPUTS)[number], tf.Tensor>, knobs: FusedLossKnobs): tf.Tensor1D {
  if (!registered) {
    registered = true;
    registerProgramKernel(FORWARD, (i, a) => forwardProgram(i.valid!.shape[0]!, knobsOf(a)));
    registerProgramKernel(BACKWARD, (i, a) => backwardProgram(i.valid!.shape[0]!, knobsOf(a)));
  }
  // Only the knobs: the kernels' cache keys are built from these attributes.
  const attrs = knobsOf(knobs as unknown as tf.NamedAttrMap) as unknown as tf.NamedAttrMap;
  const lossOf = tf.customGrad((newLogProbs, entropy, newValues, save) => {
    const differentiable = { newLogProbs, entropy, newValues } as Record<'newLogProbs' | 'entropy' | 'newValues', tf.Tensor>;
    const [totals, pslope, vslope] = tf.engine().runKernel(FORWARD, { ...x, ...differentiable }, attrs) as tf.Tensor[];
    (save as tf.GradSaveFunc)([pslope!, vslope!, totals!]);
    return {
      value: totals! as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor, [ps, vs, t]: tf.Tensor[]) =>
        tf.engine().runKernel(BACKWARD, { pslope: ps!, vslope: vs!, valid: x.valid, totals: t!, dy }, attrs) as tf.Tensor[],
    };
  });
  return lossOf(x.newLogProbs, x.entropy, x.newValues) as tf.Tensor1D;
}
