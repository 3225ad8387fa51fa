/**
 * Log-probabilities and entropies of (multi-)categorical distributions as one WebGPU dispatch each way (issue 11).
 * In tfjs ops each is a log-softmax plus products and sums, about 20 small kernels forward and as many backward per
 * PPO minibatch. One invocation per row walks each component's logits; the arithmetic is tfjs' log-softmax's
 * (shifted by the maximum, minus the log of the summed exponentials) and its gradient's.
 */
import * as tf from '@tensorflow/tfjs';
import { fits, registerProgramKernel, type FusedProgram } from '../memory/webgpu/runner.js';

/** Kernel names per output: forward and backward. */
const NAMES = {
  logProb: ['HqltCategoricalLogProb', 'HqltCategoricalLogProbGrad'],
  entropy: ['HqltCategoricalEntropy', 'HqltCategoricalEntropyGrad'],
} as const;
const NT = 64;

/** 'logProb': log π(a) of the action row; 'entropy': the entropy; both summed over components. */
export type CategoricalOutput = 'logProb' | 'entropy';

interface Config {
  rows: number;
  nvec: number[];
  what: CategoricalOutput;
}

/** Whether the kernels can run here (WebGPU with room for the backward pass's 4 buffers). */
export function fusedCategoricalFits(): boolean {
  return fits(0, NT, 4);
}

/**
 * WGSL per component of n logits from `base`: their max `mx` and log-sum-exp of the shifted logits `ls` (tfjs'
 * log-softmax is (l − mx) − ls), the action index `a` and whether it is in range (`valid`), then `body(n)`.
 */
function perComponent(c: Config, body: (n: number) => string): string {
  const P = c.nvec.reduce((a, b) => a + b, 0);
  let o = 0;
  return c.nvec
    .map((n, i) => {
      const at = `row * ${P}u + ${o}u`;
      const code = /* wgsl */ `
  {
    let base = ${at};
    var mx = -3.0e38;
    for (var k = 0u; k < ${n}u; k++) { mx = max(mx, in_params[base + k]); }
    var s = 0.0;
    for (var k = 0u; k < ${n}u; k++) { s += exp(in_params[base + k] - mx); }
    let ls = log(s);
${
  c.what === 'logProb'
    ? `    let a = in_actions[row * ${c.nvec.length}u + ${i}u];
    // An index outside the component has an all-zero one-hot in the ops form: no term, no gradient.
    let valid = a >= 0.0 && a < ${n}.0;`
    : ''
}    ${body(n)}
  }`;
      o += n;
      return code;
    })
    .join('\n');
}

const LOGP = '((in_params[base + k] - mx) - ls)';

/** The body per component of n logits: forward, accumulating into `acc`; backward, writing d logits from `dy`. */
const BODIES: Record<CategoricalOutput, [(n: number) => string, (n: number) => string]> = {
  logProb: [
    () => `if (valid) { let k = u32(a); acc += ${LOGP}; }`,
    // d/dl_k of Σ onehot·logSoftmax(l): dy (onehot_k − p_k Σ onehot).
    (n) => `let hot = select(0.0, 1.0, valid);
    for (var k = 0u; k < ${n}u; k++) {
      let onehot = select(0.0, 1.0, valid && u32(a) == k);
      out_dparams[base + k] = dy * onehot - exp(${LOGP}) * (dy * hot);
    }`,
  ],
  entropy: [
    (n) => `var h = 0.0;
    for (var k = 0u; k < ${n}u; k++) { let lp = ${LOGP}; h += exp(lp) * lp; }
    acc += -h;`,
    // d/dlp_k of −Σ e^lp·lp: g_k = −dy (e^lp_k lp_k + e^lp_k); through log-softmax: dl_k = g_k − p_k Σ g.
    (n) => `var sg = 0.0;
    for (var k = 0u; k < ${n}u; k++) { let lp = ${LOGP}; sg += -dy * (exp(lp) * lp + exp(lp)); }
    for (var k = 0u; k < ${n}u; k++) {
      let lp = ${LOGP};
      out_dparams[base + k] = -dy * (exp(lp) * lp + exp(lp)) - exp(lp) * sg;
    }`,
  ],
};

function program(c: Config, backward: boolean): FusedProgram {
  const P = c.nvec.reduce((a, b) => a + b, 0);
  const components = perComponent(c, BODIES[c.what][backward ? 1 : 0]);
  const source = backward
    ? /* wgsl */ `
fn main(wg: u32, lid: u32) {
  let row = wg * ${NT}u + lid;
  if (row >= ${c.rows}u) { return; }
  let dy = in_dy[row];
${components}
}
`
    : /* wgsl */ `
fn main(wg: u32, lid: u32) {
  let row = wg * ${NT}u + lid;
  if (row >= ${c.rows}u) { return; }
  var acc = 0.0;
${components}
  out_y[row] = acc;
}
`;
  const inputs = c.what === 'logProb' ? ['params', 'actions'] : ['params'];
  return {
    key: `${NAMES[c.what][backward ? 1 : 0]}:${JSON.stringify(c)}`,
    inputs: backward ? [...inputs, 'dy'] : inputs,
    outputs: [backward ? { name: 'dparams', shape: [c.rows, P] } : { name: 'y', shape: [c.rows] }],
    workgroupSize: NT,
    workgroups: Math.ceil(c.rows / NT),
    source,
  };
}

const configOf = (what: CategoricalOutput, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap): Config => ({
  rows: inputs.params!.shape[0]!,
  nvec: attrs.nvec as number[],
  what,
});

let registered = false;

function register(): void {
  registered = true;
  for (const what of ['logProb', 'entropy'] as const) {
    const [forward, backward] = NAMES[what];
    registerProgramKernel(forward, (i, a) => program(configOf(what, i, a), false));
    registerProgramKernel(backward, (i, a) => program(configOf(what, i, a), true));
    const saved = what === 'logProb' ? ['params', 'actions'] : ['params'];
    tf.registerGradient({
      kernelName: forward,
      inputsToSave: saved,
      gradFunc: (dy, tensors, attrs) => {
        const named = Object.fromEntries(saved.map((n, i) => [n, tensors[i]!]));
        const dparams = tf.engine().runKernel(backward, { ...named, dy: dy as tf.Tensor }, attrs) as tf.Tensor;
        // Action indices are constants.
        return { params: () => dparams, ...(named.actions ? { actions: () => tf.zerosLike(named.actions!) } : {}) };
      },
    });
  }
}

/**
 * Per row of logits [B, Σ nvec]: the log-probability of the action row (`actions` [B, nvec.length], component
 * indices as floats) or the entropy, summed over components → [B], differentiable in the logits (WebGPU only;
 * check `fusedCategoricalFits`).
 */
export function fusedCategorical(params: tf.Tensor2D, nvec: number[], what: 'entropy'): tf.Tensor1D;
export function fusedCategorical(params: tf.Tensor2D, nvec: number[], what: 'logProb', actions: tf.Tensor2D): tf.Tensor1D;
export function fusedCategorical(params: tf.Tensor2D, nvec: number[], what: CategoricalOutput, actions?: tf.Tensor2D): tf.Tensor1D {
  if (!registered) register();
  const inputs: tf.NamedTensorMap = actions ? { params, actions } : { params };
  return tf.engine().runKernel(NAMES[what][0], inputs, { nvec } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}
