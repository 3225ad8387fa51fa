/**
 * CartPole physics (Gymnasium's classic_control `CartPoleEnv`, Barto, Sutton & Anderson 1983) and POPGym's
 * partially observable variants: PositionOnlyCartPole, VelocityOnlyCartPole, NoisyPositionOnlyCartPole.
 */
import { Env, type ResetResult, type RgbImage, type StepResult } from '../env.js';
import { Box, Discrete } from '../spaces.js';
import { Raster } from '../render.js';
import { addClippedNoise, checkBoolean, checkPositive } from './control-common.js';
import type { ReturnBounds } from './game-env.js';

/** The full CartPole state: cart position, cart velocity, pole angle (rad), pole angular velocity. */
export interface CartPoleState {
  x: number;
  xDot: number;
  theta: number;
  thetaDot: number;
}

/** Gymnasium's CartPole constants. */
export const CARTPOLE = {
  gravity: 9.8,
  massCart: 1.0,
  massPole: 0.1,
  /** Half the pole's length. */
  length: 0.5,
  forceMag: 10.0,
  /** Seconds per step. */
  tau: 0.02,
  thetaThreshold: (12 * 2 * Math.PI) / 360,
  xThreshold: 2.4,
} as const;

/**
 * One explicit-Euler step of the cart-pole equations (Gymnasium's default `euler` integrator): positions advance
 * with the old velocities, velocities with the accelerations at the old state. Action 1 pushes right, 0 left.
 */
export function cartPoleStep(s: CartPoleState, action: number): CartPoleState {
  const { gravity, massCart, massPole, length, forceMag, tau } = CARTPOLE;
  const totalMass = massCart + massPole;
  const poleMassLength = massPole * length;
  const force = action === 1 ? forceMag : -forceMag;
  const cos = Math.cos(s.theta);
  const sin = Math.sin(s.theta);
  const temp = (force + poleMassLength * s.thetaDot * s.thetaDot * sin) / totalMass;
  const thetaAcc = (gravity * sin - cos * temp) / (length * (4 / 3 - (massPole * cos * cos) / totalMass));
  const xAcc = temp - (poleMassLength * thetaAcc * cos) / totalMass;
  return {
    x: s.x + tau * s.xDot,
    xDot: s.xDot + tau * xAcc,
    theta: s.theta + tau * s.thetaDot,
    thetaDot: s.thetaDot + tau * thetaAcc,
  };
}

/** Whether the pole fell (|θ| > 12°) or the cart left the track (|x| > 2.4). */
export function cartPoleFailed(s: CartPoleState): boolean {
  return Math.abs(s.x) > CARTPOLE.xThreshold || Math.abs(s.theta) > CARTPOLE.thetaThreshold;
}

/** Which half of the state the agent sees. */
export type CartPoleView = 'position' | 'velocity';

export interface CartPoleOptions {
  /** Steps before truncation: POPGym's Easy/Medium/Hard use 200/400/600. */
  maxEpisodeLength?: number;
  /** Standard deviation of the Gaussian observation noise (0: none). */
  noiseSigma?: number;
}

export interface VelocityOnlyCartPoleOptions {
  maxEpisodeLength?: number;
  /** Opt-in departure from POPGym (listed in README, "POPGym's rules, exactly"): observe velocities at reset too. */
  velocityAtReset?: boolean;
}

/** Observation bounds per view (POPGym's: twice the failure thresholds for positions, unbounded velocities). */
const OBS_HIGH: Record<CartPoleView, number[]> = {
  position: [CARTPOLE.xThreshold * 2, CARTPOLE.thetaThreshold * 2],
  velocity: [Infinity, Infinity],
};
const OBS_LOW: Record<CartPoleView, number[]> = {
  position: OBS_HIGH.position.map((h) => -h),
  velocity: OBS_HIGH.velocity.map((h) => -h),
};

/**
 * POPGym's partially observable CartPole.
 *
 * - Task: balance the pole by pushing the cart left (0) or right (1); the state starts uniform in ±0.05.
 * - Observation: Box(2) float32, either positions `[x, θ]` (bounds ±4.8, ±0.419 rad) or velocities `[ẋ, θ̇]`
 *   (unbounded); the noisy variant adds N(0, σ²) noise to positions, clipped to the bounds. As POPGym, every
 *   variant observes positions at reset (VelocityOnly too, unless `velocityAtReset`).
 * - Action: Discrete(2).
 * - Reward: 1/L per step, including the step where the pole falls (POPGym's −1 failure branch never fires
 *   because Gymnasium's CartPole pays +1 on the falling step), so the return is episode length / L.
 * - Ends: terminated when the pole falls or the cart leaves ±2.4; truncated after L steps.
 * - Difficulty: L = 200/400/600 for PositionOnly and VelocityOnly; σ = 0.1/0.2/0.3 at L = 200 for Noisy.
 * - returnBounds: optimal 1 (balancing for L steps), reachable without noise (an observation-only controller
 *   balances, see test/popgym-bounds.test.ts), not shown reachable through the noise; random is the
 *   uniform-random policy's mean episode length (RANDOM_EPISODE_LENGTH ≈ 22.25 steps) divided by L.
 */
export class PartialCartPole extends Env<Float32Array, number> {
  readonly observationSpace: Box;
  readonly actionSpace = new Discrete(2);
  override readonly metadata = { renderModes: ['ansi', 'rgb_array'], renderFps: 50 };
  readonly maxEpisodeLength: number;
  readonly noiseSigma: number;
  readonly returnBounds: ReturnBounds;

