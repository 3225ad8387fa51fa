import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ACT_PHASES, RecurrentAgent } from '../agents/agent.js';
import { PhaseTimer } from '../util/phase-timer.js';
import { makeDistribution } from '../agents/distributions.js';
import { Box, Discrete, MultiBinary, MultiDiscrete } from '../envs/spaces.js';
import { initBackend } from '../memory/backend.js';
import { makeRng } from '../util/random.js';
import { sliceState } from '../memory/state.js';
import { Adam } from '../training/optim.js';
import { parseTrainConfig, ppoSettings } from '../training/rl/config.js';
import { LOSS_STATS, ppoLoss, PpoTrainer, type PpoLossInputs, type PpoSettings } from '../training/rl/ppo.js';
import { randomLossInputs } from './fixtures/ppo-loss.js';
import { computeGae, createBuffer, DeviceRollout, disposeMinibatch, normalizedAdvantages, sequenceMinibatches } from '../training/rl/rollout.js';
import { cueVectorEnv, ElmanCore, testRng } from './ppo-fixtures.js';

/** The reference for `normalizedAdvantages`: normalise one gathered minibatch (as the host gather did). */
/** (x − mean) / (std + 1e-8) over the entries where mask is 1; masked entries become 0. */
function normalizeMasked(x: Float32Array, mask: Float32Array): void {
  let count = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) (count++, (sum += x[i]));
  if (count === 0) return;
  const mean = sum / count;
  let sq = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) sq += (x[i] - mean) ** 2;
  // Unbiased std, as torch's `.std()` in CleanRL.
  const std = Math.sqrt(count > 1 ? sq / (count - 1) : 0);
  for (let i = 0; i < x.length; i++) x[i] = mask[i] ? (x[i] - mean) / (std + 1e-8) : 0;
}

type LossKnobs = Pick<PpoSettings, 'clipCoef' | 'clipValueLoss' | 'vfCoef' | 'entCoef'>;

beforeAll(async () => {
  await initBackend('cpu');
});

describe('GAE', () => {
  it('handles terminations, truncations, reset steps and the rollout end by hand', () => {
    const N = 3;
    const T = 5;
    const b = { ...createBuffer(N, T, 1, 1) };
    const set = (n: number, rows: [number, number, number, number, number][]) =>
      rows.forEach(([r, v, term, trunc, valid], t) => {
        const i = n * T + t;
        b.rewards[i] = r;
        b.values[i] = v;
        b.terminated[i] = term;
        b.truncated[i] = trunc;
        b.valid[i] = valid;
      });
    // stream 0: step, termination, reset step, truncation (bootstrap from the reset step's V(final obs) = 4), reset step
    set(0, [
      [1, 0.5, 0, 0, 1],
      [0, 1, 1, 0, 1],
      [0, 2, 0, 0, 0],
      [2, 1, 0, 1, 1],
      [0, 4, 0, 0, 0],
    ]);
    // stream 1: no episode end; bootstraps from lastValues
    set(1, [
      [1, 1, 0, 0, 1],
      [1, 1, 0, 0, 1],
      [1, 1, 0, 0, 1],
      [0, 2, 0, 0, 1],
      [1, 1, 0, 0, 1],
    ]);
    // stream 2: truncated on the last step (bootstrap from lastValues), terminated on step 2
    set(2, [
      [0, 0, 0, 0, 1],
      [0, 0, 0, 0, 1],
      [1, 3, 1, 0, 1],
      [0, 0, 0, 0, 0],
      [1, 1, 0, 1, 1],
    ]);
    b.lastValues.set([100, 3, 3]);
    const { advantages, returns } = computeGae(b, 0.5, 0.5);
    const expected = [
      [0.75, -1, 0, 3, 0],
      [0.669921875, 0.6796875, 0.71875, -1.125, 1.5],
      // t1: δ = 0 + 0.5·3 − 0 = 1.5, plus 0.25·(−2) from the terminal t2 → 1.0; t0: 0 + 0.25·1.0
      [0.25, 1, -2, 0, 1.5],
    ];
    expected.forEach((row, n) => row.forEach((a, t) => expect(advantages[n * T + t]).toBeCloseTo(a, 6)));
    expect(returns[0 * T + 0]).toBeCloseTo(1.25, 6);
    expect(returns[0 * T + 3]).toBeCloseTo(4, 6);
    expect(returns[0 * T + 2]).toBe(0);
  });
});

