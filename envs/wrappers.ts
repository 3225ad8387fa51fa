/**
 * Env wrappers, as Gymnasium 1.x's: the bases `Wrapper` (same spaces, forwards everything), `ObservationWrapper`,
 * `ActionWrapper` and `RewardWrapper` (each changes one thing through one method), and the built-ins TimeLimit,
 * OrderEnforcing, RecordEpisodeStatistics, FlattenObservation, ClipAction, plus POPGym's PreviousAction.
 */
import { describeValue, Env, type EnvMetadata, type ResetOptions, type ResetResult, type RgbImage, type StepResult } from './env.js';
import { EpisodeStatistics } from './episodes.js';

export type { EpisodeStats } from './episodes.js';
import { Box, Dict, Discrete, MultiBinary, MultiDiscrete, Space, Tuple, flattenSpace } from './spaces.js';

/**
 * What every wrapper shares: the env it wraps (observations `O`, actions `A`), its own spaces (`WO`, `WA`),
 * and render, close, name and `unwrapped` forwarded down the chain. Subclasses say how reset and step map.
 */
export abstract class BaseWrapper<WO, WA, O, A> extends Env<WO, WA> {
  override readonly metadata: EnvMetadata;

  constructor(
    readonly env: Env<O, A>,
    readonly observationSpace: Space<WO>,
    readonly actionSpace: Space<WA>,
  ) {
    super();
    this.metadata = env.metadata;
    this.renderMode = env.renderMode;
  }
  override render(): string | RgbImage | undefined {
    return this.env.render();
  }
  override close(): void {
    this.env.close();
  }
  override get name(): string {
    return this.specId ?? `${this.constructor.name}<${this.env.name}>`;
  }
  override get unwrapped(): Env {
    return this.env.unwrapped;
  }
}

/** Checks that `env` is an Env before a wrapper's constructor reads its spaces. */
function wrappable<E>(env: E, wrapper: string): E {
  if (!(env instanceof Env)) throw new Error(`${wrapper}: expected an Env to wrap, got ${String(env)}.`);
  return env;
}

/** A wrapper that keeps the spaces: forwards reset (with its seed) and step; override them to add bookkeeping. */
export class Wrapper<O = unknown, A = unknown> extends BaseWrapper<O, A, O, A> {
  constructor(env: Env<O, A>) {
    super(wrappable(env, new.target.name), env.observationSpace, env.actionSpace);
  }
  protected resetEnv(options: Record<string, unknown>, seed?: number): ResetResult<O> {
    return this.env.reset({ seed, options });
  }
  protected stepEnv(action: A): StepResult<O> {
    return this.env.step(action);
  }
}

/** Maps every observation (reset's and step's) through `observation`, into `observationSpace`. */
export abstract class ObservationWrapper<WO, O = unknown, A = unknown> extends BaseWrapper<WO, A, O, A> {
  constructor(env: Env<O, A>, observationSpace: Space<WO>) {
    super(wrappable(env, new.target.name), observationSpace, env.actionSpace);
  }
  /** The wrapper's observation for one of the inner env's. */
  abstract observation(obs: O): WO;
  protected resetEnv(options: Record<string, unknown>, seed?: number): ResetResult<WO> {
    const { obs, info } = this.env.reset({ seed, options });
    return { obs: this.observation(obs), info };
  }
  protected stepEnv(action: A): StepResult<WO> {
    const result = this.env.step(action);
    return { ...result, obs: this.observation(result.obs) };
  }
}

/** Maps every action through `action` before the inner env sees it; the wrapper takes `actionSpace`. */
export abstract class ActionWrapper<WA, O = unknown, A = unknown> extends BaseWrapper<O, WA, O, A> {
  constructor(env: Env<O, A>, actionSpace: Space<WA>) {
    super(wrappable(env, new.target.name), env.observationSpace, actionSpace);
  }
  /** The inner env's action for one of the wrapper's. */
  abstract action(action: WA): A;
  protected resetEnv(options: Record<string, unknown>, seed?: number): ResetResult<O> {
    return this.env.reset({ seed, options });
  }
  protected stepEnv(action: WA): StepResult<O> {
    return this.env.step(this.action(action));
  }
}

/** Maps every reward through `reward`. */
export abstract class RewardWrapper<O = unknown, A = unknown> extends Wrapper<O, A> {
  /** The wrapper's reward for one of the inner env's. */
  abstract reward(reward: number): number;
  protected override stepEnv(action: A): StepResult<O> {
    const result = this.env.step(action);
    return { ...result, reward: this.reward(result.reward) };
  }
}

