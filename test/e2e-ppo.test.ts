/**
 * End-to-end: `runTraining` + `runEval` really learn, on small budgets with fixed seeds. The margins are wide:
 * the asserted gaps are several times the spread seen across seeds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEval } from '../training/rl/evaluate.js';
import { runTraining } from '../training/rl/train.js';
import { register } from '../envs/registry.js';
import { parseTrainConfig } from '../training/rl/config.js';
import { CueReachEnv } from './ppo-fixtures.js';

register({ id: 'test-CueReach-v0', entryPoint: () => new CueReachEnv(3), kwargs: {} });

const out = mkdtempSync(join(tmpdir(), 'hqlt-e2e-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** The short passive T-maze: the goal side is shown only at the first of 6 steps. */
const tMaze = {
  env: 'PassiveTMazeShort-v0',
  numEnvs: 8,
  rollout: 32,
  seqLen: 8,
  minibatches: 4,
  steps: 16384,
  lr: 2e-3,
  seed: 1,
  backend: 'wasm',
  out,
  checkpointEvery: 0,
};

async function trainAndEval(name: string, core: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const config = parseTrainConfig({ ...tMaze, ...extra, core, name });
  const { runDir } = await runTraining(config, { progress: 'none' });
  return runEval({ run: runDir, episodes: 64, deterministic: true });
}

describe('end to end', () => {
  it('a Synchronous-HQLT agent solves the short passive T-maze; the memoryless mlp core cannot', async () => {
    const hqlt = await trainAndEval('hqlt', { type: 'hqlt', blend: 'synchronous', dim: 32, heads: 2, window: 8, layers: 1 });
    const mlp = await trainAndEval('mlp', { type: 'mlp', dim: 32, layers: 1 });
    // Optimal 1; a memoryless policy can at best walk straight and guess a side: 0.5. Random play is below 0.
    expect(hqlt.mean).toBeGreaterThan(0.85);
    expect(hqlt.successRate).toBeGreaterThan(0.85);
    expect(mlp.mean).toBeLessThan(0.7);
    expect(hqlt.mean - mlp.mean).toBeGreaterThan(0.25);
  });
});

describe('end to end, continuous actions', () => {
  it('a Box-action (Gaussian policy) agent learns well above random', async () => {
    const config = parseTrainConfig({
      ...tMaze,
      env: 'test-CueReach-v0',
      core: { type: 'gru', dim: 32, layers: 1 },
      steps: 8192,
      lr: 3e-3,
      name: 'cue-reach',
    });
    const { runDir } = await runTraining(config, { progress: 'none' });
    const r = await runEval({ run: runDir, episodes: 64, deterministic: true });
    // Random and memoryless play score 0.5 at best; the optimum is 1.
    expect(r.mean).toBeGreaterThan(0.75);
  });
});
