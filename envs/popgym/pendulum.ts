/**
 * Pendulum physics (Gymnasium's classic_control `PendulumEnv`) and POPGym's position-only variants:
 * PositionOnlyPendulum and NoisyPositionOnlyPendulum.
 */
import { Env, type ResetResult, type RgbImage, type StepResult } from '../env.js';
import { Raster } from '../render.js';
import { Box } from '../spaces.js';
import { addClippedNoise, checkPositive } from './control-common.js';
import type { ReturnBounds } from './game-env.js';

/** The pendulum's state: angle θ (0 = upright) and angular velocity θ̇. */
export interface PendulumState {
  theta: number;
  thetaDot: number;
}

/** Gymnasium's Pendulum constants (g = 10, the default). */
export const PENDULUM = {
  maxSpeed: 8,
  maxTorque: 2,
  dt: 0.05,
  g: 10,
  m: 1,
  l: 1,
} as const;

/** θ wrapped to [−π, π). */
export function angleNormalize(theta: number): number {
  const twoPi = 2 * Math.PI;
  return ((((theta + Math.PI) % twoPi) + twoPi) % twoPi) - Math.PI;
}

/** Gymnasium's cost at a state and (clipped) torque: θ² + 0.1·θ̇² + 0.001·u², with θ wrapped. */
export function pendulumCost(s: PendulumState, torque: number): number {
  const u = clip(torque, -PENDULUM.maxTorque, PENDULUM.maxTorque);
  return angleNormalize(s.theta) ** 2 + 0.1 * s.thetaDot ** 2 + 0.001 * u * u;
}

/** One semi-implicit Euler step: θ̇ first (clipped to ±8), then θ with the new θ̇. */
export function pendulumStep(s: PendulumState, torque: number): PendulumState {
  const { g, m, l, dt, maxSpeed, maxTorque } = PENDULUM;
  const u = clip(torque, -maxTorque, maxTorque);
  const thetaDot = clip(s.thetaDot + ((3 * g) / (2 * l) * Math.sin(s.theta) + (3 / (m * l * l)) * u) * dt, -maxSpeed, maxSpeed);
  return { theta: s.theta + thetaDot * dt, thetaDot };
}

/** The largest cost: π² + 0.1·8² + 0.001·2² = 16.2736044 (POPGym's `low`). */
export const PENDULUM_MAX_COST = Math.PI ** 2 + 0.1 * PENDULUM.maxSpeed ** 2 + 0.001 * PENDULUM.maxTorque ** 2;

