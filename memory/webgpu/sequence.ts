/**
 * Sequence bookkeeping of the HQLT layer's `forward` in single dispatches: the time information (positions and
 * episode ids from the episode-start flags, replacing about 30 tfjs ops) and the next state's KV buffers (the last S
 * keys or values of the state buffer followed by the sequence, those of an earlier episode zeroed), with its gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { registerProgramKernel, type FusedProgram } from './runner.js';

const TIME = 'HqltTimeInfo';
const TAIL = 'HqltBufferTail';
const TAIL_GRAD = 'HqltBufferTailGrad';

/**
 * seg = cumsum(starts), pos = steps since the episode start (from pos0 when none), segLast = seg of the last step,
 * next = the position counter after the sequence.
 */
function timeProgram(B: number, T: number): FusedProgram {
  return {
    key: `${TIME}:${B}:${T}`,
    inputs: ['starts', 'pos0'],
    outputs: [
      { name: 'pos', shape: [B, T] },
      { name: 'seg', shape: [B, T] },
      { name: 'segLast', shape: [B, 1] },
      { name: 'next', shape: [B] },
    ],
    workgroupSize: 64,
    workgroups: Math.ceil(B / 64),
    source: /* wgsl */ `
fn main(wg: u32, lid: u32) {
  let b = wg * 64u + lid;
  if (b >= ${B}u) { return; }
  var p = in_pos0[b] - 1.0;
  var s = 0.0;
  for (var t = 0u; t < ${T}u; t++) {
    let start = in_starts[b * ${T}u + t];
    p = select(p + 1.0, 0.0, start > 0.5);
    s += start;
    out_pos[b * ${T}u + t] = p;
    out_seg[b * ${T}u + t] = s;
  }
  out_segLast[b] = s;
  out_next[b] = p + 1.0;
}`,
  };
}

/**
 * Next buffer [B, H, S, d] from the state's buffer [B, H, S, d] and the sequence [B, T, H, d]: slot i holds row
 * T + i of their concatenation along time, kept when it belongs to the last step's episode. The gradient program
 * sends each slot's gradient back to its row.
 */
function tailProgram(B: number, T: number, H: number, S: number, d: number, grad: boolean): FusedProgram {
  const rows = S + T;
  // Row n of the concatenation: state slot n (episode id 0) or step n − S.
  const common = /* wgsl */ `
fn segOf(b: u32, n: u32) -> f32 {
  if (n < ${S}u) { return 0.0; }
  return in_seg[b * ${T}u + n - ${S}u];
}
fn kept(b: u32, n: u32) -> bool { return segOf(b, n) == in_seg[b * ${T}u + ${T - 1}u]; }`;
  const body = grad
    ? /* wgsl */ `
  // One invocation per (b, h, row); rows before T get no gradient.
  let e = idx % ${d}u;
  let n = (idx / ${d}u) % ${rows}u;
  let h = (idx / ${d * rows}u) % ${H}u;
  let b = idx / ${d * rows * H}u;
  var g = 0.0;
  if (n >= ${T}u && kept(b, n)) { g = in_dy[((b * ${H}u + h) * ${S}u + n - ${T}u) * ${d}u + e]; }
  if (n < ${S}u) { out_dstate[((b * ${H}u + h) * ${S}u + n) * ${d}u + e] = g; }
  else { out_dseq[((b * ${T}u + n - ${S}u) * ${H}u + h) * ${d}u + e] = g; }`
    : /* wgsl */ `
  let e = idx % ${d}u;
  let i = (idx / ${d}u) % ${S}u;
  let h = (idx / ${d * S}u) % ${H}u;
  let b = idx / ${d * S * H}u;
  let n = ${T}u + i;
  var x = 0.0;
  if (kept(b, n)) {
    if (n < ${S}u) { x = in_state[((b * ${H}u + h) * ${S}u + n) * ${d}u + e]; }
    else { x = in_seq[((b * ${T}u + n - ${S}u) * ${H}u + h) * ${d}u + e]; }
  }
  out_next[idx] = x;`;
  const total = grad ? B * H * rows * d : B * H * S * d;
  return {
    key: `${grad ? TAIL_GRAD : TAIL}:${[B, T, H, S, d]}`,
    inputs: grad ? ['seg', 'dy'] : ['state', 'seq', 'seg'],
    outputs: grad
      ? [
          { name: 'dstate', shape: [B, H, S, d] },
          { name: 'dseq', shape: [B, T, H, d] },
        ]
      : [{ name: 'next', shape: [B, H, S, d] }],
    workgroupSize: 64,
    workgroups: Math.ceil(total / 64),
    source: `${common}
fn main(wg: u32, lid: u32) {
  let idx = wg * 64u + lid;
  if (idx >= ${total}u) { return; }
${body}
}`,
  };
}

let registered = false;

function register(): void {
  if (registered) return;
  registered = true;
  const kernel = (name: string, make: (inputs: tf.NamedTensorInfoMap) => FusedProgram) =>
    registerProgramKernel(name, (inputs) => make(inputs));
  kernel(TIME, (i) => timeProgram(i.starts!.shape[0]!, i.starts!.shape[1]!));
  const dims = (state: tf.TensorInfo, seg: tf.TensorInfo) => {
    const [B, H, S, d] = state.shape as number[];
    return [B!, seg.shape[1]!, H!, S!, d!] as const;
  };
  kernel(TAIL, (i) => tailProgram(...dims(i.state!, i.seg!), false));
  kernel(TAIL_GRAD, (i) => tailProgram(...dims(i.dy!, i.seg!), true));
  tf.registerGradient({
    kernelName: TAIL,
    inputsToSave: ['seg'],
    gradFunc: (dy, [seg]) => {
      const [dstate, dseq] = tf.engine().runKernel(TAIL_GRAD, { seg: seg!, dy: dy as tf.Tensor }) as tf.Tensor[];
      return { state: () => dstate!, seq: () => dseq!, seg: () => tf.zerosLike(seg!) };
    },
  });
}

/** Time information of a [B, T] episode-start mask from the counters pos0 [B] (WebGPU only; see `timeProgram`). */
export function fusedTimeInfo(
  starts: tf.Tensor2D,
  pos0: tf.Tensor1D,
): { pos: tf.Tensor2D; seg: tf.Tensor2D; segLast: tf.Tensor2D; next: tf.Tensor1D } {
  register();
  const [pos, seg, segLast, next] = tf.engine().runKernel(TIME, { starts, pos0 }) as tf.Tensor[];
  return { pos: pos as tf.Tensor2D, seg: seg as tf.Tensor2D, segLast: segLast as tf.Tensor2D, next: next as tf.Tensor1D };
}

/** The next KV buffer from the state's [B, H, S, d] and the sequence's [B, T, H, d] (WebGPU only). */
export function fusedBufferTail(state: tf.Tensor, seq: tf.Tensor, seg: tf.Tensor2D): tf.Tensor {
  register();
  return tf.engine().runKernel(TAIL, { state, seq, seg }) as tf.Tensor;
}