describe('sequence minibatches', () => {
  it('use every step exactly once per epoch, with the stored state of each sequence start', () => {
    const [N, T, L, M] = [3, 8, 4, 4];
    const buf = createBuffer(N, T, 2, 1);
    for (let i = 0; i < N * T; i++) {
      buf.features[2 * i] = i;
      buf.actions[i] = i;
      buf.episodeStart[i] = i % 5 === 0 ? 1 : 0;
      buf.valid[i] = 1;
    }
    // Boundary states chunk-major: row c·N + n holds 100·n + c.
    const rows = Array.from({ length: (T / L) * N }, (_, s) => 100 * (s % N) + Math.floor(s / N));
    const states = { h: tf.tensor2d(rows, [rows.length, 1]) };
    const rollout = new DeviceRollout(buf, L, states);
    for (let epoch = 0; epoch < 3; epoch++) {
      const seen = new Array<number>(N * T).fill(0);
      const groups = sequenceMinibatches(N, T, L, M, testRng(`e${epoch}`));
      expect(groups).toHaveLength(M);
      rollout.setEpoch(groups, false);
      for (const ids of groups) {
        const mb = rollout.minibatch(ids);
        const h = mb.state.h.dataSync();
        const actions = mb.sequences.actions.dataSync();
        const features = mb.sequences.features.dataSync();
        const starts = mb.sequences.episodeStart.dataSync();
        ids.forEach((s, b) => {
          const n = s % N;
          const c = Math.floor(s / N);
          expect(h[b]).toBe(100 * n + c);
          for (let t = 0; t < L; t++) {
            const i = actions[b * L + t];
            expect(i).toBe(n * T + c * L + t);
            expect(features[2 * (b * L + t)]).toBe(i);
            expect(starts[b * L + t]).toBe(i % 5 === 0 ? 1 : 0);
            seen[i]++;
          }
        });
        disposeMinibatch(mb);
      }
      expect(seen.every((c) => c === 1)).toBe(true);
    }
    rollout.dispose();
    states.h.dispose();
  });
});

describe('device minibatches', () => {
  it('normalise advantages per minibatch exactly as the host-gathered minibatch would', () => {
    const [N, T, L, M] = [5, 12, 4, 3];
    const buf = createBuffer(N, T, 1, 1);
    const rng = testRng('adv');
    for (let i = 0; i < N * T; i++) {
      buf.advantages[i] = rng() * 4 - 1;
      buf.valid[i] = rng() < 0.8 ? 1 : 0;
      buf.returns[i] = i;
    }
    const groups = sequenceMinibatches(N, T, L, M, rng);
    const adv = normalizedAdvantages(buf, L, groups);
    const states = { h: tf.zeros([(T / L) * N, 1]) };
    const rollout = new DeviceRollout(buf, L, states);
    rollout.setEpoch(groups, true);
    for (const ids of groups) {
      // The reference: gather the minibatch on the host, then normalise it.
      const host = new Float32Array(ids.length * L);
      const valid = new Float32Array(ids.length * L);
      ids.forEach((s, b) => {
        for (let t = 0; t < L; t++) {
          const i = (s % N) * T + Math.floor(s / N) * L + t;
          host[b * L + t] = buf.advantages[i];
          valid[b * L + t] = buf.valid[i];
        }
      });
      normalizeMasked(host, valid);
      const mb = rollout.minibatch(ids);
      expect(Array.from(mb.advantages.dataSync())).toEqual(Array.from(host));
      expect(Array.from(mb.valid.dataSync())).toEqual(Array.from(valid));
      const returns = mb.returns.dataSync();
      ids.forEach((s, b) => expect(returns[b * L]).toBe((s % N) * T + Math.floor(s / N) * L));
      disposeMinibatch(mb);
    }
    expect(adv.filter((_, i) => !buf.valid[i]).every((x) => x === 0)).toBe(true);
    rollout.dispose();
    states.h.dispose();
  });
});

