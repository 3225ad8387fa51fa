import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { evaluate, makeBatch, SequenceModel, trainSupervised } from '../training/supervised/trainer.js';
import { createCore } from '../memory/registry.js';
import { NO_LABEL } from '../training/supervised/tasks/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'hqlt-supervised-'));
beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny GRU: small enough to train in seconds, a real recurrent core. */
const gru = { type: 'gru', dim: 24, layers: 1, mlp: false };

describe('batching', () => {
  it('pads at the end without changing earlier outputs (causal cores)', () => {
    const model = new SequenceModel(createCore(gru, 1), 5, 3, 1);
    const short = { tokens: [1, 2, 3], labels: [NO_LABEL, NO_LABEL, 2] };
    const long = { tokens: [4, 4, 1, 0, 2, 3], labels: [0, NO_LABEL, NO_LABEL, NO_LABEL, NO_LABEL, 1] };
    const batch = makeBatch([short, long]);
    expect(batch.length).toBe(6);
    expect(batch.count).toBe(3);
    expect(Array.from(batch.labels.slice(0, 6))).toEqual([NO_LABEL, NO_LABEL, 2, NO_LABEL, NO_LABEL, NO_LABEL]);
    const padded = model.logits(tf.tensor2d(batch.tokens, [2, 6], 'int32'));
    const alone = model.logits(tf.tensor2d([short.tokens], [1, 3], 'int32'));
    const a = padded.slice([0, 0], [3, 3]).arraySync();
    const b = alone.arraySync();
    a.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(b[i][j], 4)));
    tf.dispose([padded, alone]);
    model.dispose();
  });
});

describe('tiny end-to-end runs learn above chance', () => {
  // Short sequences so the runs take seconds; 'valid' is the in-distribution group of the synthetic tasks.
  const smallSplit = { trainMin: 2, trainMax: 6, testMin: 7, testMax: 9, testSize: 128 };
  const base = { core: gru, seed: 1, batch: 32, lr: 1e-2, warmup: 10, evalBatch: 128 };

  it('parity', async () => {
    const counts: number[] = [];
    const r = await trainSupervised(
      { ...base, task: 'parity', taskOptions: smallSplit, steps: 300, evalEvery: 150 },
      { onStep: () => counts.push(tf.memory().numTensors) },
    );
    expect(r.final.valid.normalizedAccuracy).toBeGreaterThan(0.6);
    // Accuracy by length: one entry per length (with the end token), weighted back to the overall accuracy.
    const byLength = r.final.test.byLength;
    expect(byLength.map((b) => b.length)).toEqual([8, 9, 10]);
    expect(byLength.reduce((a, b) => a + b.count, 0)).toBe(128);
    expect(byLength.reduce((a, b) => a + b.accuracy * b.count, 0) / 128).toBeCloseTo(r.final.test.accuracy, 6);
    // The tensor count stays flat across steps and evaluations.
    expect(new Set(counts.slice(1)).size).toBe(1);
  });

  it('modular arithmetic', async () => {
    const split = { trainMin: 3, trainMax: 3, testMin: 5, testMax: 7, testSize: 128 };
    const r = await trainSupervised({ ...base, task: 'modular-arithmetic', taskOptions: split, steps: 300, evalEvery: 300 });
    // Chance is 0; one-operator expressions (75 of them) are learnable by a small GRU.
    expect(r.final.valid.normalizedAccuracy).toBeGreaterThan(0.5);
  });

  it('associative recall', async () => {
    const opts = { keys: 8, values: 4, minPairs: 1, maxPairs: 3, evalPairs: [2], evalSize: 128 };
    const r = await trainSupervised({ ...base, task: 'associative-recall', taskOptions: opts, steps: 300, evalEvery: 300 });
    expect(r.final['pairs=2'].normalizedAccuracy).toBeGreaterThan(0.3);
  });

  it('char-lm beats the uniform and unigram baselines', async () => {
    const r = await trainSupervised({
      ...base,
      task: 'char-lm',
      taskOptions: { context: 32, evalChars: 4096 },
      steps: 150,
      evalEvery: 150,
    });
    // Uniform over ~80 characters is 6.3 bits; English unigram entropy is ~4.1 bits.
    expect(r.final.valid.bpc).toBeLessThan(3.9);
    expect(r.final.test.bpc).toBeLessThan(3.9);
  });
});

describe('run directory', () => {
  it('logs metrics, checkpoints, and resumes to the same result as an uninterrupted run', async () => {
    const cfg = {
      task: 'parity',
      taskOptions: { trainMin: 2, trainMax: 5, testMin: 6, testMax: 8, testSize: 32 },
      core: gru,
      seed: 3,
      batch: 8,
      evalEvery: 10,
    };
    const straight = await trainSupervised({ ...cfg, steps: 20 });
    const dir = join(tmp, 'resume');
    await trainSupervised({ ...cfg, steps: 10 }, { runDir: dir });
    await expect(trainSupervised({ ...cfg, steps: 20 }, { runDir: dir })).rejects.toThrow(/--resume/);
    const resumed = await trainSupervised({ ...cfg, steps: 20 }, { runDir: dir, resume: true });
    expect(resumed.final.test.loss).toBeCloseTo(straight.final.test.loss, 4);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).step)).toEqual([10, 20]);
    const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv[0].split(',')).toContain('test/normalizedAccuracy');
    expect(csv).toHaveLength(3);
    await expect(trainSupervised({ ...cfg, lr: 0.5, steps: 20 }, { runDir: dir, resume: true })).rejects.toThrow(/different config/);
  });
});

describe('evaluate', () => {
  it('normalises accuracy so chance is 0', async () => {
    const model = new SequenceModel(createCore(gru, 2), 3, 2, 2);
    const samples = Array.from({ length: 64 }, (_, i) => ({ tokens: [i % 2, 2], labels: [NO_LABEL, i % 2] }));
    const r = await evaluate(model, samples, 16);
    expect(r.count).toBe(64);
    expect(r.normalizedAccuracy).toBeCloseTo(2 * r.accuracy - 1, 6);
    expect(r.bpc).toBeCloseTo(r.loss / Math.LN2, 6);
    model.dispose();
  });
});
