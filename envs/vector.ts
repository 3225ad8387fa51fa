/**
 * Vector environments: N copies of an env stepped as a batch, as Gymnasium 1.x's VectorEnv.
 *
 * Autoreset follows Gymnasium: in `next-step` mode (default) the step after an episode ended resets that env
 * (its action is ignored, reward 0, terminated/truncated false) and returns the first obs of the new episode;
 * in `same-step` mode the env resets in the step it ended and the final obs/info are in `info.final_obs` /
 * `info.final_info` (masked by `info._final_obs` / `info._final_info`).
 *
 * Observations are batched by the space (`spaces.ts`' batches: one typed array per leaf, env index first), as
 * Gymnasium's `batch_space`; `unbatch` gives the per-env values back.
 *
 * `BaseVectorEnv` is the shared base of SyncVectorEnv, AsyncVectorEnv and RemoteVectorEnv: the lifecycle (reset
 * before step, one call at a time, nothing after close), per-env seeds and the one check of each action batch.
 * `VectorWrapper` wraps a vector env as `Wrapper` wraps an env.
 *
 * Infos are batched as Gymnasium's `_add_info`: `info[key][i]` is env i's value (0, false or null where env i
 * has none) and `info['_' + key][i]` says whether env i has it; nested plain objects are batched recursively, so
 * RecordEpisodeStatistics' return of env i is `info.episode.r[i]`, masked by `info._episode[i]`.
 */
import { describeValue, type Env, type EnvMetadata, type Info } from './env.js';
import type { Json } from './snapshot.js';
import { make, type EnvKwargs } from './registry.js';
import { isPlainObject, type BatchOf, type Space } from './spaces.js';
import type { EpisodeStats } from './episodes.js';
import { applyWrappers, type WrapperSpec } from './wrappers.js';

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
  /** The batch of every env's observation. */
  obs: BatchOf<O>;
  info: VectorInfo;
}

export interface VectorStepResult<O> {
  /** The batch of every env's observation. */
  obs: BatchOf<O>;
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
export class EnvGroup<O = unknown, A = unknown> {
  private readonly needsAutoreset: boolean[];

  constructor(
    readonly envs: Env<O, A>[],
    readonly autoresetMode: AutoresetMode,
  ) {
    this.needsAutoreset = envs.map(() => false);
  }

  reset(seeds: (number | undefined)[], options?: Record<string, unknown>): EnvResetRecord<O>[] {
    this.needsAutoreset.fill(false);
    return this.envs.map((env, i) => env.reset({ seed: seeds[i], options }));
  }

