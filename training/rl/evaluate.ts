/**
 * Evaluating a trained agent: `runEval` loads a run's checkpoint and plays whole episodes, reporting mean ± std
 * return and the success rate.
 */
import type { Env } from '../../envs/env.js';
import { EpisodeTracker } from '../../envs/episodes.js';
import { make } from '../../envs/registry.js';
import { initBackend } from '../../memory/backend.js';
import { deriveSeed, makeRng } from '../../util/random.js';
import { disposeState } from '../../memory/state.js';
import { loadCheckpoint, readCheckpointConfig } from './checkpoint.js';
import { isRemoteEnvId } from '../../envs/remote/index.js';
import { buildAgent } from './train.js';
import type { TrainConfig } from './config.js';

export interface EvalOptions {
  run: string;
  episodes?: number;
  deterministic?: boolean;
  /** Env and sampling seed (default: the run's seed + 10007, so evaluation episodes differ from training's). */
  seed?: number;
  numEnvs?: number;
  successThreshold?: number;
  backend?: string;
  /** Longest wait in ms for a remote env server's reply (default: the run's). */
  remoteTimeout?: number;
}

export interface EvalResult {
  env: string;
  episodes: number;
  returns: number[];
  mean: number;
  std: number;
  successRate: number;
  threshold: number;
  /** Where the threshold came from. */
  thresholdRule: string;
}

/** The success threshold for an env: see the module comment. */
export function successThreshold(envId: string, kwargs: Record<string, unknown>): { threshold: number; rule: string } {
  if (isRemoteEnvId(envId)) return { threshold: Number.MIN_VALUE, rule: 'return > 0 (a remote env declares no optimal return)' };
  const env: Env = make(envId, kwargs);
  const bounds = (env.unwrapped as { returnBounds?: { optimal?: number } }).returnBounds;
  env.close();
  const optimal = bounds?.optimal;
  if (typeof optimal === 'number' && Number.isFinite(optimal)) {
    return { threshold: 0.9 * optimal, rule: `90% of the optimal return ${optimal}` };
  }
  return { threshold: Number.MIN_VALUE, rule: 'return > 0 (the env declares no optimal return)' };
}

/**
 * The episode plan shared by `runEval` and `hqlt record` (so a recording replays evaluation exactly): env count,
 * seed, and how many episodes each env plays (each its share, so short episodes are not over-represented).
 */
export function evalPlan(
  config: Pick<TrainConfig, 'env' | 'numEnvs' | 'seed'>,
  opts: Pick<EvalOptions, 'episodes' | 'numEnvs' | 'seed'>,
): { numEnvs: number; seed: number; quota: number[] } {
  const episodes = opts.episodes ?? 100;
  if (!Number.isInteger(episodes) || episodes <= 0) throw new Error(`--episodes must be a positive integer, got ${episodes}.`);
  // Remote servers host a fixed number of envs; local ones can shrink to the episode count.
  const numEnvs = isRemoteEnvId(config.env) ? config.numEnvs : Math.min(opts.numEnvs ?? config.numEnvs, episodes);
  const quota = Array.from({ length: numEnvs }, (_, n) => Math.floor(episodes / numEnvs) + (n < episodes % numEnvs ? 1 : 0));
  return { numEnvs, seed: opts.seed ?? config.seed + 10007, quota };
}

/** Runs `episodes` episodes (see `evalPlan`). */
export async function runEval(opts: EvalOptions): Promise<EvalResult> {
  const { config } = readCheckpointConfig(opts.run);
  const { numEnvs, seed, quota } = evalPlan(config, opts);
  await initBackend(opts.backend ?? config.backend);
  const remoteTimeoutMs = opts.remoteTimeout ?? config.remoteTimeoutMs;
  const { agent, env } = await buildAgent({ ...config, remoteTimeoutMs }, numEnvs);
  try {
    loadCheckpoint(opts.run, agent);
    const rng = makeRng(deriveSeed(seed, 'eval'));
    const returns: number[][] = quota.map(() => []);
    const tracker = new EpisodeTracker(numEnvs);
    let obs = (await env.reset({ seed })).obs;
    let state = agent.initialState(numEnvs);
    while (returns.some((r, n) => r.length < quota[n])) {
      const res = await agent.act(obs, state, tracker.episodeStart, { deterministic: opts.deterministic, rng });
      disposeState(state);
      state = res.state;
      const step = await env.step(res.actions);
      for (const e of tracker.observe(step.rewards, step.terminated, step.truncated)) {
        if (returns[e.env].length < quota[e.env]) returns[e.env].push(e.r);
      }
      obs = step.obs;
    }
    disposeState(state);
    const all = returns.flat();
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    const std = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / all.length);
    const { threshold, rule } =
      opts.successThreshold !== undefined
        ? { threshold: opts.successThreshold, rule: `return ≥ ${opts.successThreshold} (--success-threshold)` }
        : successThreshold(config.env, config.envKwargs);
    const successRate = all.filter((r) => r >= threshold).length / all.length;
    return { env: config.env, episodes: all.length, returns: all, mean, std, successRate, threshold, thresholdRule: rule };
  } finally {
    agent.dispose();
    await env.close();
  }
}

