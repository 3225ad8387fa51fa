/**
 * The GRU recurrence over a sequence in one dispatch forward and one backward (memory/recurrent.ts `gruScan`, same
 * equations and inputs), instead of a few tfjs ops per step: one workgroup owns R batch rows for the whole
 * sequence, keeps their hidden state in workgroup memory and reads W_hh from global memory (cached; shared by its
 * R rows). The input projections of all steps come in precomputed (one matMul), and the weight gradient is one
 * matMul over what the backward writes.
 *
 * Forward, per step with hk = keep·h:  r, z = σ(gi_rz + hk W_hh,rz),  g = hk W_hh,n + b_hn,  n = tanh(gi_n + r g),
 * h' = n + z (hk − n). It also writes (r, z, n, g, hk) of every step for the backward.
 * Backward, per step in reverse: dh = dy + carry; the pre-activation gradients dgi = (da_r, da_z, da_n) and
 * dgh = (da_r, da_z, r da_n); carry = keep (z dh + dgh W_hhᵀ).
 */
import * as tf from '@tensorflow/tfjs';
import { fits, registerProgramKernel, webgpuLimits, type FusedProgram } from './runner.js';
import { ACTIVATIONS, strided, workgroupFor } from './wgsl.js';

const FORWARD = 'HqltGruSequence';
const BACKWARD = 'HqltGruSequenceGrad';

interface Dims {
  B: number;
  T: number;
  D: number;
  /** Batch rows per workgroup. */
  R: number;
}

/** tanh as tfjs' WebGPU kernel computes it (exact at large |x|). */
const TANH = /* wgsl */ `fn tanh_(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }`;
const sharedBytes = (D: number, R: number) => 4 * 5 * R * D;

/**
 * Rows per workgroup: more rows share each W_hh read, but the recurrence runs in parallel only across
 * workgroups, so keep at least 256 of them (two per SM on a large GPU) when the batch allows.
 */
function rowsFor(B: number, D: number): number {
  const limit = webgpuLimits()?.maxComputeWorkgroupStorageSize ?? 0;
  let R = 1;
  while (R < 8 && Math.ceil(B / (2 * R)) >= 256 && sharedBytes(D, 2 * R) <= limit) R *= 2;
  return R;
}

/** Whether the fused GRU kernels fit the active device for hidden width D. */
export function gruSequenceFits(D: number): boolean {
  return fits(sharedBytes(D, 1), workgroupFor(D), 8);
}

/** WGSL shared by both programs: layout and the rows of this workgroup. */
function common({ B, T, D }: Dims): string {
  return /* wgsl */ `
${ACTIVATIONS}
${TANH}
var<private> row0: u32;
/** Offsets of step t of batch row b in [B, T, n·D] tensors. */
fn at(b: u32, t: u32, n: u32) -> u32 { return (b * ${T}u + t) * n * ${D}u; }
fn valid(r: u32) -> bool { return row0 + r < ${B}u; }`;
}

