/**
 * Issue 11's leak bounds on the WebGPU path (Mesa's software adapter): over 1,000 acting steps of the default agent
 * and 50 PPO updates, the tensor count and tfjs' GPU buffers (in use and pooled) stay flat after a warm-up. The
 * dispatch caches (`memory/webgpu/bind-groups.ts`) keep uniform buffers of their own; they must level off too.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { disposeState } from '../memory/state.js';
import { parseTrainConfig, ppoSettings } from '../training/rl/config.js';
import { PpoTrainer } from '../training/rl/ppo.js';
import { buildAgent } from '../training/rl/train.js';
import { makeRng } from '../util/random.js';

const out = mkdtempSync(join(tmpdir(), 'hqlt-leaks-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Pool {
  numUsedBuffers: number;
  numFreeBuffers: number;
  numBytesAllocated: number;
}

/** Tensors, and tfjs' GPU buffers: in use, pooled, and bytes allocated. */
function counts(): [number, number, number, number] {
  const pool = (tf.backend() as unknown as { bufferManager: Pool }).bufferManager;
  return [tf.memory().numTensors, pool.numUsedBuffers, pool.numFreeBuffers, pool.numBytesAllocated];
}

const config = () =>
  parseTrainConfig({ numEnvs: 4, rollout: 8, seqLen: 4, epochs: 2, minibatches: 2, steps: 4 * 8 * 60, backend: 'webgpu', checkpointEvery: 0, out, name: 'leaks' });

describe('no leaks on WebGPU (software adapter)', () => {
  beforeAll(async () => {
    process.env.HQLT_WEBGPU_ADAPTER = 'software';
    expect((await initBackend('webgpu')).active).toBe('webgpu');
  }, 120_000);

  it('1,000 acting steps of the default agent: tensors and GPU buffers flat', async () => {
    const { agent, env } = await buildAgent(config());
    const rng = makeRng('leaks');
    let { obs } = await env.reset({ seed: 1 });
    let state = agent.initialState(env.numEnvs);
    const starts = new Float32Array(env.numEnvs).fill(1);
    const act = async () => {
      const res = await agent.act(obs, state, starts, { rng });
      disposeState(state);
      state = res.state;
      obs = (await env.step(res.actions)).obs;
      starts.fill(0);
    };
    for (let i = 0; i < 100; i++) await act();
    const warm = counts();
    for (let i = 0; i < 900; i++) await act();
    expect(counts()).toEqual(warm);
    disposeState(state);
    agent.dispose();
    await env.close();
  }, 300_000);

  it('50 PPO updates: tensors and GPU buffers flat', async () => {
    const c = config();
    const { agent, env } = await buildAgent(c);
    const trainer = new PpoTrainer(agent, env, ppoSettings(c), 1);
    await trainer.start(1);
    for (let i = 0; i < 5; i++) await trainer.iterate();
    const warm = counts();
    for (let i = 0; i < 45; i++) await trainer.iterate();
    expect(counts()).toEqual(warm);
    trainer.dispose();
    agent.dispose();
    await env.close();
  }, 300_000);
});
