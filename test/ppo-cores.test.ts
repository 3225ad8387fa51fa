/** With the registry's real cores, the loss's sequence form replays the rollout exactly from the stored states. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { disposeState } from '../memory/state.js';
import { buildAgent } from '../training/rl/train.js';
import { parseTrainConfig, ppoSettings } from '../training/rl/config.js';
import { PpoTrainer } from '../training/rl/ppo.js';
import { DeviceRollout, disposeMinibatch } from '../training/rl/rollout.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const CORES = [
  { type: 'hqlt', blend: 'synchronous', dim: 16, heads: 2, window: 4, layers: 1 },
  { type: 'gru', dim: 16, layers: 1 },
];

describe('PPO with registry cores', () => {
  for (const core of CORES) {
    it(`${core.type}: evaluate() over stored-state sequences reproduces the rollout's log-probs and values`, async () => {
      const [N, T, L] = [3, 24, 8];
      const cfg = parseTrainConfig({ env: 'popgym-RepeatPreviousEasy-v0', core, numEnvs: N, rollout: T, seqLen: L, minibatches: 2 });
      const { agent, env } = await buildAgent(cfg);
      const trainer = new PpoTrainer(agent, env, ppoSettings(cfg), 1);
      await trainer.start(1);
      await trainer.iterate(); // so the next rollout starts from a carried, non-zero state
      const { buffer, states } = await trainer.collect();
      const ids = Array.from({ length: N * (T / L) }, (_, s) => s);
      const rollout = new DeviceRollout(buffer, L, states);
      rollout.setEpoch([ids], false);
      const mb = rollout.minibatch(ids);
      const ev = agent.evaluate(mb.sequences, mb.state);
      const lp = ev.logProbs.dataSync();
      const v = ev.values.dataSync();
      let maxErr = 0;
      ids.forEach((s, b) => {
        for (let t = 0; t < L; t++) {
          const i = (s % N) * T + Math.floor(s / N) * L + t;
          maxErr = Math.max(maxErr, Math.abs(lp[b * L + t] - buffer.logProbs[i]), Math.abs(v[b * L + t] - buffer.values[i]));
        }
      });
      expect(maxErr).toBeLessThan(1e-4);
      tf.dispose([ev.logProbs, ev.values, ev.entropy]);
      disposeMinibatch(mb);
      rollout.dispose();
      disposeState(states);
      trainer.dispose();
      agent.dispose();
      await env.close();
    });
  }
});
