/**
 * checkEnv: our counterpart of Gymnasium's `check_env`. It runs a fresh env through reset/step and reports every
 * departure from the API it finds, in one Error.
 */
import seedrandom from 'seedrandom';
import { describeValue, Env } from './env.js';
import { isPlainObject, Space, spaceFromJSON } from './spaces.js';

export interface CheckEnvOptions {
  /** Steps per rollout of the determinism check (default 50). */
  steps?: number;
  /** Seed of the determinism check (default 123). */
  seed?: number;
}

/**
 * Checks an env against the API: Space instances (that survive JSON), step() before reset() throws (as it does
 * in OrderEnforcing, which `make` applies: check `make(id)`, or a new env wrapped in it), reset/step
 * results have the right shapes and types, observations lie in the observation space, rewards are finite numbers,
 * terminated/truncated are booleans, infos are plain objects, and two rollouts from the same seed with the same
 * actions are identical. Pass a freshly made env (or a factory); throws an Error listing all problems found.
 */
export function checkEnv(envOrFactory: Env | (() => Env), opts: CheckEnvOptions = {}): void {
  const env = typeof envOrFactory === 'function' ? envOrFactory() : envOrFactory;
  const problems: string[] = [];
  const attempt = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      problems.push(`${what} threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const name = env instanceof Env ? env.name : String(env);
  if (!(env instanceof Env)) throw new Error(`checkEnv: expected an Env, got ${describeValue(env)}.`);

  const spacesOk = checkSpace('observationSpace', env.observationSpace, problems) &&
    checkSpace('actionSpace', env.actionSpace, problems);
  if (!spacesOk) fail(name, problems);

  const actionRng = seedrandom('checkEnv-actions');
  let threw = false;
  try {
    env.step(env.actionSpace.sample(actionRng));
  } catch {
    threw = true;
  }
  if (!threw)
    problems.push(
      'step() before reset() did not throw (pass a freshly made env: from make(), or wrapped in OrderEnforcing).',
    );

  const rollouts: unknown[][] = [];
  for (let run = 0; run < 2; run++) {
    attempt(`rollout ${run + 1}`, () => rollouts.push(rollout(env, opts.seed ?? 123, opts.steps ?? 50, problems)));
  }
  if (rollouts.length === 2) {
    const diff = firstDifference(rollouts[0], rollouts[1]);
    if (diff)
      problems.push(
        `not deterministic: two rollouts with reset({seed: ${opts.seed ?? 123}}) and the same actions differ at ${diff}. ` +
          'Draw all randomness from this.rng.',
      );
  }
  attempt('close()', () => env.close());
  if (problems.length) fail(name, [...new Set(problems)]);
}

/** Resets with `seed`, then steps with seeded sampled actions (resetting without a seed when episodes end). */
function rollout(env: Env, seed: number, steps: number, problems: string[]): unknown[] {
  const trace: unknown[] = [];
  const actionRng = seedrandom(`checkEnv-${seed}`);
  const reset = (s?: number): void => {
    const result = env.reset(s === undefined ? {} : { seed: s });
    if (!isPlainObject(result) || !('obs' in result) || !('info' in result)) {
      problems.push(`reset() must return {obs, info}, got ${describeValue(result)}.`);
      return;
    }
    checkObs('reset()', env, result.obs, problems);
    if (!isPlainObject(result.info)) problems.push(`reset() info must be a plain object, got ${describeValue(result.info)}.`);
    trace.push(['reset', structuredClone(result.obs)]);
  };
  reset(seed);
  for (let t = 0; t < steps; t++) {
    const action = env.actionSpace.sample(actionRng);
    const result = env.step(action);
    if (!isPlainObject(result)) {
      problems.push(`step() must return {obs, reward, terminated, truncated, info}, got ${describeValue(result)}.`);
      break;
    }
    const { obs, reward, terminated, truncated, info } = result;
    checkObs('step()', env, obs, problems);
    if (typeof reward !== 'number' || !Number.isFinite(reward))
      problems.push(`step() reward must be a finite number, got ${describeValue(reward)}.`);
    if (typeof terminated !== 'boolean') problems.push(`step() terminated must be a boolean, got ${describeValue(terminated)}.`);
    if (typeof truncated !== 'boolean') problems.push(`step() truncated must be a boolean, got ${describeValue(truncated)}.`);
    if (!isPlainObject(info)) problems.push(`step() info must be a plain object, got ${describeValue(info)}.`);
    // A copy: envs may reuse their observation buffers.
    trace.push(['step', structuredClone(obs), reward, terminated, truncated]);
    if (terminated || truncated) reset();
  }
  return trace;
}

function checkSpace(what: string, space: unknown, problems: string[]): boolean {
  if (!(space instanceof Space)) {
    problems.push(`${what} must be a Space instance, got ${describeValue(space)}.`);
    return false;
  }
  const rng = seedrandom('checkEnv-space');
  const x = space.sample(rng);
  if (!space.contains(x)) problems.push(`${what} ${space}: its own sample is not contained in it.`);
  else if (space.flatten(x).length !== space.flatDim)
    problems.push(`${what} ${space}: flatten() length differs from flatDim ${space.flatDim}.`);
  else if (!dataEquivalence(space.unflatten(space.flatten(x)), x))
    problems.push(`${what} ${space}: unflatten(flatten(x)) differs from x.`);
  try {
    if (!spaceFromJSON(JSON.parse(JSON.stringify(space.toJSON()))).equals(space))
      problems.push(`${what} ${space}: does not survive a toJSON/spaceFromJSON round trip.`);
  } catch (err) {
    problems.push(`${what} ${space}: JSON round trip threw: ${err instanceof Error ? err.message : String(err)}`);
  }
  return true;
}

function checkObs(where: string, env: Env, obs: unknown, problems: string[]): void {
  if (!env.observationSpace.contains(obs))
    problems.push(`${where} observation ${describeValue(obs)} is not in the observation space ${env.observationSpace}.`);
}

function fail(name: string, problems: string[]): never {
  throw new Error(`checkEnv(${name}) found ${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
}

/** Deep equality of env data (numbers, booleans, strings, arrays, typed arrays, plain objects), as Gymnasium's `data_equivalence`. */
export function dataEquivalence(a: unknown, b: unknown): boolean {
  return firstDifference(a, b) === undefined;
}

/** The path of the first difference between two values, or undefined if they are equivalent. */
function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (Object.is(a, b)) return undefined;
  const here = path || 'the top level';
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b) || a.constructor !== b.constructor) return here;
    const x = a as unknown as ArrayLike<number>;
    const y = b as unknown as ArrayLike<number>;
    if (x.length !== y.length) return here;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return `${path}[${i}]`;
    return undefined;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return here;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return here;
    for (const k of keys) {
      if (!(k in b)) return `${path}.${k}`;
      const d = firstDifference(a[k], b[k], `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return here;
}
