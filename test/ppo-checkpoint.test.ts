import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCore } from '../memory/registry.js';
import { resolveTrainConfig } from '../cli/commands/train.js';
import { runTraining } from '../training/rl/train.js';
import { parseTrainConfig } from '../training/rl/config.js';
import { readMetrics } from '../training/metrics.js';
import type { UpdateMetrics } from '../training/rl/ppo.js';

const out = mkdtempSync(join(tmpdir(), 'hqlt-ckpt-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const base = {
  env: 'popgym-RepeatPreviousEasy-v0',
  core: { type: 'gru', dim: 16, layers: 1 },
  numEnvs: 4,
  rollout: 16,
  seqLen: 8,
  minibatches: 2,
  epochs: 2,
  steps: 4 * 4 * 16,
  backend: 'cpu',
  out,
  checkpointEvery: 2,
};

/** Metrics without the wall-clock field. */
const strip = (ms: UpdateMetrics[]) => ms.map(({ stepsPerSecond: _s, ...rest }) => rest);

describe('checkpoints', () => {
  it('resume after a crash reproduces the uninterrupted run exactly', async () => {
    const full = await runTraining(parseTrainConfig({ ...base, name: 'full' }), { progress: 'none' });
    expect(full.metrics).toHaveLength(4);

    const crashed = parseTrainConfig({ ...base, name: 'crashed' });
    const crash = () =>
      runTraining(crashed, {
        progress: 'none',
        onUpdate: (m) => {
          if (m.update === 3) throw new Error('simulated kill');
        },
      });
    await expect(crash()).rejects.toThrow('simulated kill');
    const { config, resume } = resolveTrainConfig({ resume: join(out, 'crashed') });
    expect(resume).toBe(true);
    const resumed = await runTraining(config, { resume, progress: 'none' });
    expect(resumed.metrics.map((m) => m.update)).toEqual([3, 4]);
    expect(strip(resumed.metrics)).toEqual(strip(full.metrics.slice(2)));
    // The files read as one run: the crashed run's update-3 line was dropped on resume.
    expect(strip(readMetrics(join(out, 'crashed', 'metrics.jsonl')))).toEqual(strip(full.metrics));
    expect(readFileSync(join(out, 'crashed', 'metrics.csv'), 'utf8').trim().split('\n')).toHaveLength(5);
  });

  it('an interrupt (Ctrl-C) writes a checkpoint at the update boundary and resumes from it', async () => {
    const controller = new AbortController();
    // memory/weights.ts' variable helpers leave each initial value beside its variable (reported to the lead):
    // count what creating the core leaves behind, so the check below covers everything else.
    const probe = tf.memory().numTensors;
    createCore(base.core, 0).dispose();
    const coreLeak = tf.memory().numTensors - probe;
    const tensorsBefore = tf.memory().numTensors;
    const cfg = parseTrainConfig({ ...base, name: 'interrupted', checkpointEvery: 0 });
    const first = await runTraining(cfg, {
      progress: 'none',
      signal: controller.signal,
      onUpdate: (m) => {
        if (m.update === 1) controller.abort();
      },
    });
    expect(first.interrupted).toBe(true);
    const { config } = resolveTrainConfig({ resume: join(out, 'interrupted') });
    const rest = await runTraining(config, { resume: true, progress: 'none' });
    // Everything a run creates (agent, core, optimizer, carried state) is freed when it returns.
    expect(tf.memory().numTensors).toBe(tensorsBefore + 2 * coreLeak);
    const full = readMetrics(join(out, 'full', 'metrics.jsonl'));
    expect(strip([...first.metrics, ...rest.metrics])).toEqual(strip(full));
  });

  it('a crash between the checkpoint swap renames leaves the last good checkpoint usable', () => {
    const dir = join(out, 'interrupted', 'checkpoint');
    renameSync(dir, `${dir}.old-4242`);
    const { config } = resolveTrainConfig({ resume: join(out, 'interrupted') });
    expect(config.name).toBe('interrupted');
    expect(existsSync(join(dir, 'trainer.json'))).toBe(true);
    expect(existsSync(`${dir}.old-4242`)).toBe(false);
  });

  it('--resume may change the precision of the products, as it may change the backend', () => {
    expect(resolveTrainConfig({ resume: join(out, 'interrupted') }).config.precision).toBe('f32');
    expect(resolveTrainConfig({ resume: join(out, 'interrupted'), precision: 'f16' }).config.precision).toBe('f16');
  });

  it('a checkpoint holds env states, not history: its size does not grow with the run', async () => {
    const dir = join(out, 'sizes', 'checkpoint');
    const size = () => ['trainer.json', 'state.safetensors'].reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    let early = 0;
    await runTraining(parseTrainConfig({ ...base, name: 'sizes', steps: 8 * 4 * 16 }), {
      progress: 'none',
      onUpdate: (m) => {
        if (m.update === 3) early = size(); // the checkpoint of update 2
      },
    });
    expect(early).toBeGreaterThan(0);
    // Update 8's checkpoint: same envs, four times the steps. An action log would have grown 4x.
    expect(Math.abs(size() / early - 1)).toBeLessThan(0.02);
  });

  it('a checkpoint of the old format (action log) gets a clear message', () => {
    const dir = join(out, 'sizes', 'checkpoint');
    const json = JSON.parse(readFileSync(join(dir, 'trainer.json'), 'utf8'));
    writeFileSync(join(dir, 'trainer.json'), JSON.stringify({ ...json, version: 1 }));
    expect(() => resolveTrainConfig({ resume: join(out, 'sizes') })).toThrow(/written by hqlt 0.1 .* start the run again/);
  });

  it('a corrupt checkpoint gives a clear error', async () => {
    const dir = join(out, 'full', 'checkpoint');
    const weights = join(dir, 'weights.safetensors');
    const bytes = readFileSync(weights);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 3] ^= 0xff;
    writeFileSync(weights, flipped);
    const { config } = resolveTrainConfig({ resume: join(out, 'full') });
    await expect(runTraining(config, { resume: true, progress: 'none' })).rejects.toThrow(
      /checkpoint in .* is corrupt or incomplete \(weights.safetensors does not match its checksum\)/,
    );
    writeFileSync(weights, bytes);
    writeFileSync(join(dir, 'trainer.json'), '{"version": 1, "conf');
    expect(() => resolveTrainConfig({ resume: join(out, 'full') })).toThrow(/corrupt or incomplete \(trainer.json is not valid JSON/);
  });

  it('config errors name the bad key', () => {
    expect(() => parseTrainConfig({ numEnv: 3 })).toThrow(/unknown key\(s\) 'numEnv'/);
    expect(() => parseTrainConfig({ lr: -1 })).toThrow(/'lr'/);
    expect(() => parseTrainConfig({ rollout: 10, seqLen: 4 })).toThrow(/'seqLen' \(4\) must divide 'rollout' \(10\)/);
    expect(() => parseTrainConfig({ core: { type: 'gru', blend: 'synchronous' } })).toThrow(/'core'.*blend/s);
    expect(() => resolveTrainConfig({ resume: join(out, 'full'), lr: 0.1 })).toThrow(/only --steps/);
    expect(() => parseTrainConfig({ precision: 'f8' })).toThrow(/'precision'/);
  });
});
