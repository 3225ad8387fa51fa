/**
 * Vector environments: N copies of an env stepped as a batch, as Gymnasium 1.x's VectorEnv.
 *
 * Autoreset follows Gymnasium: in `next-step` mode (default) the step after an episode ended resets that env
 * (its action is ignored, reward 0, terminated/truncated false) and returns the first obs of the new episode;
 * in `same-step` mode the env resets in the step it ended and the final obs/info are in `info.final_obs` /
 * `info.final_info` (masked by `info._final_obs` / `info._final_info`).
 *
 * Infos are batched as Gymnasium's `_add_info`: `info[key][i]` is env i's value (0, false or null where env i
 * has none) and `info['_' + key][i]` says whether env i has it; nested plain objects are batched recursively, so
 * RecordEpisodeStatistics' return of env i is `info.episode.r[i]`, masked by `info._episode[i]`.
 */
import { describeValue, type Env, type EnvMetadata, type Info } from './env.js';
import type { Json } from './snapshot.js';
import { make, type EnvKwargs } from './registry.js';
import { isPlainObject, type Space } from './spaces.js';
import { applyWrappers, type EpisodeStats, type WrapperSpec } from './wrappers.js';

export type AutoresetMode = 'next-step' | 'same-step';

/** Batched infos: `info[key][i]` is env i's value and `info['_' + key][i]` says whether env i has it. */
export interface VectorInfo {
  [key: string]: unknown[] | VectorInfo;
}

export interface VectorResetOptions {
  /** One seed (env i gets seed + i) or one per env. */
  seed?: number | number[];
  options?: Record<string, unknown>;
}

export interface VectorResetResult<O> {
  obs: O[];
  info: VectorInfo;
}

export interface VectorStepResult<O> {
  obs: O[];
  rewards: Float64Array;
  terminated: boolean[];
  truncated: boolean[];
  info: VectorInfo;
}

/** What agents and trainers act through: local (sync, async) and remote vector envs alike. */
export interface VectorEnv<O = unknown, A = unknown> {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  readonly autoresetMode: AutoresetMode;
  readonly metadata: EnvMetadata;
  reset(opts?: VectorResetOptions): Promise<VectorResetResult<O>>;
  /** One action per env (an array, or a typed array for numeric actions). */
  step(actions: ArrayLike<A>): Promise<VectorStepResult<O>>;
  close(): Promise<void>;
  /**
   * The full state of every env (see `Env.getState`), so a checkpoint resumes without replaying history. Local
   * vector envs have it; remote ones cannot save their envs and leave it out.
   */
  getState?(): Promise<Json>;
  /** Restores a state from `getState` of a vector env made the same way. */
  setState?(state: Json): Promise<void>;
}

export interface VectorEnvOptions {
  autoresetMode?: AutoresetMode;
}

/** N copies of a registered env, each `make(id, kwargs)` wrapped by `wrappers` (innermost first). */
export interface MakeVectorOptions extends VectorEnvOptions {
  id: string;
  kwargs?: EnvKwargs;
  numEnvs: number;
  wrappers?: WrapperSpec[];
}

/** One env's outcome of a vector step, before batching; `final` holds the ended episode's last obs/info in same-step mode. */
export interface EnvStepRecord<O = unknown> {
  obs: O;
  reward: number;
  terminated: boolean;
  truncated: boolean;
  info: Info;
  final?: { obs: O; info: Info };
}

export interface EnvResetRecord<O = unknown> {
  obs: O;
  info: Info;
}

/** The state of an `EnvGroup`: each env's, and which envs reset on their next step. */
export type GroupState = { envs: Json[]; needsAutoreset: boolean[] };

/**
 * Steps a group of envs with Gymnasium's autoreset; shared by SyncVectorEnv (all envs) and each AsyncVectorEnv
 * worker (its slice), so both give identical results.
 */
export class EnvGroup {
  private readonly needsAutoreset: boolean[];

  constructor(
    readonly envs: Env[],
    readonly autoresetMode: AutoresetMode,
  ) {
    this.needsAutoreset = envs.map(() => false);
  }

  reset(seeds: (number | undefined)[], options?: Record<string, unknown>): EnvResetRecord[] {
    this.needsAutoreset.fill(false);
    return this.envs.map((env, i) => env.reset({ seed: seeds[i], options }));
  }

  step(actions: ArrayLike<unknown>): EnvStepRecord[] {
    return this.envs.map((env, i) => {
      let record: EnvStepRecord;
      if (this.needsAutoreset[i]) {
        const { obs, info } = env.reset();
        record = { obs, reward: 0, terminated: false, truncated: false, info };
      } else {
        record = env.step(actions[i]);
        if (this.autoresetMode === 'same-step' && (record.terminated || record.truncated)) {
          const { obs, info } = env.reset();
          record = { ...record, obs, info, final: { obs: record.obs, info: record.info } };
        }
      }
      this.needsAutoreset[i] = this.autoresetMode === 'next-step' && (record.terminated || record.truncated);
      return record;
    });
  }

