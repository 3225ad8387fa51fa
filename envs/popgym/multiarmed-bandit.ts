/**
 * POPGym's MultiarmedBandit: each episode draws a payout probability p_i ~ U[0, 1) for each of N arms; pulling
 * arm i pays out with probability p_i. The agent must explore, remember what paid, and exploit the best arm.
 *
 * - Observation: Discrete(2), 1 if the last pull paid out (0 at reset).
 * - Action: Discrete(N), the arm to pull.
 * - Reward: +1/L on a payout, −1/L otherwise (L = episode length).
 * - Episode: L steps, then truncated.
 * - Difficulty (N, L): Easy (10, 200), Medium (20, 400), Hard (30, 600).
 *
 * Every info (reset and steps, as POPGym) carries the arm probabilities (`bandits`) for logging; the agent
 * never observes them.
 */
import { Discrete } from '../spaces.js';
import type { ResetResult, StepResult } from '../env.js';
import type { Square } from '../render.js';
import { EMPTY_SQUARE, PopgymGameEnv, intOption, type Difficulty, type ReturnBounds } from './game-env.js';

export interface MultiarmedBanditOptions {
  /** Number of arms N. */
  numBandits?: number;
  /** Steps per episode L. */
  episodeLength?: number;
}

export const MULTIARMED_BANDIT_LEVELS: Readonly<Record<Difficulty, Required<MultiarmedBanditOptions>>> = {
  Easy: { numBandits: 10, episodeLength: 200 },
  Medium: { numBandits: 20, episodeLength: 400 },
  Hard: { numBandits: 30, episodeLength: 600 },
};

export class MultiarmedBandit extends PopgymGameEnv<number, number> {
  readonly observationSpace = new Discrete(2);
  readonly actionSpace: Discrete;
  override readonly obsRequiresPrevAction = true;
  readonly numBandits: number;
  readonly maxEpisodeLength: number;
  /**
   * Optimal is an oracle bound, not reachable (any agent must first explore): always pulling the best arm
   * returns E[2·max p − 1] = 2N/(N + 1) − 1 = (N − 1)/(N + 1) (0.818 / 0.905 / 0.935). A random arm returns
   * E[2p − 1] = 0.
   */
  readonly returnBounds: ReturnBounds;
  private readonly bandits: Float64Array;
  /** The arm probabilities for the infos: one frozen list per episode, shared by its infos (as POPGym's). */
  private banditList: readonly number[] = [];
  private readonly rewardScale: number;
  private steps = 0;
  private lastArm = -1;
  private lastObs = 0;

  constructor(options: MultiarmedBanditOptions = {}) {
    super();
    this.numBandits = intOption('MultiarmedBandit', 'numBandits', options.numBandits, 10, 1);
    this.maxEpisodeLength = intOption('MultiarmedBandit', 'episodeLength', options.episodeLength, 200, 1);
    this.actionSpace = new Discrete(this.numBandits);
    this.bandits = new Float64Array(this.numBandits);
    this.rewardScale = 1 / this.maxEpisodeLength;
    this.returnBounds = {
      optimal: (this.numBandits - 1) / (this.numBandits + 1),
      random: 0,
      reachable: false,
      source: { optimal: 'oracle: always pulls the best arm, known in advance', random: 'analytic: E[2p − 1] = 0 for a random arm' },
    };
  }

  protected resetEnv(): ResetResult<number> {
    const rng = this.rng;
    for (let i = 0; i < this.numBandits; i++) this.bandits[i] = rng();
    this.steps = 0;
    this.lastArm = -1;
    this.lastObs = 0;
    this.banditList = Object.freeze(Array.from(this.bandits));
    return { obs: 0, info: { bandits: this.banditList } };
  }

  protected stepEnv(action: number): StepResult<number> {
    const obs = this.rng() < this.bandits[action] ? 1 : 0;
    this.steps++;
    this.lastArm = action;
    this.lastObs = obs;
    const reward = obs ? this.rewardScale : -this.rewardScale;
    return { obs, reward, terminated: false, truncated: this.steps >= this.maxEpisodeLength, info: { bandits: this.banditList } };
  }

  /** The arm with the highest payout probability (hidden state; for scripted tests, never observed). */
  bestArm(): number {
    let best = 0;
    for (let i = 1; i < this.numBandits; i++) if (this.bandits[i] > this.bandits[best]) best = i;
    return best;
  }

  ansi(): string {
    const arms = Array.from(this.bandits, (p, i) => `${i === this.lastArm ? '>' : ' '}${i}:${p.toFixed(2)}`);
    return (
      `MultiarmedBandit  step ${this.steps}/${this.maxEpisodeLength}  last pull ${this.lastArm < 0 ? '-' : this.lastArm}` +
      ` ${this.lastArm < 0 ? '' : this.lastObs ? 'paid' : 'missed'}\n` + arms.join(' ')
    );
  }

  /**
   * A column per arm: its payout probability (hidden state, for people) as the green of the square and in tenths,
   * over the last pull, green where it paid and red where it did not.
   */
  squares(): Square[][] {
    const shade = (p: number, k: number) => Math.round(255 - k * p);
    const arms = Array.from(this.bandits, (p): Square => ({ fill: [shade(p, 200), shade(p, 60), shade(p, 200)], mark: String(Math.round(10 * p)) }));
    const pulls = arms.map((_, i): Square => (i === this.lastArm ? { fill: this.lastObs ? [60, 180, 75] : [220, 50, 50] } : EMPTY_SQUARE));
    return [arms, pulls];
  }
}
