/**
 * Recording episodes of a trained agent for the viewer (`hqlt record`): the same episodes as `runEval` with the
 * same options (same plan, seed and sampling stream: with introspection and saliency off the actions and returns
 * are identical), plus per step the env's render, the policy, the value and, when asked, the memory's internals
 * and the saliency of past observations.
 */
import { SyncVectorEnv } from '../../envs/vector.js';
import { initBackend } from '../../memory/backend.js';
import { disposeState } from '../../memory/state.js';
import { deriveSeed, makeRng } from '../../util/random.js';
import {
  EpisodeBuilder,
  RECORDING_FORMAT,
  RECORDING_VERSION,
  enableRender,
  policyKind,
  renderOf,
  type RecordedEpisode,
  type Recording,
  type SaliencySteps,
} from '../viewer/episode.js';
import { EpisodeTracker } from '../../envs/episodes.js';
import { loadCheckpoint, readCheckpointConfig } from './checkpoint.js';
import { evalPlan } from './evaluate.js';
import { buildAgent } from './train.js';

export interface RecordOptions {
  run: string;
  episodes?: number;
  /** Another registered env id with the same spaces (default: the run's). */
  env?: string;
  deterministic?: boolean;
  /** As `hqlt eval`'s (default: the run's seed + 10007). */
  seed?: number;
  numEnvs?: number;
  /** Record the memory's internals (default true). */
  introspect?: boolean;
  /** The steps whose saliency over their past is recorded (default all; see `SaliencySteps`). */
  saliency?: SaliencySteps;
  backend?: string;
}

/** Plays and records the episodes; see the module comment. */
export async function runRecord(opts: RecordOptions): Promise<Recording> {
  const { config: trained } = readCheckpointConfig(opts.run);
  const config = { ...trained, env: opts.env ?? trained.env };
  const { numEnvs, seed, quota } = evalPlan(config, { episodes: opts.episodes ?? 1, numEnvs: opts.numEnvs, seed: opts.seed });
  await initBackend(opts.backend ?? config.backend);
  const { agent, env } = await buildAgent(config, numEnvs);
  const introspect = opts.introspect ?? true;
  const saliency = opts.saliency ?? true;
  try {
    loadCheckpoint(opts.run, agent);
    // Remote envs cannot render here: their episodes come without frames.
    const local = env instanceof SyncVectorEnv ? env.envs : null;
    local?.forEach(enableRender);
    const rng = makeRng(deriveSeed(seed, 'eval'));
    const done: RecordedEpisode[][] = quota.map(() => []);
    let open = quota.map(() => new EpisodeBuilder(agent));
    const tracker = new EpisodeTracker(numEnvs);
    let obs = (await env.reset({ seed })).obs;
    let state = agent.initialState(numEnvs);
    while (done.some((d, n) => d.length < quota[n]!)) {
      // Streams whose next step is a reset step, or that have played their share, record nothing.
      const recording = quota.map((q, n) => !tracker.pendingReset[n] && done[n]!.length < q);
      const renders = recording.map((r, n) => (r && local ? renderOf(local[n]!) : {}));
      const res = await agent.act(obs, state, tracker.episodeStart, { deterministic: opts.deterministic, rng, introspect });
      disposeState(state);
      state = res.state;
      recording.forEach((r, n) => r && open[n]!.add(res, n, env.singleObservationSpace.batchItem(obs, n), renders[n]!));
      const step = await env.step(res.actions);
      recording.forEach((r, n) => r && open[n]!.reward(step.rewards[n]!));
      for (const e of tracker.observe(step.rewards, step.terminated, step.truncated)) {
        if (done[e.env]!.length < quota[e.env]!) done[e.env]!.push(await open[e.env]!.finish(e.env, saliency));
        open[e.env] = new EpisodeBuilder(agent);
      }
      obs = step.obs;
    }
    disposeState(state);
    return {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      env: config.env,
      envKwargs: config.envKwargs,
      core: config.core,
      seed,
      deterministic: opts.deterministic ?? false,
      policy: policyKind(env.singleActionSpace),
      // In `runEval`'s order (by env, then episode), so returns compare one to one.
      episodes: done.flat(),
    };
  } finally {
    agent.dispose();
    await env.close();
  }
}