function forwardProgram(d: Dims): FusedProgram {
  const { B, T, D, R } = d;
  const NT = workgroupFor(D);
  const source = /* wgsl */ `
${common(d)}
var<workgroup> hsh: array<f32, ${2 * R * D}>;
fn main(wg: u32, lid: u32) {
  row0 = wg * ${R}u;
  ${strided('e', R * D, NT)} {
    let r = e / ${D}u;
    hsh[e] = select(0.0, in_h0[(row0 + r) * ${D}u + e % ${D}u], valid(r));
  }
  var cur = 0u;
  for (var t = 0u; t < ${T}u; t++) {
    workgroupBarrier();
    ${strided('u', D, NT)} {
      var ar = array<f32, ${R}>(); // explicit: a declaration in a loop is not re-zeroed on every backend (NVIDIA)
      var az = array<f32, ${R}>();
      var an = array<f32, ${R}>();
      for (var k = 0u; k < ${D}u; k++) {
        let w = in_whh[k * ${3 * D}u + u];
        let wz = in_whh[k * ${3 * D}u + ${D}u + u];
        let wn = in_whh[k * ${3 * D}u + ${2 * D}u + u];
        for (var r = 0u; r < ${R}u; r++) {
          let x = hsh[cur * ${R * D}u + r * ${D}u + k];
          ar[r] += x * w;
          az[r] += x * wz;
          an[r] += x * wn;
        }
      }
      for (var r = 0u; r < ${R}u; r++) {
        if (!valid(r)) { continue; }
        let b = row0 + r;
        let keep = in_keep[b * ${T}u + t];
        let gi = at(b, t, 3u);
        let rr = sigmoid_(in_gi[gi + u] + keep * ar[r]);
        let z = sigmoid_(in_gi[gi + ${D}u + u] + keep * az[r]);
        let g = keep * an[r] + in_bhn[u];
        let n = tanh_(in_gi[gi + ${2 * D}u + u] + rr * g);
        let hk = keep * hsh[cur * ${R * D}u + r * ${D}u + u];
        let h = n + z * (hk - n);
        out_hs[at(b, t, 1u) + u] = h;
        let s = at(b, t, 5u);
        out_saved[s + u] = rr;
        out_saved[s + ${D}u + u] = z;
        out_saved[s + ${2 * D}u + u] = n;
        out_saved[s + ${3 * D}u + u] = g;
        out_saved[s + ${4 * D}u + u] = hk;
        hsh[(1u - cur) * ${R * D}u + r * ${D}u + u] = h;
      }
    }
    cur = 1u - cur;
  }
}`;
  return {
    key: `${FORWARD}:${JSON.stringify(d)}`,
    inputs: ['gi', 'h0', 'whh', 'bhn', 'keep'],
    outputs: [
      { name: 'hs', shape: [B, T, D] },
      // r, z, n, g and hk of every step, [B, T, 5D].
      { name: 'saved', shape: [B, T, 5 * D] },
    ],
    workgroupSize: NT,
    workgroups: Math.ceil(B / R),
    source,
  };
}

function backwardProgram(d: Dims): FusedProgram {
  const { B, T, D, R } = d;
  const NT = workgroupFor(D);
  const source = /* wgsl */ `
${common(d)}
var<workgroup> carry: array<f32, ${R * D}>;
var<workgroup> direct: array<f32, ${R * D}>;
var<workgroup> dgs: array<f32, ${3 * R * D}>;
fn main(wg: u32, lid: u32) {
  row0 = wg * ${R}u;
  ${strided('e', R * D, NT)} { carry[e] = 0.0; }
  for (var n = 0u; n < ${T}u; n++) {
    let t = ${T - 1}u - n;
    workgroupBarrier();
    ${strided('u', D, NT)} {
      for (var r = 0u; r < ${R}u; r++) {
        var g3 = vec3<f32>(0.0);
        var dh = 0.0;
        var z = 0.0;
        if (valid(r)) {
          let b = row0 + r;
          dh = in_dy[at(b, t, 1u) + u] + carry[r * ${D}u + u];
          let s = at(b, t, 5u);
          let rr = in_saved[s + u];
          z = in_saved[s + ${D}u + u];
          let nn = in_saved[s + ${2 * D}u + u];
          let g = in_saved[s + ${3 * D}u + u];
          let hk = in_saved[s + ${4 * D}u + u];
          let dan = dh * (1.0 - z) * (1.0 - nn * nn);
          let dar = dan * g * rr * (1.0 - rr);
          let daz = dh * (hk - nn) * z * (1.0 - z);
          let o = at(b, t, 3u);
          out_dgi[o + u] = dar;
          out_dgi[o + ${D}u + u] = daz;
          out_dgi[o + ${2 * D}u + u] = dan;
          out_dgh[o + u] = dar;
          out_dgh[o + ${D}u + u] = daz;
          out_dgh[o + ${2 * D}u + u] = dan * rr;
          g3 = vec3<f32>(dar, daz, dan * rr);
        }
        dgs[r * ${3 * D}u + u] = g3.x;
        dgs[r * ${3 * D}u + ${D}u + u] = g3.y;
        dgs[r * ${3 * D}u + ${2 * D}u + u] = g3.z;
        direct[r * ${D}u + u] = dh * z;
      }
    }
    workgroupBarrier();
    ${strided('k', D, NT)} {
      var acc = array<f32, ${R}>();
      for (var c = 0u; c < ${3 * D}u; c++) {
        let w = in_whhT[c * ${D}u + k];
        for (var r = 0u; r < ${R}u; r++) { acc[r] += dgs[r * ${3 * D}u + c] * w; }
      }
      for (var r = 0u; r < ${R}u; r++) {
        var keep = 0.0;
        if (valid(r)) { keep = in_keep[(row0 + r) * ${T}u + t]; }
        carry[r * ${D}u + k] = keep * (direct[r * ${D}u + k] + acc[r]);
      }
    }
  }
  workgroupBarrier();
  ${strided('e', R * D, NT)} {
    if (valid(e / ${D}u)) { out_dh0[row0 * ${D}u + e] = carry[e]; }
  }
}`;
  return {
    key: `${BACKWARD}:${JSON.stringify(d)}`,
    inputs: ['dy', 'saved', 'whhT', 'keep'],
    outputs: [
      { name: 'dgi', shape: [B, T, 3 * D] },
      { name: 'dgh', shape: [B, T, 3 * D] },
      { name: 'dh0', shape: [B, D] },
    ],
    workgroupSize: NT,
    workgroups: Math.ceil(B / R),
    source,
  };
}

