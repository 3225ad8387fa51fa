/** The env registry: `make(id, kwargs)` as Gymnasium's, with ids following POPGym's plus our own tasks. */
import type { Env } from './env.js';

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
}

const specs = new Map<string, EnvSpec>();

/** Registers an env id; registering an id twice is an error. */
export function register(spec: EnvSpec): void {
  if (specs.has(spec.id)) throw new Error(`Env id '${spec.id}' is already registered.`);
  specs.set(spec.id, spec);
}

/** All registered ids, sorted. */
export function registeredIds(): string[] {
  return [...specs.keys()].sort();
}

export function envSpec(id: string): EnvSpec {
  const spec = specs.get(id);
  if (!spec) {
    const close = registeredIds().filter((k) => k.toLowerCase().includes(id.toLowerCase().replace(/-v\d+$/, '')));
    throw new Error(
      `Unknown env id '${id}'.` + (close.length ? ` Did you mean: ${close.slice(0, 5).join(', ')}?` : '') +
        ' See registeredIds() or `hqlt envs` for the full list.',
    );
  }
  return spec;
}

/** Creates a registered env; unknown kwargs are rejected with the list of accepted ones. */
export function make(id: string, kwargs: EnvKwargs = {}): Env {
  const spec = envSpec(id);
  const defaults = spec.kwargs ?? {};
  const unknown = Object.keys(kwargs).filter((k) => !(k in defaults) && k !== 'renderMode');
  if (unknown.length)
    throw new Error(
      `Unknown kwarg(s) ${unknown.map((k) => `'${k}'`).join(', ')} for env '${id}'. ` +
        `Accepted: ${[...Object.keys(defaults), 'renderMode'].join(', ')}.`,
    );
  const { renderMode, ...rest } = { ...defaults, ...kwargs };
  const env = spec.entryPoint(rest);
  if (renderMode !== undefined) env.renderMode = String(renderMode);
  env.specId = id;
  return env;
}
