import { describe, expect, it } from 'vitest';
import { checkEnv, dataEquivalence } from '../envs/check.js';
import { Env, type ResetResult, type StepResult } from '../envs/env.js';
import { make, OrderEnforcing, registeredIds } from '../envs/index.js';
import { Box, Discrete } from '../envs/spaces.js';

/** A well-behaved env: a seeded random walk on 0..9 that terminates at either end or truncates after 20 steps. */
class Walk extends Env<number, number> {
  readonly observationSpace = new Discrete(10);
  readonly actionSpace = new Discrete(2);
  protected pos = 0;
  private t = 0;
  protected resetEnv(): ResetResult<number> {
    this.pos = 3 + Math.floor(this.rng() * 4);
    this.t = 0;
    return { obs: this.pos, info: {} };
  }
  protected stepEnv(action: number): StepResult<number> {
    this.pos += (action === 1 ? 1 : -1) * (this.rng() < 0.8 ? 1 : 0);
    this.t++;
    const terminated = this.pos <= 0 || this.pos >= 9;
    return { obs: this.pos, reward: terminated ? 1 : -0.1, terminated, truncated: this.t >= 20, info: { t: this.t } };
  }
}

describe('checkEnv', () => {
  it('passes a good env, checked as make() serves it (in OrderEnforcing)', () => {
    expect(() => checkEnv(new OrderEnforcing(new Walk()))).not.toThrow();
    // Unwrapped, nothing stops a step before reset: the input checks live in OrderEnforcing alone.
    expect(() => checkEnv(new Walk())).toThrow(/step\(\) before reset\(\) did not throw \(.*OrderEnforcing/);
  });

  it('catches observations outside the space', () => {
    class Escapes extends Walk {
      protected override stepEnv(action: number): StepResult<number> {
        return { ...super.stepEnv(action), obs: 12 };
      }
    }
    expect(() => checkEnv(new Escapes())).toThrow(/step\(\) observation 12 is not in the observation space Discrete\(10\)/);
  });

  it('catches randomness that ignores the seed', () => {
    class Unseeded extends Walk {
      protected override resetEnv(): ResetResult<number> {
        super.resetEnv();
        this.pos = 1 + Math.floor(Math.random() * 8);
        return { obs: this.pos, info: {} };
      }
    }
    expect(() => checkEnv(new Unseeded(), { steps: 200 })).toThrow(/not deterministic/);
  });

  it('lists every problem: bad reward and flag types, a non-object info, no step-before-reset error', () => {
    class Broken extends Env<number, number> {
      readonly observationSpace = new Discrete(2);
      readonly actionSpace = new Discrete(2);
      protected resetEnv(): ResetResult<number> {
        return { obs: 0, info: {} };
      }
      protected stepEnv(): StepResult<number> {
        return { obs: 1, reward: NaN, terminated: 0, truncated: false, info: [] } as unknown as StepResult<number>;
      }
      override step(action: number): StepResult<number> {
        return this.stepEnv();
        void action;
      }
    }
    let message = '';
    try {
      checkEnv(new Broken());
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/checkEnv\(Broken\) found 4 problem/);
    expect(message).toMatch(/step\(\) before reset\(\) did not throw/);
    expect(message).toMatch(/reward must be a finite number, got NaN/);
    expect(message).toMatch(/terminated must be a boolean, got 0/);
    expect(message).toMatch(/info must be a plain object/);
  });

  it('rejects spaces that are not Space instances', () => {
    class NoSpace extends Walk {
      override readonly observationSpace = { n: 10 } as unknown as Discrete;
    }
    expect(() => checkEnv(new NoSpace())).toThrow(/observationSpace must be a Space instance/);
  });

  it('catches a Box env returning plain arrays', () => {
    class ArrayObs extends Env<Float32Array, number> {
      readonly observationSpace = new Box(0, 1, [2]);
      readonly actionSpace = new Discrete(2);
      protected resetEnv(): ResetResult<Float32Array> {
        return { obs: [0, 0] as unknown as Float32Array, info: {} };
      }
      protected stepEnv(): StepResult<Float32Array> {
        return { obs: new Float32Array(2), reward: 0, terminated: true, truncated: false, info: {} };
      }
    }
    expect(() => checkEnv(new ArrayObs())).toThrow(/reset\(\) observation \[0,0\] is not in/);
  });

  it('dataEquivalence compares deeply and by typed-array type', () => {
    expect(dataEquivalence({ a: [1, new Float32Array([1, 2])] }, { a: [1, new Float32Array([1, 2])] })).toBe(true);
    expect(dataEquivalence(new Float32Array([1]), new Float64Array([1]))).toBe(false);
    expect(dataEquivalence({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(dataEquivalence([1, 2], [1, 3])).toBe(false);
  });
});

describe('every registered env', () => {
  const ids = registeredIds();
  it('the registry is not empty', () => {
    expect(ids.length).toBeGreaterThan(0);
  });
  it.each(ids)('%s passes checkEnv', (id) => {
    checkEnv(() => make(id), { steps: 100 });
  });
});
