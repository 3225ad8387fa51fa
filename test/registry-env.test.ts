import { describe, expect, it } from 'vitest';
import { Env, type ResetResult, type StepResult } from '../envs/env.js';
import { envSpec, isRegistered, make, register, registeredIds } from '../envs/registry.js';
import { Discrete } from '../envs/spaces.js';
import { OrderEnforcing, TimeLimit } from '../envs/wrappers.js';

class Constant extends Env<number, number> {
  readonly observationSpace = new Discrete(4);
  readonly actionSpace = new Discrete(2);
  constructor(readonly value: number) {
    super();
  }
  protected resetEnv(): ResetResult<number> {
    return { obs: this.value, info: {} };
  }
  protected stepEnv(): StepResult<number> {
    return { obs: this.value, reward: 1, terminated: false, truncated: false, info: {} };
  }
}

register({
  id: 'test-Constant-v0',
  entryPoint: (kw) => new Constant(kw.value as number),
  kwargs: { value: 2 },
  description: 'always the same observation',
});
register({ id: 'test-ConstantLimited-v0', entryPoint: () => new Constant(1), maxEpisodeSteps: 3 });

describe('registry', () => {
  it('lists sorted ids and makes envs with merged kwargs', () => {
    const ids = registeredIds();
    expect(ids).toContain('test-Constant-v0');
    expect([...ids].sort()).toEqual(ids);
    expect(isRegistered('test-Constant-v0')).toBe(true);
    expect(envSpec('test-Constant-v0').description).toBe('always the same observation');
    const env = make('test-Constant-v0');
    expect((env.unwrapped as Constant).value).toBe(2);
    expect(env.specId).toBe('test-Constant-v0');
    expect(env.name).toBe('test-Constant-v0');
    expect((make('test-Constant-v0', { value: 3 }).unwrapped as Constant).value).toBe(3);
    expect(make('test-Constant-v0', { renderMode: 'ansi' }).renderMode).toBe('ansi');
  });

  it('applies the spec time limit, which maxEpisodeSteps overrides', () => {
    const env = make('test-ConstantLimited-v0');
    // OrderEnforcing outermost (it sees the time limit's ends), as Gymnasium's make adds its checkers.
    expect(env).toBeInstanceOf(OrderEnforcing);
    expect((env as OrderEnforcing).env).toBeInstanceOf(TimeLimit);
    expect(make('test-ConstantLimited-v0', {}, { disableEnvChecker: true })).toBeInstanceOf(TimeLimit);
    expect(env.unwrapped).toBeInstanceOf(Constant);
    env.reset();
    expect([env.step(0).truncated, env.step(0).truncated, env.step(0).truncated]).toEqual([false, false, true]);
    const longer = make('test-Constant-v0', { maxEpisodeSteps: 1 });
    longer.reset();
    expect(longer.step(0).truncated).toBe(true);
  });

  it('rejects unknown ids with suggestions, unknown kwargs with the accepted list, and duplicates', () => {
    expect(() => make('test-Constnat-v0')).toThrow(/Unknown env id 'test-Constnat-v0'. Did you mean: test-Constant-v0/);
    expect(() => make('constant')).toThrow(/Did you mean: test-Constant-v0, test-ConstantLimited-v0/);
    expect(() => make('zzzzzzzzzzzzzz')).toThrow(/^Unknown env id 'zzzzzzzzzzzzzz'. See registeredIds/);
    expect(() => make('test-Constant-v0', { valeu: 1 })).toThrow(
      /Unknown kwarg\(s\) 'valeu' for env 'test-Constant-v0'. Accepted: value, renderMode, maxEpisodeSteps/,
    );
    expect(() => register({ id: 'test-Constant-v0', entryPoint: () => new Constant(0) })).toThrow(/already registered/);
    register({ id: 'test-NotAnEnv-v0', entryPoint: () => ({}) as Env });
    expect(() => make('test-NotAnEnv-v0')).toThrow(/did not return an Env/);
  });
});