describe('PPO loss', () => {
  it('matches hand-computed numbers, masking invalid steps', () => {
    const t = (a: number[]) => tf.tensor1d(a);
    const inputs = {
      newLogProbs: t([Math.log(1.5), Math.log(0.9), Math.log(3)]),
      oldLogProbs: t([0, 0, 0]),
      advantages: t([1, -1, 5]),
      newValues: t([1, 2, 9]),
      oldValues: t([0.5, 2.5, 0]),
      returns: t([2, 0, 0]),
      entropy: t([0.5, 0.7, 100]),
      valid: t([1, 1, 0]),
    };
    const s = { clipCoef: 0.2, clipValueLoss: true, vfCoef: 0.5, entCoef: 0.01 };
    const out = ppoLoss(inputs, s);
    const [policyLoss, valueLoss, entropy, approxKl, clipFraction] = out.stats.dataSync();
    expect(LOSS_STATS).toEqual(['policyLoss', 'valueLoss', 'entropy', 'approxKl', 'clipFraction']);
    expect(policyLoss).toBeCloseTo(-0.15, 5);
    expect(valueLoss).toBeCloseTo(1.745, 5);
    expect(entropy).toBeCloseTo(0.6, 5);
    expect(out.loss.dataSync()[0]).toBeCloseTo(0.7165, 5);
    expect(approxKl).toBeCloseTo(0.04994775, 5);
    expect(clipFraction).toBeCloseTo(0.5, 6);
    const plain = ppoLoss(inputs, { ...s, clipValueLoss: false });
    expect(plain.stats.dataSync()[1]).toBeCloseTo(1.25, 5);
    tf.dispose([...Object.values(inputs), ...Object.values(out), ...Object.values(plain)]);
  });

  it("has autodiff's gradient with respect to log-probs, entropies and values, clipped or not", () => {
    // The reference: the loss in plain ops, differentiated by tfjs.
    const reference = (lp: tf.Tensor1D, ent: tf.Tensor1D, v: tf.Tensor1D, x: PpoLossInputs, s: LossKnobs) => {
      const count = tf.maximum(tf.sum(x.valid), 1);
      const mean = (t: tf.Tensor) => tf.div(tf.sum(tf.mul(t, x.valid)), count);
      const ratio = tf.exp(tf.sub(lp, x.oldLogProbs));
      const pg = tf.maximum(tf.mul(tf.neg(x.advantages), ratio), tf.mul(tf.neg(x.advantages), tf.clipByValue(ratio, 1 - s.clipCoef, 1 + s.clipCoef)));
      let vTerm: tf.Tensor = tf.square(tf.sub(v, x.returns));
      if (s.clipValueLoss) {
        const vClipped = tf.add(x.oldValues, tf.clipByValue(tf.sub(v, x.oldValues), -s.clipCoef, s.clipCoef));
        vTerm = tf.maximum(vTerm, tf.square(tf.sub(vClipped, x.returns)));
      }
      return tf.add(tf.sub(mean(pg), tf.mul(s.entCoef, mean(ent))), tf.mul(s.vfCoef, tf.mul(0.5, mean(vTerm)))) as tf.Scalar;
    };
    const rng = makeRng('ppo-loss-grad');
    const N = 200;
    for (const clipValueLoss of [true, false]) {
      const x = randomLossInputs(rng, N);
      const s = { clipCoef: 0.2, clipValueLoss, vfCoef: 0.5, entCoef: 0.01 };
      const ours = tf.grads((lp, ent, v) => ppoLoss({ ...x, newLogProbs: lp, entropy: ent, newValues: v } as PpoLossInputs, s).loss);
      const theirs = tf.grads((lp, ent, v) => reference(lp as tf.Tensor1D, ent as tf.Tensor1D, v as tf.Tensor1D, x, s));
      const args = [x.newLogProbs, x.entropy, x.newValues];
      const [a, b] = [ours(args), theirs(args)];
      a.forEach((g, i) => {
        const [p, q] = [g.dataSync(), b[i].dataSync()];
        for (let k = 0; k < N; k++) expect(p[k]).toBeCloseTo(q[k], 7);
      });
      const value = ppoLoss(x, s).loss;
      expect(value.dataSync()[0]).toBeCloseTo(reference(x.newLogProbs, x.entropy, x.newValues, x, s).dataSync()[0], 6);
      tf.dispose([...a, ...b, value, ...Object.values(x)]);
    }
  });
});