/**
 * The one place single envs are checked (`make` puts it outermost, so it sees the time limit's ends too): step()
 * before reset(), after the episode ended or after close(), reset() after close(), and actions outside the action
 * space, each with an error naming the env. Gymnasium splits this into OrderEnforcing and PassiveEnvChecker
 * (which checks only the first step and warns); here every step is checked and errors are thrown. Vector envs
 * make their envs without it and check each batch once instead.
 */
export class OrderEnforcing<O = unknown, A = unknown> extends Wrapper<O, A> {
  private phase: 'unreset' | 'running' | 'done' | 'closed' = 'unreset';

  override reset(opts: ResetOptions = {}): ResetResult<O> {
    if (this.phase === 'closed') throw new Error(`${this.name}: reset() called after close().`);
    const result = super.reset(opts);
    this.phase = 'running';
    return result;
  }
  override step(action: A): StepResult<O> {
    if (this.phase === 'unreset') throw new Error(`${this.name}: step() called before reset(). Call reset() first.`);
    if (this.phase === 'closed') throw new Error(`${this.name}: step() called after close().`);
    if (this.phase === 'done')
      throw new Error(`${this.name}: step() called after the episode ended (terminated or truncated). Call reset().`);
    if (!this.actionSpace.contains(action))
      throw new Error(`${this.name}: action ${describeValue(action)} is not in the action space ${this.actionSpace}.`);
    const result = super.step(action);
    if (result.terminated || result.truncated) this.phase = 'done';
    return result;
  }
  override close(): void {
    super.close();
    this.phase = 'closed';
  }
  /** Transparent in messages: the checked env's name. */
  override get name(): string {
    return this.specId ?? this.env.name;
  }
}

/** Truncates episodes after `maxEpisodeSteps` steps (`truncated = true` on the last one), as Gymnasium's. */
export class TimeLimit<O = unknown, A = unknown> extends Wrapper<O, A> {
  private elapsed = 0;

  constructor(
    env: Env<O, A>,
    readonly maxEpisodeSteps: number,
  ) {
    super(env);
    if (!Number.isInteger(maxEpisodeSteps) || maxEpisodeSteps <= 0)
      throw new Error(`TimeLimit: maxEpisodeSteps must be a positive integer, got ${maxEpisodeSteps}.`);
  }
  /** Steps taken in the current episode. */
  get elapsedSteps(): number {
    return this.elapsed;
  }
  protected override resetEnv(options: Record<string, unknown>, seed?: number): ResetResult<O> {
    this.elapsed = 0;
    return super.resetEnv(options, seed);
  }
  protected override stepEnv(action: A): StepResult<O> {
    const result = super.stepEnv(action);
    this.elapsed++;
    return this.elapsed >= this.maxEpisodeSteps ? { ...result, truncated: true } : result;
  }
}

/**
 * Adds `info[statsKey] = {r, l, t}` on the step an episode ends, and keeps the last `bufferLength` returns,
 * lengths and times in `returnQueue`/`lengthQueue`/`timeQueue`, as Gymnasium's RecordEpisodeStatistics.
 */
export class RecordEpisodeStatistics<O = unknown, A = unknown> extends Wrapper<O, A> {
  readonly returnQueue: number[] = [];
  readonly lengthQueue: number[] = [];
  readonly timeQueue: number[] = [];
  readonly bufferLength: number;
  readonly statsKey: string;
  private readonly episode = new EpisodeStatistics(1);

  constructor(env: Env<O, A>, opts: { bufferLength?: number; statsKey?: string } = {}) {
    super(env);
    this.bufferLength = opts.bufferLength ?? 100;
    this.statsKey = opts.statsKey ?? 'episode';
    if (!Number.isInteger(this.bufferLength) || this.bufferLength <= 0)
      throw new Error(`RecordEpisodeStatistics: bufferLength must be a positive integer, got ${this.bufferLength}.`);
  }
  protected override resetEnv(options: Record<string, unknown>, seed?: number): ResetResult<O> {
    const result = super.resetEnv(options, seed);
    this.episode.begin(0);
    return result;
  }
  protected override stepEnv(action: A): StepResult<O> {
    const result = super.stepEnv(action);
    this.episode.add(0, result.reward);
    if (!(result.terminated || result.truncated)) return result;
    if (this.statsKey in result.info)
      throw new Error(`RecordEpisodeStatistics: the env's info already has a '${this.statsKey}' key.`);
    const stats = this.episode.stats(0);
    push(this.returnQueue, stats.r, this.bufferLength);
    push(this.lengthQueue, stats.l, this.bufferLength);
    push(this.timeQueue, stats.t, this.bufferLength);
    return { ...result, info: { ...result.info, [this.statsKey]: stats } };
  }
}

