/** The env registry: `make(id, kwargs)` as Gymnasium's, with ids following POPGym's plus our own tasks. */
import { Env } from './env.js';
import { OrderEnforcing, TimeLimit } from './wrappers.js';

export type EnvKwargs = Record<string, unknown>;

export interface EnvSpec {
  /** e.g. `popgym-RepeatPreviousEasy-v0`. */
  id: string;
  /** Builds the env from the merged kwargs (defaults overridden by the caller's). */
  entryPoint: (kwargs: EnvKwargs) => Env;
  /** Default kwargs; they also name the kwargs `make` accepts. */
  kwargs?: EnvKwargs;
  /** One line for listings. */
  description?: string;
  /** When set, `make` wraps the env in `TimeLimit` with this many steps, as Gymnasium's `max_episode_steps`. */
  maxEpisodeSteps?: number;
}

/** Kwargs every env accepts in `make`, besides its own. */
const COMMON_KWARGS = ['renderMode', 'maxEpisodeSteps'];

const specs = new Map<string, EnvSpec>();

/** Registers an env id; registering an id twice is an error. */
export function register(spec: EnvSpec): void {
  if (typeof spec.id !== 'string' || !spec.id) throw new Error('register: the spec needs a non-empty string id.');
  if (specs.has(spec.id)) throw new Error(`Env id '${spec.id}' is already registered.`);
  if (typeof spec.entryPoint !== 'function')
    throw new Error(`register('${spec.id}'): entryPoint must be a function (kwargs) => Env.`);
  specs.set(spec.id, spec);
}

/** Whether an id is registered. */
export function isRegistered(id: string): boolean {
  return specs.has(id);
}

/** All registered ids, sorted. */
export function registeredIds(): string[] {
  return [...specs.keys()].sort();
}

/** The spec of a registered id; unknown ids get an error suggesting the closest registered ones. */
export function envSpec(id: string): EnvSpec {
  const spec = specs.get(id);
  if (!spec) {
    const close = suggestions(id, registeredIds());
    throw new Error(
      `Unknown env id '${id}'.` +
        (close.length ? ` Did you mean: ${close.join(', ')}?` : '') +
        (specs.size ? ' See registeredIds() or `hqlt envs` for the full list.' : ' No envs are registered yet: import envs/index.js.'),
    );
  }
  return spec;
}

export interface MakeOptions {
  /**
   * Leave out the OrderEnforcing wrapper (Gymnasium's `disable_env_checker`): for callers that check inputs
   * themselves, as vector envs check each batch of actions once.
   */
  disableEnvChecker?: boolean;
}

/**
 * Creates a registered env: the entry point's env, in `TimeLimit` when the spec (or `maxEpisodeSteps`) sets a
 * limit, in `OrderEnforcing` outermost (see `MakeOptions`). Besides the env's own kwargs, `renderMode` sets the
 * render mode and `maxEpisodeSteps` overrides the spec's time limit. Unknown kwargs are rejected with the list
 * of accepted ones.
 */
export function make(id: string, kwargs: EnvKwargs = {}, opts: MakeOptions = {}): Env {
  const spec = envSpec(id);
  const defaults = spec.kwargs ?? {};
  const unknown = Object.keys(kwargs).filter((k) => !(k in defaults) && !COMMON_KWARGS.includes(k));
  if (unknown.length)
    throw new Error(
      `Unknown kwarg(s) ${unknown.map((k) => `'${k}'`).join(', ')} for env '${id}'. ` +
        `Accepted: ${[...Object.keys(defaults), ...COMMON_KWARGS].join(', ')}.`,
    );
  const { renderMode, maxEpisodeSteps, ...rest } = { ...defaults, ...kwargs };
  const inner = spec.entryPoint(rest);
  if (!(inner instanceof Env)) throw new Error(`The entry point of '${id}' did not return an Env.`);
  if (renderMode !== undefined) inner.renderMode = String(renderMode);
  inner.specId = id;
  const limit = maxEpisodeSteps ?? spec.maxEpisodeSteps;
  const limited = limit === undefined || limit === null ? inner : new TimeLimit(inner, Number(limit));
  const env = opts.disableEnvChecker ? limited : new OrderEnforcing(limited);
  env.specId = id;
  limited.specId = id;
  return env;
}

/** Up to 5 registered ids close to `id`: containing it (ignoring case and version) or within a small edit distance. */
function suggestions(id: string, ids: string[]): string[] {
  const key = id.toLowerCase().replace(/-v\d+$/, '');
  const scored = ids
    .map((k) => {
      const lower = k.toLowerCase();
      const d = lower.includes(key) || key.includes(lower.replace(/-v\d+$/, '')) ? 0 : editDistance(lower, id.toLowerCase());
      return { k, d };
    })
    .filter(({ d }) => d <= Math.max(2, Math.floor(id.length / 4)))
    .sort((a, b) => a.d - b.d || (a.k < b.k ? -1 : 1));
  return scored.slice(0, 5).map(({ k }) => k);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
