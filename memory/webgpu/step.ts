/**
 * One dispatch per HQLT layer and acting step (the `step` form, spec "Step form"): from the fused input projection
 * it applies the activations, zeroes the state of streams that start an episode, shifts the KV buffers, attends
 * over the window (RoPE by slot distance), writes and reads the delta-rule fast weights, mixes both reads and
 * applies the per-head RMSNorm. The output projection stays a tfjs matMul.
 *
 * One workgroup per (stream, head). Supported: the synchronous and delayed-streaming blends, every mixing, RoPE on
 * or off, both memories or either alone; other blends keep the tfjs-ops path.
 */
import * as tf from '@tensorflow/tfjs';
import { fits, registerProgramKernel, type FusedProgram } from './runner.js';
import { ACTIVATIONS, lit, strided, workgroupFor } from './wgsl.js';

/** What the step kernel computes (all baked into the shader). */
export interface StepKernelConfig {
  heads: number;
  /** Per-head key and value widths. */
  K: number;
  V: number;
  /** Window S (slots of the KV buffers). */
  S: number;
  blend: 'synchronous' | 'delayed-streaming';
  mixing: 'sum' | 'scalar' | 'vector';
  kv: boolean;
  fw: boolean;
  rope: boolean;
  /** β ∈ (0, 2). */
  negativeEigenvalues: boolean;
  /** Width of the projection row: q, k, v, then β (H, when the FW-memory is on), then the mixing gates. */
  width: number;
}

/** Inputs of the step kernel; absent ones are those the configuration does not use. */
export interface StepInputs {
  /** Projection [B, width] (after the short convolution when there is one). */
  proj: tf.Tensor2D;
  /** Position counters [B] and episode-start flags [B]. */
  pos: tf.Tensor1D;
  start: tf.Tensor1D;
  /** Per-head RMSNorm weight [V]. */
  norm: tf.Tensor1D;
  keys?: tf.Tensor;
  values?: tf.Tensor;
  fw?: tf.Tensor;
  /** RoPE tables by slot (cos, signed sin), scaled by 1/√K, [S, K]. */
  ropeCos?: tf.Tensor;
  ropeSin?: tf.Tensor;
}

/** Outputs: normalised mixed read y [B, H V] (before the output projection) and the next state. */
export interface StepOutputs {
  y: tf.Tensor2D;
  pos: tf.Tensor1D;
  keys?: tf.Tensor;
  values?: tf.Tensor;
  fw?: tf.Tensor;
}

export const STEP_KERNEL = 'HqltFusedStep';

function inputNames(c: StepKernelConfig): (keyof StepInputs)[] {
  const names: (keyof StepInputs)[] = ['proj', 'pos', 'start', 'norm'];
  if (c.kv || c.blend === 'delayed-streaming') names.push('keys', 'values');
  if (c.fw) names.push('fw');
  if (c.kv && c.rope) names.push('ropeCos', 'ropeSin');
  return names;
}

function outputNames(c: StepKernelConfig): (keyof StepOutputs)[] {
  const names: (keyof StepOutputs)[] = ['y', 'pos'];
  if (c.kv || c.blend === 'delayed-streaming') names.push('keys', 'values');
  if (c.fw) names.push('fw');
  return names;
}

function threads(c: StepKernelConfig): number {
  return workgroupFor(Math.max(c.K, c.V, c.S));
}

/** Whether the step kernel supports this configuration on the active device. */
export function stepKernelFits(c: StepKernelConfig): boolean {
  const shared = 4 * (5 * c.K + 3 * c.V + c.S + 4);
  return fits(shared, threads(c), inputNames(c).length + outputNames(c).length);
}

