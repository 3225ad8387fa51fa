import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { RecurrentAgent } from '../agents/agent.js';
import { batchOf, Box, Dict, Discrete, MultiBinary, MultiDiscrete, Tuple, type Space } from '../envs/spaces.js';
import { initBackend } from '../memory/backend.js';
import { makeRng } from '../util/random.js';
import { disposeState } from '../memory/state.js';
import { ElmanCore } from './ppo-fixtures.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const obsSpace = new Dict({ card: new Discrete(3), pos: new Box(-1, 1, [2]), pair: new Tuple([new MultiDiscrete([2, 2]), new MultiBinary(2)]) });
const actionSpaces: Space[] = [new Discrete(3), new MultiDiscrete([2, 3]), new Box(-2, 2, [2]), new MultiBinary(3)];

describe('RecurrentAgent', () => {
  for (const actionSpace of actionSpaces) {
    for (const previousAction of [true, false]) {
      it(`acts in ${actionSpace} from Dict/Tuple observations (previous action ${previousAction ? 'on' : 'off'}), and its sequence form agrees`, async () => {
        const agent = new RecurrentAgent(new ElmanCore(8, 'c'), obsSpace, actionSpace, { seed: 3, previousAction });
        expect(agent.inputDim).toBe(obsSpace.flatDim + (previousAction ? agent.distribution.featureDim + 1 : 0));
        const rng = makeRng('obs');
        const B = 3;
        const L = 4;
        const start = agent.initialState(B);
        const before = tf.memory().numTensors;
        let state = agent.initialState(B);
        const rows = { features: [] as Float32Array[], actions: [] as Float32Array[], logp: [] as Float32Array[], v: [] as Float32Array[] };
        const starts = new Float32Array(B * L);
        for (let t = 0; t < L; t++) {
          const obs = Array.from({ length: B }, () => obsSpace.sample(rng));
          const flags = Array.from({ length: B }, (_, b) => (t === 0 || (t === 2 && b === 1) ? 1 : 0));
          flags.forEach((f, b) => (starts[b * L + t] = f));
          const res = await agent.act(batchOf(obsSpace, obs), state, flags, { rng });
          res.actions.forEach((a) => expect(actionSpace.contains(a)).toBe(true));
          rows.features.push(res.features);
          rows.actions.push(res.actionData);
          rows.logp.push(res.logProbs);
          rows.v.push(res.values);
          disposeState(state);
          state = res.state;
        }
        disposeState(state);
        expect(tf.memory().numTensors).toBe(before);
        // Re-lay the steps as B sequences of L and replay them in one call.
        const gather = (parts: Float32Array[], width: number) => {
          const out = new Float32Array(B * L * width);
          parts.forEach((p, t) => {
            for (let b = 0; b < B; b++) out.set(p.subarray(b * width, (b + 1) * width), (b * L + t) * width);
          });
          return out;
        };
        const ev = agent.evaluate(
          {
            batch: B,
            length: L,
            features: gather(rows.features, agent.encoder.dim),
            actions: gather(rows.actions, agent.distribution.actionDim),
            episodeStart: starts,
          },
          start,
        );
        const lp = ev.logProbs.dataSync();
        const v = ev.values.dataSync();
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < L; t++) {
            expect(lp[b * L + t]).toBeCloseTo(rows.logp[t][b], 4);
            expect(v[b * L + t]).toBeCloseTo(rows.v[t][b], 4);
          }
        }
        tf.dispose([ev.logProbs, ev.values, ev.entropy]);
        disposeState(start);
        const one = obsSpace.sample(rng);
        const s0 = agent.initialState(1);
        const det = await agent.act(batchOf(obsSpace, [one]), s0, [1], { deterministic: true });
        const again = await agent.act(batchOf(obsSpace, [one]), s0, [1], { deterministic: true });
        expect(Array.from(again.actionData)).toEqual(Array.from(det.actionData));
        [s0, det.state, again.state].forEach(disposeState);
        agent.dispose();
      });
    }
  }

  it('rejects observations outside the space and unsupported action spaces with clear errors', async () => {
    const agent = new RecurrentAgent(new ElmanCore(4, 'c'), new Discrete(2), new Discrete(2), { seed: 1 });
    const state = agent.initialState(1);
    await expect(agent.act(Int32Array.of(5), state, [1])).rejects.toThrow(/Observation 0 is not in the observation space Discrete\(2\)/);
    await expect(agent.act(Int32Array.of(1), state, [1, 0])).rejects.toThrow(/not a batch of 2 values of the observation space/);
    disposeState(state);
    agent.dispose();
    expect(() => new RecurrentAgent(new ElmanCore(4, 'c'), new Discrete(2), new Tuple([new Discrete(2)]), { seed: 1 })).toThrow(
      /Unsupported action space/,
    );
  });
});
