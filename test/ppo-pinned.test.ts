/**
 * Pins a short PPO run's metrics and final weights (cpu backend, fixed seed) in a vitest snapshot, so a refactor
 * that changes any number, however slightly, fails here. After an intended change of the numbers, update the
 * snapshot with `npx vitest run test/ppo-pinned.test.ts -u` and say why in the commit.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runTraining } from '../training/rl/train.js';
import { parseTrainConfig } from '../training/rl/config.js';

const out = mkdtempSync(join(tmpdir(), 'hqlt-pinned-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('a short PPO run is pinned bit for bit', () => {
  it.each([
    ['hqlt', { type: 'hqlt', dim: 16, layers: 1, heads: 2, window: 4 }],
    ['gru', { type: 'gru', dim: 16, layers: 1 }],
  ])('%s on RepeatPreviousEasy', async (name, core) => {
    const config = parseTrainConfig({
      env: 'popgym-RepeatPreviousEasy-v0',
      core,
      numEnvs: 4,
      rollout: 32,
      seqLen: 8,
      minibatches: 2,
      epochs: 2,
      steps: 3 * 4 * 32, // episodes (51 steps) end in updates 2 and 3
      backend: 'cpu',
      seed: 7,
      out,
      name,
    });
    const { metrics, runDir } = await runTraining(config, { progress: 'none' });
    const weights = createHash('sha256').update(readFileSync(join(runDir, 'checkpoint', 'weights.safetensors'))).digest('hex');
    expect({ metrics: metrics.map(({ stepsPerSecond: _s, ...m }) => m), weights }).toMatchSnapshot();
  });
});