/** Sizes from a [B, T, n·D] tensor. */
function dimsOf(x: tf.TensorInfo, n: number): Dims {
  const [B, T, G] = x.shape as [number, number, number];
  const D = G / n;
  return { B, T, D, R: rowsFor(B, D) };
}

let registered = false;

function register(): void {
  if (registered) return;
  registered = true;
  registerProgramKernel(FORWARD, (inputs) => forwardProgram(dimsOf(inputs.gi!, 3)));
  registerProgramKernel(BACKWARD, (inputs) => backwardProgram(dimsOf(inputs.dy!, 1)));
  tf.registerGradient({
    kernelName: FORWARD,
    inputsToSave: ['gi', 'whh', 'keep'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const [gi, whh, keep, states] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor, tf.Tensor3D];
      const [B, T, G] = gi.shape;
      const D = G / 3;
      const whhT = tf.transpose(whh);
      const [dgi, dgh, dh0] = tf.engine().runKernel(BACKWARD, { dy: (dys as tf.Tensor[])[0]!, saved: states, whhT, keep }) as tf.Tensor[];
      // dW_hh = Σ_steps hkᵀ dgh; db_hn = Σ_steps of dgh's n part.
      const hk = tf.reshape(tf.slice(states, [0, 0, 4 * D], [B, T, D]), [B * T, D]);
      const dghFlat = tf.reshape(dgh!, [B * T, G]);
      return {
        gi: () => dgi!,
        h0: () => dh0!,
        whh: () => tf.matMul(hk, dghFlat, true, false),
        bhn: () => tf.sum(tf.slice(dghFlat, [0, 2 * D], [B * T, D]), 0),
        keep: () => tf.zerosLike(keep),
      };
    },
  });
}

/**
 * GRU outputs hs [B, T, D] from gi [B, T, 3D] (W_ih x + b_ih + [b_hr, b_hz, 0]), h0 [B, D], whh [D, 3D], bhn [D]
 * and keep [B, T, 1] (0 where an episode starts): `gruScan`'s semantics, WebGPU only (check `gruSequenceFits`).
 */
export function fusedGruSequence(gi: tf.Tensor3D, h0: tf.Tensor2D, whh: tf.Tensor2D, bhn: tf.Tensor1D, keep: tf.Tensor3D): tf.Tensor3D {
  register();
  const [hs, states] = tf.engine().runKernel(FORWARD, { gi, h0, whh, bhn, keep }) as tf.Tensor[];
  // The gradient keeps its own reference to the saved states.
  states!.dispose();
  return hs as tf.Tensor3D;
}