function program(c: StepKernelConfig, batch: number): FusedProgram {
  const { heads: H, K, V, S } = c;
  const NT = threads(c);
  const buffer = c.kv || c.blend === 'delayed-streaming';
  const DK = H * K;
  const DV = H * V;
  const gates = 2 * DK + DV + (c.fw ? H : 0); // first mixing-gate column
  const outputs = outputNames(c).map((name) => ({
    name,
    shape: { y: [batch, DV], pos: [batch], keys: [batch, H, S, K], values: [batch, H, S, V], fw: [batch, H, V, K] }[name],
  }));
  const scale = lit(1 / Math.sqrt(K));
  // The delayed-streaming blend writes the pair leaving the window (slot 0) into the FW-memory.
  const delayed = c.blend === 'delayed-streaming';
  const shifted = /* wgsl */ `
// Key and value of buffer slot i after the shift (slot i + 1 before it, the current step in the last slot).
fn shiftedKey(i: u32, j: u32) -> f32 {
  if (i < ${S - 1}u) { return keep * in_keys[head * ${S * K}u + (i + 1u) * ${K}u + j]; }
  return sk[j];
}
fn shiftedValue(i: u32, j: u32) -> f32 {
  if (i < ${S - 1}u) { return keep * in_values[head * ${S * V}u + (i + 1u) * ${V}u + j]; }
  return sv[j];
}

`;
  const source = /* wgsl */ `
${ACTIVATIONS}
var<workgroup> sq: array<f32, ${K}>;
var<workgroup> sk: array<f32, ${K}>;
var<workgroup> sv: array<f32, ${V}>;
var<workgroup> fq: array<f32, ${K}>;
var<workgroup> fk: array<f32, ${K}>;
var<workgroup> wv: array<f32, ${V}>;
var<workgroup> sp: array<f32, ${S}>;
var<workgroup> so: array<f32, ${V}>;
var<workgroup> red: array<f32, 4>;

var<private> keep: f32;
var<private> head: u32;

${buffer ? shifted : ''}
fn main(wg: u32, lid: u32) {
  let b = wg / ${H}u;
  let h = wg % ${H}u;
  keep = 1.0 - in_start[b];
  head = wg;
  let p0 = in_pos[b] * keep;
  if (h == 0u && lid == 0u) { out_pos[b] = p0 + 1.0; }
  let row = b * ${c.width}u;
  ${strided('i', K, NT)} {
    sq[i] = in_proj[row + h * ${K}u + i];
    sk[i] = in_proj[row + ${DK}u + h * ${K}u + i];
  }
  ${strided('i', V, NT)} { sv[i] = silu_(in_proj[row + ${2 * DK}u + h * ${V}u + i]); }
  workgroupBarrier();
${
  buffer
    ? `  ${strided('e', S * K, NT)} { out_keys[head * ${S * K}u + e] = shiftedKey(e / ${K}u, e % ${K}u); }
  ${strided('e', S * V, NT)} { out_values[head * ${S * V}u + e] = shiftedValue(e / ${V}u, e % ${V}u); }`
    : ''
}
${
  c.fw
    ? `  // FW features φ(x) = x̂ / |x̂| with x̂ = SiLU(x), of the query and of the key written now.
  ${strided('i', K, NT)} {
    fq[i] = silu_(sq[i]);
    fk[i] = silu_(${delayed ? `keep * in_keys[head * ${S * K}u + i]` : 'sk[i]'});
  }
  ${strided('i', V, NT)} { wv[i] = ${delayed ? `keep * in_values[head * ${S * V}u + i]` : 'sv[i]'}; }
  workgroupBarrier();
  if (lid == 0u) {
    var nq = 0.0;
    var nk = 0.0;
    for (var i = 0u; i < ${K}u; i++) { nq += fq[i] * fq[i]; nk += fk[i] * fk[i]; }
    red[0] = inverseSqrt(nq + 1e-6);
    red[1] = inverseSqrt(nk + 1e-6);
  }
  workgroupBarrier();
  ${strided('i', K, NT)} { fq[i] *= red[0]; fk[i] *= red[1]; }
  workgroupBarrier();`
    : ''
}
${
  c.kv
    ? `  // Window attention over the shifted buffer: slot i (distance S - 1 - i) is visible when the distance is at
  // most min(pos, S - 1); RoPE rotates the query by the distance.
  let limit = min(p0, ${lit(S - 1)});
  ${strided('i', S, NT)} {
    let dist = ${S - 1}u - i;
    var s = 0.0;
    for (var j = 0u; j < ${K}u; j++) {
      ${
        c.rope
          ? `let qr = sq[j] * in_ropeCos[i * ${K}u + j] + sq[(j + ${K / 2}u) % ${K}u] * in_ropeSin[i * ${K}u + j];`
          : `let qr = sq[j] * ${scale};`
      }
      s += qr * shiftedKey(i, j);
    }
    sp[i] = select(s, s - 1e9, f32(dist) > limit);
  }
  workgroupBarrier();
  if (lid == 0u) {
    var m = sp[0];
    for (var i = 1u; i < ${S}u; i++) { m = max(m, sp[i]); }
    var l = 0.0;
    for (var i = 0u; i < ${S}u; i++) { l += exp(sp[i] - m); }
    red[2] = m;
    red[3] = l;
  }
  workgroupBarrier();`
    : ''
}
  ${strided('v', V, NT)} {
${
  c.kv
    ? `    var okv = 0.0;
    for (var i = 0u; i < ${S}u; i++) { okv += exp(sp[i] - red[2]) / red[3] * shiftedValue(i, v); }`
    : ''
}
${
  c.fw
    ? `    // Delta rule on row v of W: W' = W + β (v - W φ(k)) φ(k)ᵀ, then the read W' φ(q) / √K.
    let wrow = head * ${V * K}u + v * ${K}u;
    var u = 0.0;
    for (var j = 0u; j < ${K}u; j++) { u += keep * in_fw[wrow + j] * fk[j]; }
    let beta = ${c.negativeEigenvalues ? '2.0 * ' : ''}sigmoid_(in_proj[row + ${2 * DK + DV}u + h]);
    let delta = beta * (wv[v] - u);
    var ofw = 0.0;
    for (var j = 0u; j < ${K}u; j++) {
      let w = keep * in_fw[wrow + j] + delta * fk[j];
      out_fw[wrow + j] = w;
      ofw += w * fq[j];
    }
    ofw *= ${scale};`
    : ''
}
    so[v] = ${mixExpression(c, gates)};
  }
  workgroupBarrier();
  if (lid == 0u) {
    var ss = 0.0;
    for (var i = 0u; i < ${V}u; i++) { ss += so[i] * so[i]; }
    red[0] = inverseSqrt(ss / ${lit(V)} + 1e-5);
  }
  workgroupBarrier();
  ${strided('v', V, NT)} { out_y[b * ${DV}u + h * ${V}u + v] = so[v] * red[0] * in_norm[v]; }
}
`;
  return {
    key: `${STEP_KERNEL}:${JSON.stringify(c)}:${batch}`,
    inputs: inputNames(c),
    outputs,
    workgroupSize: NT,
    workgroups: batch * H,
    source,
  };
}

