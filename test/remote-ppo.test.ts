/** End to end: recurrent PPO trains on a Python env served over ZeroMQ, through RemoteVectorEnv. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { runEval } from '../training/rl/evaluate.js';
import { resolveTrainConfig } from '../cli/commands/train.js';
import { runTraining } from '../training/rl/train.js';
import { parseTrainConfig, ppoSettings } from '../training/rl/config.js';
import { RecurrentAgent } from '../agents/agent.js';
import { RemoteVectorEnv } from '../envs/remote/index.js';
import { initBackend } from '../memory/backend.js';
import { PpoTrainer, type PpoSettings } from '../training/rl/ppo.js';
import { ElmanCore } from './ppo-fixtures.js';
import { describePython, ipcEndpoint, requirePython, startServer, type ChildServer } from './fixtures/remote-helpers.js';

let server: ChildServer | undefined;
const others: ChildServer[] = [];
beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => {
  server?.kill();
  for (const s of others) s.kill();
});

// The train defaults at a small size: 25 updates of 8 envs × 16 steps.
const settings: PpoSettings = ppoSettings(
  parseTrainConfig({ numEnvs: 8, rollout: 16, seqLen: 8, minibatches: 2, lr: 1e-2, steps: 25 * 8 * 16 }),
);

describePython('PPO on a remote env', () => {
  it('learns the one-bit memory task served by the Python server well above random (0.5)', async () => {
    server = await startServer(requirePython(), [
      'envs/remote/hqlt_env_server.py', '--entry-point', 'test/fixtures/cue_env.py:CueEnv',
      '--num-envs', '8', '--bind', ipcEndpoint('cue'),
    ]);
    const env = await RemoteVectorEnv.connect<number, number>(server.endpoint, { timeoutMs: 10_000 });
    const agent = new RecurrentAgent(new ElmanCore(16, 'core'), env.singleObservationSpace, env.singleActionSpace, { seed: 1 });
    const trainer = new PpoTrainer(agent, env, settings, 1);
    await trainer.start(1);
    const returns: number[] = [];
    for (let k = 0; k < settings.totalUpdates; k++) {
      const m = await trainer.iterate();
      if (m.returnMean !== null) returns.push(m.returnMean);
    }
    const last = returns.slice(-5).reduce((a, b) => a + b, 0) / 5;
    expect(last).toBeGreaterThan(0.85);
    trainer.dispose();
    agent.dispose();
    await env.close();
  });
});

describePython('hqlt train --env remote:...', () => {
  const serveCue = async (name: string) => {
    const s = await startServer(requirePython(), [
      'envs/remote/hqlt_env_server.py', '--entry-point', 'test/fixtures/cue_env.py:CueEnv', '--num-envs', '4', '--bind', ipcEndpoint(name),
    ]);
    others.push(s);
    return s;
  };

  it('trains through the same runTraining path as a local env, writing metrics and a checkpoint', async () => {
    const s = await serveCue('cue-cli');
    const out = mkdtempSync(join(tmpdir(), 'hqlt-remote-train-'));
    const config = parseTrainConfig({
      env: `remote:${s.endpoint}`, numEnvs: 4, rollout: 16, seqLen: 8, minibatches: 2, steps: 192,
      core: { type: 'gru', dim: 16, layers: 1 }, backend: 'wasm', out, name: 'remote',
    });
    const { runDir, metrics } = await runTraining(config, { progress: 'none' });
    expect(metrics).toHaveLength(3);
    expect(metrics.every((m) => Number.isFinite(m.policyLoss))).toBe(true);
    expect(existsSync(join(runDir, 'checkpoint', 'trainer.json'))).toBe(true);
    // The finished trainer left the server running: eval uses it at once (it used to wait 30 s and time out).
    const t0 = Date.now();
    const evaluated = await runEval({ run: runDir, episodes: 8, remoteTimeout: 5000 });
    expect(evaluated.episodes).toBe(8);
    expect(Date.now() - t0).toBeLessThan(20_000);
    // Remote envs cannot be saved: --resume resets them, says so, and continues the run.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const { config: resumed } = resolveTrainConfig({ resume: runDir, steps: 256 });
    const more = await runTraining(resumed, { resume: true, progress: 'none' });
    expect(more.metrics.map((m) => m.update)).toEqual([4]);
    expect(warn.mock.calls.flat().join('\n')).toMatch(/cannot save its envs, so resuming resets them/);
    warn.mockRestore();
    // --remote-timeout reaches eval's client too.
    s.kill();
    await expect(runEval({ run: runDir, episodes: 8, remoteTimeout: 300 })).rejects.toThrow(
      /within 300 ms.*--remote-timeout/,
    );
  });

  it('says how many envs the servers host when --num-envs disagrees', async () => {
    const s = await serveCue('cue-mismatch');
    const config = parseTrainConfig({ env: `remote:${s.endpoint}`, numEnvs: 8, backend: 'wasm', out: tmpdir(), name: 'x' });
    await expect(runTraining(config, { progress: 'none' })).rejects.toThrow(/serves 4 envs in all.*--num-envs 4/);
  });
});