/** Observations flattened to a Float32Array through the space (`flattenSpace` gives the new space). */
export class FlattenObservation<O = unknown, A = unknown> extends ObservationWrapper<Float32Array, O, A> {
  constructor(env: Env<O, A>) {
    super(env, flattenSpace(wrappable(env, 'FlattenObservation').observationSpace));
  }
  observation(obs: O): Float32Array {
    return this.env.observationSpace.flatten(obs);
  }
}

/** Clips Box actions to the inner env's bounds; the wrapper's action space is unbounded, as Gymnasium's. */
export class ClipAction<O = unknown> extends ActionWrapper<Float32Array, O, Float32Array> {
  private readonly bounds: Box;

  constructor(env: Env<O, Float32Array>) {
    const bounds = wrappable(env, 'ClipAction').actionSpace;
    if (!(bounds instanceof Box)) throw new Error(`ClipAction: the action space must be a Box, got ${bounds}.`);
    super(env, new Box(-Infinity, Infinity, bounds.shape));
    this.bounds = bounds;
  }
  action(action: Float32Array): Float32Array {
    const { low, high } = this.bounds;
    return action.map((v, i) => Math.min(Math.max(v, low[i]), high[i]));
  }
}

/** Whether an env takes Box actions (what ClipAction needs), for wrappers described as data. */
function hasBoxActions(env: Env): env is Env<unknown, Float32Array> {
  return env.actionSpace instanceof Box;
}

/** POPGym's key for the previous action in Dict observations. */
export const PREV_ACTION = 'prev_action';
/** POPGym's key for the first-step flag in Dict observations. */
export const IS_T0 = 'is_t0';

/**
 * POPGym's PreviousAction (and, with `antialias` on, its Antialias wrapper on top): the observation gains the
 * previous action and a Discrete(2) flag that is 1 only on the observation returned by `reset`.
 *
 * - Box/Discrete/MultiDiscrete/MultiBinary obs `o` become the Tuple `[o, prevAction, isT0]`; a Tuple obs gets the
 *   two appended; a Dict obs gains `prev_action` and `is_t0` keys (re-sorted, as POPGym rebuilds a plain dict),
 *   except a `{obs, state}` Dict (POPGym's full-and-partial observability), whose `obs` part is extended instead.
 * - On reset there is no previous action, so POPGym shows a null action: zeros if the action space holds them,
 *   else the lowest action (`start` for Discrete/MultiDiscrete, `low` for Box). Because the null action is also a
 *   legal action, the first observation would be aliased with a later step that took that action; the `is_t0`
 *   flag (POPGym's Antialias) tells them apart.
 */
export class PreviousAction<O = unknown, A = unknown> extends BaseWrapper<unknown, A, O, A> {
  readonly nullAction: A;
  readonly antialias: boolean;

  constructor(env: Env<O, A>, opts: { nullAction?: A; antialias?: boolean } = {}) {
    const antialias = opts.antialias ?? true;
    const e = wrappable(env, 'PreviousAction');
    super(e, extendSpace(e.observationSpace, e.actionSpace, antialias), e.actionSpace);
    this.antialias = antialias;
    this.nullAction = opts.nullAction ?? (nullAction(env.actionSpace) as A);
    if (!env.actionSpace.contains(this.nullAction))
      throw new Error(`PreviousAction: the null action is not in the action space ${env.actionSpace}.`);
  }
  protected resetEnv(options: Record<string, unknown>, seed?: number): ResetResult<unknown> {
    const { obs, info } = this.env.reset({ seed, options });
    return { obs: this.extend(obs, copy(this.nullAction), true), info };
  }
  protected stepEnv(action: A): StepResult<unknown> {
    const result = this.env.step(action);
    // A copy: callers may reuse their action buffers.
    return { ...result, obs: this.extend(result.obs, copy(action), false) };
  }
  private extend(obs: O, action: unknown, isT0: boolean): unknown {
    const extra = this.antialias ? [action, isT0 ? 1 : 0] : [action];
    return extendObs(this.env.observationSpace, obs, extra);
  }
}