  close(): void {
    for (const env of this.envs) env.close();
  }

  getState(): GroupState {
    return { envs: this.envs.map((env) => env.getState()), needsAutoreset: [...this.needsAutoreset] };
  }

  setState(state: Json): void {
    const s = state as Partial<GroupState> | null;
    if (!s || !Array.isArray(s.envs) || !Array.isArray(s.needsAutoreset) || s.envs.length !== this.envs.length)
      throw new Error(`Vector env: the saved state is not of ${this.envs.length} envs (was it saved with another --num-envs?).`);
    s.envs.forEach((e, i) => this.envs[i].setState(e));
    s.needsAutoreset.forEach((v, i) => (this.needsAutoreset[i] = v));
  }
}

/** Gymnasium's `_add_info`: merges env i's info into the batched infos (in place) and returns them. */
export function addInfo(infos: VectorInfo, envInfo: Info, i: number, numEnvs: number): VectorInfo {
  for (const [key, value] of Object.entries(envInfo)) {
    const existing = infos[key];
    let entry: unknown[] | VectorInfo;
    if (isPlainObject(value)) {
      entry = addInfo(existing && !Array.isArray(existing) ? existing : {}, value, i, numEnvs);
    } else {
      entry = Array.isArray(existing) ? existing : new Array<unknown>(numEnvs).fill(missingValue(value));
      entry[i] = value;
    }
    const mask = Array.isArray(infos[`_${key}`]) ? (infos[`_${key}`] as boolean[]) : new Array(numEnvs).fill(false);
    mask[i] = true;
    infos[key] = entry;
    infos[`_${key}`] = mask;
  }
  return infos;
}

/** Gymnasium fills absent entries with zeros of the value's type, or None for objects. */
function missingValue(v: unknown): unknown {
  return typeof v === 'number' ? 0 : typeof v === 'boolean' ? false : null;
}

export function batchReset<O>(records: EnvResetRecord<O>[]): VectorResetResult<O> {
  const info: VectorInfo = {};
  records.forEach((r, i) => addInfo(info, r.info, i, records.length));
  return { obs: records.map((r) => r.obs), info };
}

export function batchStep<O>(records: EnvStepRecord<O>[]): VectorStepResult<O> {
  const n = records.length;
  const info: VectorInfo = {};
  records.forEach((r, i) => {
    if (r.final) addInfo(info, { final_obs: r.final.obs, final_info: r.final.info }, i, n);
    addInfo(info, r.info, i, n);
  });
  return {
    obs: records.map((r) => r.obs),
    rewards: Float64Array.from(records, (r) => r.reward),
    terminated: records.map((r) => r.terminated),
    truncated: records.map((r) => r.truncated),
    info,
  };
}

/**
 * The episodes that ended in a vector step, from RecordEpisodeStatistics' `info.episode` (next-step mode) or
 * `info.final_info.episode` (same-step mode).
 */
export function finishedEpisodes(info: VectorInfo, statsKey = 'episode'): (EpisodeStats & { env: number })[] {
  const out: (EpisodeStats & { env: number })[] = [];
  const collect = (inf: VectorInfo | undefined): void => {
    const stats = inf?.[statsKey];
    const mask = inf?.[`_${statsKey}`];
    if (!stats || Array.isArray(stats) || !Array.isArray(mask)) return;
    const { r, l, t } = stats as { r: number[]; l: number[]; t: number[] };
    mask.forEach((has, i) => {
      if (has) out.push({ env: i, r: r[i], l: l[i], t: t[i] });
    });
  };
  collect(info);
  const final = info.final_info;
  if (final && !Array.isArray(final)) collect(final);
  return out.sort((a, b) => a.env - b.env);
}

/** Per-env seeds from a vector seed: env i gets seed + i, as Gymnasium's. */
export function envSeeds(seed: number | number[] | undefined, numEnvs: number): (number | undefined)[] {
  if (seed === undefined) return new Array(numEnvs).fill(undefined);
  if (typeof seed === 'number') {
    if (!Number.isInteger(seed)) throw new Error(`Vector env: seed must be an integer, got ${seed}.`);
    return Array.from({ length: numEnvs }, (_, i) => seed + i);
  }
  if (!Array.isArray(seed) || seed.length !== numEnvs)
    throw new Error(`Vector env: expected one seed or ${numEnvs} seeds (one per env), got ${JSON.stringify(seed)}.`);
  return seed;
}

/** Checks an action batch: its length and each action against the single action space. */
export function checkActions(name: string, actions: ArrayLike<unknown>, numEnvs: number, space: Space): void {
  if (actions === null || typeof actions !== 'object' || typeof actions.length !== 'number')
    throw new Error(`${name}: step() takes an array of ${numEnvs} actions, got ${describeValue(actions)}.`);
  if (actions.length !== numEnvs)
    throw new Error(`${name}: step() got ${actions.length} actions for ${numEnvs} envs; pass one action per env.`);
  for (let i = 0; i < numEnvs; i++)
    if (!space.contains(actions[i]))
      throw new Error(`${name}: action ${describeValue(actions[i])} for env ${i} is not in the action space ${space}.`);
}

