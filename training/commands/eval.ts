/**
 * `hqlt eval`: runs a trained agent (a run's checkpoint) for a number of episodes and reports mean ± std return
 * and the success rate.
 *
 * Success: return ≥ 90% of the env's optimal return when the env declares `returnBounds.optimal` (POPGym and the
 * memory tasks do), else return > 0. `--success-threshold` overrides both.
 */
import type { Command } from 'commander';
import type { Env } from '../../envs/env.js';
import { make } from '../../envs/registry.js';
import { initBackend } from '../../memory/backend.js';
import { deriveSeed, makeRng } from '../../memory/random.js';
import { disposeState } from '../../memory/state.js';
import { loadCheckpoint, readCheckpointConfig } from '../checkpoint.js';
import { EpisodeTracker } from '../rollout.js';
import { backendOption, intArg, numberArg, remoteTimeoutOption } from './options.js';
import { isRemoteEnvId } from '../../envs/remote/index.js';
import { buildAgent } from './train.js';

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

/** Runs `episodes` episodes (each env runs its share, so short episodes are not over-represented). */
export async function runEval(opts: EvalOptions): Promise<EvalResult> {
  const episodes = opts.episodes ?? 100;
  if (!Number.isInteger(episodes) || episodes <= 0) throw new Error(`--episodes must be a positive integer, got ${episodes}.`);
  const { config } = readCheckpointConfig(opts.run);
  await initBackend(opts.backend ?? config.backend);
  // Remote servers host a fixed number of envs; local ones can shrink to the episode count.
  const numEnvs = isRemoteEnvId(config.env) ? config.numEnvs : Math.min(opts.numEnvs ?? config.numEnvs, episodes);
  const remoteTimeoutMs = opts.remoteTimeout ?? config.remoteTimeoutMs;
  const { agent, env } = await buildAgent({ ...config, remoteTimeoutMs }, numEnvs);
  try {
    loadCheckpoint(opts.run, agent);
    const seed = opts.seed ?? config.seed + 10007;
    const rng = makeRng(deriveSeed(seed, 'eval'));
    const quota = Array.from({ length: numEnvs }, (_, n) => Math.floor(episodes / numEnvs) + (n < episodes % numEnvs ? 1 : 0));
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
        if (returns[e.env].length < quota[e.env]) returns[e.env].push(e.return);
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

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained run: mean ± std return and success rate over N episodes')
    .requiredOption('--run <runDir>', 'the run folder, e.g. runs/<name>')
    .option('--episodes <n>', 'episodes to run (default 100)', intArg)
    .option('--deterministic', 'take the most likely action instead of sampling')
    .option('--seed <n>', 'env and sampling seed (default: the run seed + 10007)', intArg)
    .option('--num-envs <n>', 'parallel envs (default: the run’s)', intArg)
    .option('--success-threshold <x>', 'return counted as a success (default: 90% of the optimal return, else > 0)', Number)
    .addOption(backendOption())
    .addOption(remoteTimeoutOption())
    .option('--json', 'print the result as JSON')
    .action(async (o: EvalOptions & { json?: boolean }) => {
      const r = await runEval(o);
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`${r.env}: ${r.episodes} episodes${o.deterministic ? ' (deterministic)' : ''}`);
      console.log(`return ${r.mean.toFixed(3)} ± ${r.std.toFixed(3)}`);
      console.log(`success ${(100 * r.successRate).toFixed(1)}% (success = ${r.thresholdRule})`);
    });
}