function clip(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

export interface PendulumOptions {
  /** Steps before truncation: POPGym's Easy/Medium/Hard use 200/150/100. */
  maxEpisodeLength?: number;
  /** Standard deviation of the Gaussian observation noise (0: none). */
  noiseSigma?: number;
}

/**
 * POPGym's PositionOnlyPendulum (and its noisy variant).
 *
 * - Task: swing the pendulum up and hold it upright; θ starts uniform in [−π, π], θ̇ in [−1, 1].
 * - Observation: Box(2) float32 `[cos θ, sin θ]` in [−1, 1] (the angular velocity is hidden); the noisy variant adds
 *   N(0, σ²) noise, clipped to [−1, 1].
 * - Action: Box(1) torque in [−2, 2].
 * - Reward: Gymnasium's −cost rescaled from [−16.27, 0] to [−1, 1], then divided by L: (1 − 2·cost/16.27)/L.
 * - Ends: never terminates; truncated after L steps.
 * - Difficulty: L = 200/150/100 (harder = shorter episodes) for PositionOnly; σ = 0.1/0.2/0.3 at L = 200 for Noisy.
 * - returnBounds: optimal 1 is an upper bound, not reachable (zero cost at every step; unreachable from most
 *   starts); random is the uniform-random-torque policy's mean return (RANDOM_PENDULUM_RETURN ≈ 0.24 at every L).
 */
export class PositionOnlyPendulum extends Env<Float32Array, Float32Array> {
  readonly observationSpace = new Box(-1, 1, [2]);
  readonly actionSpace = new Box(-PENDULUM.maxTorque, PENDULUM.maxTorque, [1]);
  override readonly metadata = { renderModes: ['ansi', 'rgb_array'], renderFps: 30 };
  readonly maxEpisodeLength: number;
  readonly noiseSigma: number;
  readonly returnBounds: ReturnBounds = {
    optimal: 1,
    random: RANDOM_PENDULUM_RETURN,
    reachable: false,
    source: {
      optimal: 'upper bound: zero cost at every step',
      random: 'measured: 2,000 seeded uniform-random episodes per L; re-checked in test/popgym-control.test.ts',
    },
  };

  private state: PendulumState = { theta: 0, thetaDot: 0 };
  private steps = 0;

  constructor(opts: PendulumOptions = {}) {
    super();
    this.maxEpisodeLength = checkPositive('maxEpisodeLength', opts.maxEpisodeLength ?? 200, true);
    this.noiseSigma = checkPositive('noiseSigma', opts.noiseSigma ?? 0, false, true);
  }

  /** The full hidden state (for scripted policies and tests; agents see only `obs`). */
  get physicalState(): Readonly<PendulumState> {
    return this.state;
  }

  protected resetEnv(): ResetResult<Float32Array> {
    this.state = { theta: Math.PI * (2 * this.rng() - 1), thetaDot: 2 * this.rng() - 1 };
    this.steps = 0;
    return { obs: this.observe(), info: {} };
  }

  protected stepEnv(action: Float32Array): StepResult<Float32Array> {
    const cost = pendulumCost(this.state, action[0]);
    this.state = pendulumStep(this.state, action[0]);
    this.steps++;
    return {
      obs: this.observe(),
      reward: (1 - (2 * cost) / PENDULUM_MAX_COST) / this.maxEpisodeLength,
      terminated: false,
      truncated: this.steps >= this.maxEpisodeLength,
      info: {},
    };
  }

  private observe(): Float32Array {
    const obs = Float32Array.of(Math.cos(this.state.theta), Math.sin(this.state.theta));
    return addClippedNoise(obs, this.noiseSigma, [-1, -1], [1, 1], this.rng);
  }

  /**
   * `ansi` (default): the pendulum tip on a small character grid (up is θ = 0), then the state; `rgb_array`:
   * Gymnasium's picture at 128×128, a red rod from a black axle.
   */
  override render(): string | RgbImage {
    if (this.renderMode === 'rgb_array') {
      const r = new Raster(128, 128, [255, 255, 255]);
      const tip = 48;
      r.line(64, 64, 64 + tip * Math.sin(this.state.theta), 64 - tip * Math.cos(this.state.theta), 10, [204, 77, 77]);
      r.fillRect(60, 60, 8, 8, [0, 0, 0]);
      return r.image();
    }
    const size = 9;
    const c = (size - 1) / 2;
    const rows = Array.from({ length: size }, () => Array<string>(size).fill(' '));
    rows[c][c] = 'o';
    const tipRow = Math.round(c - c * Math.cos(this.state.theta));
    const tipCol = Math.round(c + c * Math.sin(this.state.theta));
    rows[tipRow][tipCol] = '*';
    const s = this.state;
    return `${rows.map((r) => r.join('')).join('\n')}\nθ=${angleNormalize(s.theta).toFixed(3)} θ̇=${s.thetaDot.toFixed(3)} t=${this.steps}`;
  }
}

/**
 * Mean return of the uniform-random-torque policy. Rewards are scaled by 1/L, so a return is the mean per-step
 * reward and barely depends on L: 0.2415 ± 0.004 at L = 200, 0.2364 ± 0.004 at L = 100 (2,000 seeded episodes
 * each; the test re-estimates it). Observation noise does not change it (the policy ignores observations).
 */
export const RANDOM_PENDULUM_RETURN = 0.24;

/** POPGym NoisyPositionOnlyPendulum: `[cos θ, sin θ]` plus N(0, σ²) noise; σ = 0.1/0.2/0.3, L = 200. */
export class NoisyPositionOnlyPendulum extends PositionOnlyPendulum {
  constructor(opts: PendulumOptions = {}) {
    super({ noiseSigma: 0.1, ...opts });
  }
}