  step(actions: ArrayLike<A>): EnvStepRecord<O>[] {
    return this.envs.map((env, i) => {
      let record: EnvStepRecord<O>;
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

/** Batches per-env reset records: obs by the space, infos as `addInfo`. */
export function batchReset<O>(space: Space<O>, records: EnvResetRecord<O>[]): VectorResetResult<O> {
  const info: VectorInfo = {};
  const obs = space.createBatch(records.length);
  records.forEach((r, i) => {
    space.setBatchItem(obs, i, r.obs);
    addInfo(info, r.info, i, records.length);
  });
  return { obs, info };
}

/** Batches per-env step records: obs by the space, rewards and flags as arrays, infos as `addInfo`. */
export function batchStep<O>(space: Space<O>, records: EnvStepRecord<O>[]): VectorStepResult<O> {
  const n = records.length;
  const info: VectorInfo = {};
  const obs = space.createBatch(n);
  records.forEach((r, i) => {
    space.setBatchItem(obs, i, r.obs);
    if (r.final) addInfo(info, { final_obs: r.final.obs, final_info: r.final.info }, i, n);
    addInfo(info, r.info, i, n);
  });
  return {
    obs,
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
  // Without OrderEnforcing: the vector env checks each batch once, and its autoreset never steps an ended episode.
  return Array.from(
    { length: opts.numEnvs },
    () => () => applyWrappers(make(opts.id, opts.kwargs, { disableEnvChecker: true }), opts.wrappers),
  );
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

/** What a vector env is: its size, spaces, autoreset mode and metadata (`BaseVectorEnv`'s constructor takes it). */
export interface VectorEnvSpec<O, A> {
  numEnvs: number;
  singleObservationSpace: Space<O>;
  singleActionSpace: Space<A>;
  autoresetMode: AutoresetMode;
  metadata: EnvMetadata;
}

/**
 * The base of every vector env (see the module comment). Subclasses implement `resetEnvs`, `stepEnvs` and
 * `closeEnvs`; the public methods run them inside the lifecycle, with seeds per env and actions checked once.
 */
export abstract class BaseVectorEnv<O = unknown, A = unknown> implements VectorEnv<O, A> {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  readonly autoresetMode: AutoresetMode;
  readonly metadata: EnvMetadata;
  private readonly lifecycle: VectorLifecycle;

  constructor(
    /** The class's name in messages. */
    protected readonly kind: string,
    spec: VectorEnvSpec<O, A>,
  ) {
    checkMode(spec.autoresetMode);
    this.numEnvs = spec.numEnvs;
    this.singleObservationSpace = spec.singleObservationSpace;
    this.singleActionSpace = spec.singleActionSpace;
    this.autoresetMode = spec.autoresetMode;
    this.metadata = spec.metadata;
    this.lifecycle = new VectorLifecycle(kind);
  }

  reset(opts: VectorResetOptions = {}): Promise<VectorResetResult<O>> {
    return this.lifecycle.run('reset', () => this.resetEnvs(envSeeds(opts.seed, this.numEnvs), opts.options));
  }

  step(actions: ArrayLike<A>): Promise<VectorStepResult<O>> {
    return this.lifecycle.run('step', () => {
      checkActions(this.kind, actions, this.numEnvs, this.singleActionSpace);
      return this.stepEnvs(actions);
    });
  }

  async close(): Promise<void> {
    if (this.lifecycle.close()) await this.closeEnvs();
  }

  /** Whether `close` was called. */
  protected get closed(): boolean {
    return this.lifecycle.closed;
  }

  /** Runs `body` (e.g. restoring a saved state) as a reset: in the lifecycle, leaving the envs ready to step. */
  protected asReset<T>(body: () => T | Promise<T>): Promise<T> {
    return this.lifecycle.run('reset', body);
  }

  /** Resets every env, env i with `seeds[i]`. */
  protected abstract resetEnvs(
    seeds: (number | undefined)[],
    options: Record<string, unknown> | undefined,
  ): VectorResetResult<O> | Promise<VectorResetResult<O>>;
  /** Steps every env with its (already checked) action. */
  protected abstract stepEnvs(actions: ArrayLike<A>): VectorStepResult<O> | Promise<VectorStepResult<O>>;
  protected abstract closeEnvs(): void | Promise<void>;
}

/**
 * Wraps a vector env, forwarding everything (state saving included, where the inner env has it); override what
 * the wrapper changes, as Gymnasium's VectorWrapper.
 */
export class VectorWrapper<O = unknown, A = unknown> implements VectorEnv<O, A> {
  readonly getState?: () => Promise<Json>;
  readonly setState?: (state: Json) => Promise<void>;

  constructor(readonly env: VectorEnv<O, A>) {
    if (env.getState) this.getState = () => env.getState!();
    if (env.setState) this.setState = (state) => env.setState!(state);
  }
  get numEnvs(): number {
    return this.env.numEnvs;
  }
  get singleObservationSpace(): Space<O> {
    return this.env.singleObservationSpace;
  }
  get singleActionSpace(): Space<A> {
    return this.env.singleActionSpace;
  }
  get autoresetMode(): AutoresetMode {
    return this.env.autoresetMode;
  }
  get metadata(): EnvMetadata {
    return this.env.metadata;
  }
  reset(opts?: VectorResetOptions): Promise<VectorResetResult<O>> {
    return this.env.reset(opts);
  }
  step(actions: ArrayLike<A>): Promise<VectorStepResult<O>> {
    return this.env.step(actions);
  }
  close(): Promise<void> {
    return this.env.close();
  }
}

/** Steps its envs one after another in this thread, as Gymnasium's SyncVectorEnv. */
export class SyncVectorEnv<O = unknown, A = unknown> extends BaseVectorEnv<O, A> {
  readonly envs: Env<O, A>[];
  private readonly group: EnvGroup<O, A>;

  /** From env factories, or from a registered id (`{id, kwargs, numEnvs, wrappers}`). */
  constructor(envFns: (() => Env<O, A>)[] | MakeVectorOptions, opts: VectorEnvOptions = {}) {
    const fns = Array.isArray(envFns) ? envFns : (vectorEnvFns(envFns) as (() => Env<O, A>)[]);
    if (fns.length === 0) throw new Error('SyncVectorEnv: needs at least one env.');
    const autoresetMode = (Array.isArray(envFns) ? opts.autoresetMode : envFns.autoresetMode) ?? 'next-step';
    const envs = fns.map((fn) => fn());
    checkSameSpaces('SyncVectorEnv', envs);
    super('SyncVectorEnv', {
      numEnvs: envs.length,
      singleObservationSpace: envs[0].observationSpace,
      singleActionSpace: envs[0].actionSpace,
      autoresetMode,
      metadata: { ...envs[0].metadata, autoresetMode },
    });
    this.envs = envs;
    this.group = new EnvGroup(envs, autoresetMode);
  }

  protected resetEnvs(seeds: (number | undefined)[], options?: Record<string, unknown>): VectorResetResult<O> {
    return batchReset(this.singleObservationSpace, this.group.reset(seeds, options));
  }

  protected stepEnvs(actions: ArrayLike<A>): VectorStepResult<O> {
    return batchStep(this.singleObservationSpace, this.group.step(actions));
  }

  protected closeEnvs(): void {
    this.group.close();
  }

  async getState(): Promise<Json> {
    return this.group.getState();
  }

  async setState(state: Json): Promise<void> {
    await this.asReset(() => this.group.setState(state));
  }
}

export function checkMode(mode: string): asserts mode is AutoresetMode {
  if (mode !== 'next-step' && mode !== 'same-step')
    throw new Error(`Unknown autoreset mode '${mode}'. Use 'next-step' (default) or 'same-step'.`);
}