/** Builds the env factories of `MakeVectorOptions`. */
export function vectorEnvFns(opts: MakeVectorOptions): (() => Env)[] {
  if (!Number.isInteger(opts.numEnvs) || opts.numEnvs <= 0)
    throw new Error(`Vector env: numEnvs must be a positive integer, got ${opts.numEnvs}.`);
  return Array.from({ length: opts.numEnvs }, () => () => applyWrappers(make(opts.id, opts.kwargs), opts.wrappers));
}

/** Tracks the lifecycle every vector env enforces: reset before step, nothing after close, one call at a time. */
export class VectorLifecycle {
  private state: 'unreset' | 'ready' | 'closed' = 'unreset';
  private busy = false;

  constructor(private readonly name: string) {}

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Runs a reset or step, with the checks and state updates around it. */
  async run<T>(op: 'reset' | 'step', body: () => T | Promise<T>): Promise<T> {
    if (this.state === 'closed') throw new Error(`${this.name}: ${op}() called after close().`);
    if (op === 'step' && this.state === 'unreset')
      throw new Error(`${this.name}: step() called before reset(). Call reset() first.`);
    if (this.busy)
      throw new Error(`${this.name}: ${op}() called while another call is still running; await each call first.`);
    this.busy = true;
    try {
      const result = await body();
      this.state = 'ready';
      return result;
    } finally {
      this.busy = false;
    }
  }

  close(): boolean {
    const wasOpen = this.state !== 'closed';
    this.state = 'closed';
    return wasOpen;
  }
}

/** Checks that all envs share their spaces, as Gymnasium's vector envs require. */
export function checkSameSpaces(name: string, envs: Env[]): void {
  envs.forEach((env, i) => {
    if (!env.observationSpace.equals(envs[0].observationSpace) || !env.actionSpace.equals(envs[0].actionSpace))
      throw new Error(
        `${name}: env ${i} has spaces ${env.observationSpace} / ${env.actionSpace} but env 0 has ` +
          `${envs[0].observationSpace} / ${envs[0].actionSpace}; all envs must share their spaces.`,
      );
  });
}

/** Steps its envs one after another in this thread, as Gymnasium's SyncVectorEnv. */
export class SyncVectorEnv<O = unknown, A = unknown> implements VectorEnv<O, A> {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  readonly autoresetMode: AutoresetMode;
  readonly metadata: EnvMetadata;
  readonly envs: Env<O, A>[];
  private readonly group: EnvGroup;
  private readonly lifecycle = new VectorLifecycle('SyncVectorEnv');

  /** From env factories, or from a registered id (`{id, kwargs, numEnvs, wrappers}`). */
  constructor(envFns: (() => Env<O, A>)[] | MakeVectorOptions, opts: VectorEnvOptions = {}) {
    const fns = Array.isArray(envFns) ? envFns : (vectorEnvFns(envFns) as (() => Env<O, A>)[]);
    if (fns.length === 0) throw new Error('SyncVectorEnv: needs at least one env.');
    this.autoresetMode = (Array.isArray(envFns) ? opts.autoresetMode : envFns.autoresetMode) ?? 'next-step';
    checkMode(this.autoresetMode);
    this.envs = fns.map((fn) => fn());
    checkSameSpaces('SyncVectorEnv', this.envs);
    this.numEnvs = this.envs.length;
    this.singleObservationSpace = this.envs[0].observationSpace;
    this.singleActionSpace = this.envs[0].actionSpace;
    this.metadata = { ...this.envs[0].metadata, autoresetMode: this.autoresetMode };
    this.group = new EnvGroup(this.envs, this.autoresetMode);
  }

  reset(opts: VectorResetOptions = {}): Promise<VectorResetResult<O>> {
    return this.lifecycle.run('reset', () =>
      batchReset(this.group.reset(envSeeds(opts.seed, this.numEnvs), opts.options)),
    ) as Promise<VectorResetResult<O>>;
  }

  step(actions: ArrayLike<A>): Promise<VectorStepResult<O>> {
    return this.lifecycle.run('step', () => {
      checkActions('SyncVectorEnv', actions, this.numEnvs, this.singleActionSpace);
      return batchStep(this.group.step(actions));
    }) as Promise<VectorStepResult<O>>;
  }

  async close(): Promise<void> {
    if (this.lifecycle.close()) this.group.close();
  }

  async getState(): Promise<Json> {
    return this.group.getState();
  }

  async setState(state: Json): Promise<void> {
    await this.lifecycle.run('reset', () => this.group.setState(state));
  }
}

export function checkMode(mode: string): asserts mode is AutoresetMode {
  if (mode !== 'next-step' && mode !== 'same-step')
    throw new Error(`Unknown autoreset mode '${mode}'. Use 'next-step' (default) or 'same-step'.`);
}