/** The mixed read of channel v of head h (WGSL expression over okv, ofw and the gate columns from `gates`). */
function mixExpression(c: StepKernelConfig, gates: number): string {
  if (!c.kv) return 'ofw';
  if (!c.fw) return 'okv';
  if (c.mixing === 'sum') return 'ofw + okv';
  if (c.mixing === 'vector') return `okv + sigmoid_(in_proj[row + ${gates}u + h * ${c.V}u + v]) * (ofw - okv)`;
  return `sigmoid_(in_proj[row + ${gates}u + h]) * ofw + sigmoid_(in_proj[row + ${gates + c.heads}u + h]) * okv`;
}

let registered = false;

function register(): void {
  if (registered) return;
  registered = true;
  registerProgramKernel(STEP_KERNEL, (inputs, attrs) => program(JSON.parse(attrs.config as string) as StepKernelConfig, inputs.proj!.shape[0]!));
}

/** Runs the fused step (WebGPU only; callers check `stepKernelFits` first). */
export function fusedStep(c: StepKernelConfig, inputs: StepInputs): StepOutputs {
  register();
  const named: tf.NamedTensorMap = {};
  for (const n of inputNames(c)) {
    const t = inputs[n];
    if (!t) throw new Error(`${STEP_KERNEL}: missing input '${n}'`);
    named[n] = t;
  }
  const outs = tf.engine().runKernel(STEP_KERNEL, named, { config: JSON.stringify(c) }) as tf.Tensor[];
  const result: Partial<StepOutputs> = {};
  outputNames(c).forEach((n, i) => ((result as Record<string, tf.Tensor>)[n] = outs[i]!));
  return result as StepOutputs;
}