describe('Adam', () => {
  it('follows tf.train.adam step for step', () => {
    const init = [0.5, -1, 2];
    const a = tf.variable(tf.tensor1d(init));
    const b = tf.variable(tf.tensor1d(init));
    const ours = new Adam([a], { learningRate: 0.1, epsilon: 1e-5 });
    const theirs = tf.train.adam(0.1, 0.9, 0.999, 1e-5);
    for (let k = 0; k < 5; k++) {
      const g = tf.tensor1d([k + 1, -0.5 * k, 0.25]);
      ours.applyGradients([g]);
      theirs.applyGradients([{ name: b.name, tensor: g }]);
      g.dispose();
    }
    const x = a.dataSync();
    const y = b.dataSync();
    for (let i = 0; i < 3; i++) expect(x[i]).toBeCloseTo(y[i], 6);
    ours.dispose();
    theirs.dispose();
    tf.dispose([a, b]);
  });
});

describe('distributions', () => {
  it('host-side sample log-probs equal the differentiable logProb, for every space kind', () => {
    // (One-choice components too: tf.oneHot refuses a depth of 1.)
    const spaces = [new Discrete(4, 1), new Discrete(1), new MultiDiscrete([2, 3]), new MultiDiscrete([1, 3]), new Box(-1, 1, [2]), new MultiBinary(3)];
    const rng = makeRng('dist');
    for (const space of spaces) {
      const d = makeDistribution(space);
      const B = 5;
      const params = tf.tensor2d(Array.from({ length: B * d.paramDim }, () => rng() * 2 - 1), [B, d.paramDim]);
      const host = d.hostParams(params);
      const s = d.sample(host.dataSync() as Float32Array, B, rng);
      const lp = d.logProb(params, tf.tensor2d(s.actions, [B, d.actionDim])).dataSync();
      for (let b = 0; b < B; b++) expect(lp[b]).toBeCloseTo(s.logProbs[b], 4);
      for (let b = 0; b < B; b++) expect(space.contains(d.toEnv(s.actions, b))).toBe(true);
      expect(d.entropy(params).shape).toEqual([B]);
      const features = d.actionFeatures(tf.tensor2d(s.actions, [B, d.actionDim]));
      expect(features.shape).toEqual([B, d.featureDim]);
      if (space instanceof Discrete || space instanceof MultiDiscrete) expect(features.sum().dataSync()[0]).toBe(B * d.actionDim);
      tf.dispose([params, host, features]);
      d.dispose();
    }
  });
});

// The train defaults at a tiny size: 10 updates of 4 envs × 12 steps.
const settings: PpoSettings = ppoSettings(
  parseTrainConfig({ numEnvs: 4, rollout: 12, seqLen: 4, epochs: 2, minibatches: 2, lr: 3e-3, steps: 10 * 4 * 12 }),
);

function makeTrainer(truncateAt = Infinity, overrides: Partial<PpoSettings> = {}, dim = 8) {
  const s = { ...settings, ...overrides };
  const env = cueVectorEnv(s.numEnvs, 3, truncateAt);
  const agent = new RecurrentAgent(new ElmanCore(dim, 'core'), env.singleObservationSpace, env.singleActionSpace, { seed: 1 });
  return { agent, trainer: new PpoTrainer(agent, env, s, 1) };
}