function extendSpace(obsSpace: Space, actionSpace: Space, antialias: boolean): Space {
  const extra = antialias ? [actionSpace, new Discrete(2)] : [actionSpace];
  if (isLeaf(obsSpace)) return new Tuple([obsSpace, ...extra]);
  if (obsSpace instanceof Tuple) return new Tuple([...obsSpace.spaces, ...extra]);
  if (obsSpace instanceof Dict) {
    const parts = Object.fromEntries(obsSpace.spaces);
    if (isObsState(obsSpace)) parts.obs = extendSpace(parts.obs, actionSpace, antialias);
    else {
      parts[PREV_ACTION] = actionSpace;
      if (antialias) parts[IS_T0] = extra[1];
    }
    return new Dict(parts);
  }
  throw new Error(`PreviousAction: unsupported observation space ${obsSpace}.`);
}

function extendObs(space: Space, obs: unknown, extra: unknown[]): unknown {
  if (isLeaf(space)) return [obs, ...extra];
  if (space instanceof Tuple) return [...(obs as unknown[]), ...extra];
  const dict = space as Dict;
  const src = obs as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if (isObsState(dict)) {
    out.obs = extendObs(dict.spaces.get('obs')!, src.obs, extra);
    out.state = src.state;
  } else {
    for (const k of dict.keys()) out[k] = src[k];
    out[PREV_ACTION] = extra[0];
    if (extra.length > 1) out[IS_T0] = extra[1];
  }
  return out;
}

/** POPGym's `get_null_action`: zeros if in the space, else the lowest action. */
export function nullAction(space: Space): unknown {
  if (space instanceof Discrete) return space.contains(0) ? 0 : space.start;
  if (space instanceof MultiDiscrete) {
    const zeros = new Int32Array(space.nvec.length);
    return space.contains(zeros) ? zeros : space.start.slice();
  }
  if (space instanceof MultiBinary) return new Int8Array(space.size);
  if (space instanceof Box) {
    const zeros = new Float32Array(space.size);
    return space.contains(zeros) ? zeros : space.low.slice();
  }
  if (space instanceof Tuple) return space.spaces.map(nullAction);
  if (space instanceof Dict) return Object.fromEntries([...space.spaces].map(([k, s]) => [k, nullAction(s)]));
  throw new Error(`nullAction: unsupported action space ${space}.`);
}

function isLeaf(s: Space): boolean {
  return s instanceof Box || s instanceof Discrete || s instanceof MultiDiscrete || s instanceof MultiBinary;
}

function isObsState(s: Dict): boolean {
  const keys = s.keys();
  return keys.length === 2 && s.spaces.has('obs') && s.spaces.has('state');
}

/** A deep copy of an action (typed arrays, or Tuple/Dict actions holding them); numbers pass through. */
function copy<T>(x: T): T {
  return typeof x === 'object' && x !== null ? structuredClone(x) : x;
}

function push(queue: number[], v: number, max: number): void {
  queue.push(v);
  if (queue.length > max) queue.shift();
}

/** A wrapper described as data, so it can cross to worker threads and remote processes. */
export type WrapperSpec =
  | { type: 'TimeLimit'; maxEpisodeSteps: number }
  | { type: 'OrderEnforcing' }
  | { type: 'RecordEpisodeStatistics'; bufferLength?: number; statsKey?: string }
  | { type: 'FlattenObservation' }
  | { type: 'PreviousAction'; antialias?: boolean; nullAction?: unknown }
  | { type: 'ClipAction' };

/** Applies wrapper specs innermost first: `[{type: 'TimeLimit', ...}, {type: 'PreviousAction'}]` nests TimeLimit inside. */
export function applyWrappers(env: Env, specs: readonly WrapperSpec[] = []): Env {
  return specs.reduce<Env>((inner, spec) => {
    switch (spec.type) {
      case 'TimeLimit':
        return new TimeLimit(inner, spec.maxEpisodeSteps);
      case 'OrderEnforcing':
        return new OrderEnforcing(inner);
      case 'RecordEpisodeStatistics':
        return new RecordEpisodeStatistics(inner, spec);
      case 'FlattenObservation':
        return new FlattenObservation(inner);
      case 'PreviousAction':
        return new PreviousAction(inner, spec);
      case 'ClipAction':
        if (!hasBoxActions(inner)) throw new Error(`ClipAction: the action space must be a Box, got ${inner.actionSpace}.`);
        return new ClipAction(inner);
      default:
        throw new Error(
          `Unknown wrapper type '${(spec as { type: unknown }).type}'. ` +
            'Known: TimeLimit, OrderEnforcing, RecordEpisodeStatistics, FlattenObservation, PreviousAction, ClipAction.',
        );
    }
  }, env);
}
