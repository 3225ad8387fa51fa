/**
 * Live mode: an exported agent (its run config and `weights.safetensors`) playing one episode of a registered env
 * on one env, the way `hqlt record --num-envs 1` does (same env seed, same sampling stream). Node-free: the viewer
 * page bundles it and runs it with tfjs in the browser; tests run the same function in Node to compare actions.
 */
import '../../envs/popgym/register-games.js';
import '../../envs/popgym/register-control.js';
import '../../envs/tasks/register.js';
import { make } from '../../envs/registry.js';
import { batchOf } from '../../envs/spaces.js';
import { RecurrentAgent } from '../../agents/agent.js';
import type { CoreConfig } from '../../memory/core.js';
import { createCore } from '../../memory/registry.js';
import { disposeState } from '../../memory/state.js';
import { assignWeights } from '../../memory/weights.js';
import { decodeSafetensors } from '../../util/safetensors.js';
import { deriveSeed, makeRng } from '../../util/random.js';
import { EpisodeBuilder, enableRender, renderOf, type RecordedEpisode, type SaliencySteps } from './episode.js';

/** The part of a run's config that builds its agent (a `TrainConfig` has all of it). */
export interface AgentConfig {
  env: string;
  envKwargs: Record<string, unknown>;
  core: CoreConfig;
  seed: number;
  previousAction: boolean;
}

export interface LiveOptions {
  /** Env seed (and sampling seed), as `hqlt record --seed`. */
  seed: number;
  /** At most this many steps (the episode may end sooner). */
  maxSteps: number;
  deterministic: boolean;
  introspect: boolean;
  saliency: SaliencySteps;
  /** Called after each step (e.g. to draw progress); may be async. */
  onStep?: (t: number) => void | Promise<void>;
}

/** A config from a run's `trainer.json` (`{config: ...}`) or a bare config object. */
export function agentConfigOf(json: unknown): AgentConfig {
  const c = ((json as { config?: unknown })?.config ?? json) as Partial<AgentConfig> | null;
  if (!c || typeof c.env !== 'string' || !c.core || typeof c.core.type !== 'string')
    throw new Error('The agent config needs env and core (a run\'s checkpoint/trainer.json, or its config).');
  return { env: c.env, envKwargs: c.envKwargs ?? {}, core: c.core, seed: c.seed ?? 1, previousAction: c.previousAction ?? true };
}

/** Plays one episode (see the module comment); the agent and env are made and freed here. */
export async function playLive(config: AgentConfig, weights: Uint8Array, opts: LiveOptions): Promise<RecordedEpisode> {
  const env = make(config.env, config.envKwargs);
  enableRender(env);
  // As `buildAgent` seeds them, though the weights are then replaced by the exported ones.
  const core = createCore(config.core, deriveSeed(config.seed, 'core'));
  const agent = new RecurrentAgent(core, env.observationSpace, env.actionSpace, {
    seed: config.seed,
    previousAction: config.previousAction,
  });
  let state = agent.initialState(1);
  try {
    assignWeights(agent, decodeSafetensors(weights, 'weights.safetensors').tensors, 'weights.safetensors');
    const rng = makeRng(deriveSeed(opts.seed, 'eval'));
    const episode = new EpisodeBuilder(agent);
    let obs = env.reset({ seed: opts.seed }).obs;
    for (let t = 0; t < opts.maxSteps; t++) {
      const render = renderOf(env);
      const res = await agent.act(batchOf(env.observationSpace, [obs]), state, [t === 0 ? 1 : 0], { deterministic: opts.deterministic, rng, introspect: opts.introspect });
      disposeState(state);
      state = res.state;
      episode.add(res, 0, obs, render);
      const step = env.step(res.actions[0]);
      episode.reward(step.reward);
      obs = step.obs;
      await opts.onStep?.(t);
      if (step.terminated || step.truncated) break;
    }
    return await episode.finish(0, opts.saliency);
  } finally {
    disposeState(state);
    agent.dispose();
    env.close();
  }
}