describe('PPO trainer', () => {
  it('--target-kl stops an update after the epoch whose last approximate KL passes it', async () => {
    const passes = async (targetKl: number | null) => {
      const { agent, trainer } = makeTrainer(Infinity, { epochs: 4, minibatches: 2, targetKl });
      await trainer.start(3);
      const { buffer, states } = await trainer.collect();
      const evaluate = vi.spyOn(agent, 'evaluate');
      await trainer.learn(buffer, states);
      const calls = evaluate.mock.calls.length;
      trainer.dispose();
      agent.dispose();
      return calls;
    };
    expect(await passes(null)).toBe(8);
    expect(await passes(1e-12)).toBe(2); // the first epoch always runs
    expect(await passes(1e6)).toBe(8);
  });

  it('the sequence form replays the rollout from the stored states (resets, previous actions, reset steps)', async () => {
    const { agent, trainer } = makeTrainer(2);
    await trainer.start(7);
    await trainer.iterate(); // carried state is now non-zero at the next rollout's start
    const { buffer, states } = await trainer.collect();
    const { numEnvs: N, steps: T } = buffer;
    expect(buffer.episodeStart.some((x) => x === 1)).toBe(true);
    expect(buffer.valid.some((x) => x === 0)).toBe(true);
    expect(buffer.truncated.some((x) => x === 1)).toBe(true);
    const L = settings.seqLen;
    const ids = Array.from({ length: N * (T / L) }, (_, s) => s);
    const rollout = new DeviceRollout(buffer, L, states);
    rollout.setEpoch([ids], false);
    const mb = rollout.minibatch(ids);
    const ev = agent.evaluate(mb.sequences, mb.state);
    const lp = ev.logProbs.dataSync();
    const v = ev.values.dataSync();
    ids.forEach((s, b) => {
      for (let t = 0; t < L; t++) {
        const i = (s % N) * T + Math.floor(s / N) * L + t;
        expect(lp[b * L + t]).toBeCloseTo(buffer.logProbs[i], 4);
        expect(v[b * L + t]).toBeCloseTo(buffer.values[i], 4);
      }
    });
    // The carried state is stored, not zeros: sequences of the first chunk start from a non-zero state.
    const first = sliceState(states, [0]);
    expect(Array.from(first['core.h'].dataSync()).some((x) => x !== 0)).toBe(true);
    tf.dispose(Object.values(first));
    tf.dispose([ev.logProbs, ev.values, ev.entropy, ...Object.values(states)]);
    disposeMinibatch(mb);
    rollout.dispose();
    trainer.dispose();
    agent.dispose();
  });

  it("a PhaseTimer sees every phase of an update, including the agent's own, and changes nothing", async () => {
    const plain = makeTrainer();
    const timed = makeTrainer();
    timed.trainer.timer = new PhaseTimer(true);
    for (const { trainer } of [plain, timed]) await trainer.start(3);
    const [a, b] = [await plain.trainer.iterate(), await timed.trainer.iterate()];
    expect({ ...b, stepsPerSecond: 0 }).toEqual({ ...a, stepsPerSecond: 0 });
    const report = timed.trainer.timer!.report();
    const phase = (name: string) => report.find((r) => r.phase === name);
    for (const name of Object.values(ACT_PHASES)) expect(phase(name)?.calls, name).toBe(timed.trainer.settings.rollout);
    for (const name of ['rollout: env step', 'update: forward + backward', 'update: clip + Adam']) expect(phase(name)?.ms, name).toBeGreaterThan(0);
    expect(report.reduce((sum, r) => sum + r.share, 0)).toBeCloseTo(1, 6);
    expect(timed.trainer.timer!.format(1).split('\n')).toHaveLength(report.length);
    for (const { agent, trainer } of [plain, timed]) (trainer.dispose(), agent.dispose());
  });

  it('keeps numTensors flat across updates', async () => {
    const { agent, trainer } = makeTrainer();
    await trainer.start(3);
    await trainer.iterate();
    const before = tf.memory().numTensors;
    for (let k = 0; k < 3; k++) await trainer.iterate();
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
    agent.dispose();
  });

  it('learns the one-bit memory task well above random (0.5)', async () => {
    const updates = 25;
    const overrides = { numEnvs: 8, rollout: 16, seqLen: 8, epochs: 4, lr: 1e-2, totalUpdates: updates };
    const { agent, trainer } = makeTrainer(Infinity, overrides, 16);
    await trainer.start(1);
    const returns: number[] = [];
    for (let k = 0; k < updates; k++) {
      const m = await trainer.iterate();
      if (m.returnMean !== null) returns.push(m.returnMean);
    }
    const last = returns.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(last).toBeGreaterThan(0.85);
    trainer.dispose();
    agent.dispose();
  });
});