  private state: CartPoleState = { x: 0, xDot: 0, theta: 0, thetaDot: 0 };
  private steps = 0;

  constructor(
    readonly view: CartPoleView,
    opts: CartPoleOptions = {},
    /** What the reset observation shows. */
    readonly resetView: CartPoleView = 'position',
  ) {
    super();
    this.maxEpisodeLength = checkPositive('maxEpisodeLength', opts.maxEpisodeLength ?? 200, true);
    this.noiseSigma = checkPositive('noiseSigma', opts.noiseSigma ?? 0, false, true);
    this.observationSpace = new Box(OBS_LOW[view], OBS_HIGH[view], [2]);
    const noisy = this.noiseSigma > 0;
    this.returnBounds = {
      optimal: 1,
      random: RANDOM_EPISODE_LENGTH / this.maxEpisodeLength,
      reachable: !noisy,
      source: {
        optimal: noisy ? 'upper bound: 1/L for each of L steps' : 'measured: an observation-only controller balances all L steps, test/popgym-bounds.test.ts',
        random: 'measured: mean length of 20,000 seeded uniform-random episodes / L; re-checked in test/popgym-control.test.ts',
      },
    };
  }

  /** The full hidden state (for scripted policies and tests; agents see only `obs`). */
  get physicalState(): Readonly<CartPoleState> {
    return this.state;
  }

  protected resetEnv(): ResetResult<Float32Array> {
    const u = () => -0.05 + 0.1 * this.rng();
    this.state = { x: u(), xDot: u(), theta: u(), thetaDot: u() };
    this.steps = 0;
    return { obs: this.observe(this.resetView), info: {} };
  }

  protected stepEnv(action: number): StepResult<Float32Array> {
    this.state = cartPoleStep(this.state, action);
    this.steps++;
    return {
      obs: this.observe(this.view),
      reward: 1 / this.maxEpisodeLength,
      terminated: cartPoleFailed(this.state),
      truncated: this.steps >= this.maxEpisodeLength,
      info: {},
    };
  }

  /** The observed half of the state, with the noise of the noisy variant. */
  private observe(view: CartPoleView): Float32Array {
    const s = this.state;
    const obs = Float32Array.from(view === 'position' ? [s.x, s.theta] : [s.xDot, s.thetaDot]);
    return addClippedNoise(obs, this.noiseSigma, OBS_LOW[view], OBS_HIGH[view], this.rng);
  }

  /** `ansi` (default): the track with the cart and the pole's lean, then the state; `rgb_array`: a 240×120 drawing. */
  override render(): string | RgbImage {
    if (this.renderMode === 'rgb_array') {
      // Gymnasium's picture: the track spans ±2·xThreshold, the pole (length 1 in these units) leans by θ.
      const r = new Raster(240, 120, [255, 255, 255]);
      const scale = 240 / (4 * CARTPOLE.xThreshold);
      const cx = 120 + this.state.x * scale;
      r.fillRect(0, 100, 240, 1, [0, 0, 0]);
      r.fillRect(cx - 15, 90, 30, 15, [40, 40, 40]);
      r.line(cx, 92, cx + Math.sin(this.state.theta) * scale, 92 - Math.cos(this.state.theta) * scale, 4, [202, 152, 101]);
      return r.image();
    }
    const width = 41;
    const col = Math.round(((this.state.x + 2 * CARTPOLE.xThreshold) / (4 * CARTPOLE.xThreshold)) * (width - 1));
    const lean = this.state.theta > 0.02 ? '/' : this.state.theta < -0.02 ? '\\' : '|';
    const pole = ' '.repeat(Math.max(0, Math.min(width - 1, col))) + lean;
    const cart = ' '.repeat(Math.max(0, Math.min(width - 1, col))) + '#';
    const s = this.state;
    const fmt = (v: number) => (v >= 0 ? '+' : '') + v.toFixed(3);
    return `${pole}\n${cart}\n${'='.repeat(width)}\nx=${fmt(s.x)} ẋ=${fmt(s.xDot)} θ=${fmt(s.theta)} θ̇=${fmt(s.thetaDot)} t=${this.steps}`;
  }
}

/**
 * The uniform-random policy's mean CartPole episode length: 22.25 ± 0.08 (20,000 seeded episodes; the test
 * re-estimates it). Episodes this short are never truncated at POPGym's L >= 200.
 */
export const RANDOM_EPISODE_LENGTH = 22.25;

/** POPGym PositionOnlyCartPole: observes `[x, θ]`; L = 200/400/600. */
export class PositionOnlyCartPole extends PartialCartPole {
  constructor(opts: { maxEpisodeLength?: number } = {}) {
    super('position', { maxEpisodeLength: opts.maxEpisodeLength });
  }
}

/**
 * POPGym VelocityOnlyCartPole: observes `[ẋ, θ̇]` after every step, and POPGym's `[x, θ]` at reset (its reset
 * keeps the position view); L = 200/400/600.
 */
export class VelocityOnlyCartPole extends PartialCartPole {
  constructor(opts: VelocityOnlyCartPoleOptions = {}) {
    const atReset = checkBoolean('velocityAtReset', opts.velocityAtReset ?? false);
    super('velocity', { maxEpisodeLength: opts.maxEpisodeLength }, atReset ? 'velocity' : 'position');
  }
}

/** POPGym NoisyPositionOnlyCartPole: `[x, θ]` plus N(0, σ²) noise; σ = 0.1/0.2/0.3, L = 200. */
export class NoisyPositionOnlyCartPole extends PartialCartPole {
  constructor(opts: CartPoleOptions = {}) {
    super('position', { noiseSigma: 0.1, ...opts });
  }
}
