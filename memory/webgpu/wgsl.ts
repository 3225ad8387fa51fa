/** WGSL pieces shared by the fused kernels. */

/** A WGSL f32 literal of x (f32-rounded, always with a decimal point or exponent). */
export function lit(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`lit: ${x} is not finite`);
  const s = Math.fround(x).toPrecision(9);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** Activations as tfjs' WebGPU kernels compute them. */
export const ACTIVATIONS = /* wgsl */ `
fn sigmoid_(x: f32) -> f32 { return 1.0 / (1.0 + exp(-1.0 * x)); }
fn silu_(x: f32) -> f32 { return x * sigmoid_(x); }
`;

/** A loop of the invocation `lid` over 0..n in strides of the workgroup size `nt` (a WGSL `for` header). */
export function strided(index: string, n: number | string, nt: number): string {
  return `for (var ${index} = lid; ${index} < ${n}u; ${index} += ${nt}u)`;
}

/** The smallest power of two ≥ n, clamped to [lo, hi]. */
export function workgroupFor(n: number, lo = 32, hi = 256): number {
  let p = lo;
  while (p < n && p < hi) p *= 2;
  return p;
}
