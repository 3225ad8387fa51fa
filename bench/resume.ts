/**
 * Resume benchmark: a checkpoint holds env states, not the run's history, so resuming late in a run costs what
 * resuming early does. Trains one run to an early and a late checkpoint and times `hqlt train --resume`'s work
 * (build the agent and envs, load the checkpoint, restore the trainer, write the checkpoint back) from each.
 *
 *   node dist/bench/resume.js [--early 2] [--late 200] [--backend wasm]
 *
 * Writes bench/results/resume.json.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkpointDir } from '../training/rl/checkpoint.js';
import { parseTrainConfig } from '../training/rl/config.js';
import { runTraining } from '../training/rl/train.js';

const { values } = parseArgs({
  options: {
    early: { type: 'string', default: '2' },
    late: { type: 'string', default: '200' },
    backend: { type: 'string', default: 'wasm' },
  },
});
const [early, late] = [Number(values.early), Number(values.late)];
const perUpdate = 16 * 32;
const scratch = mkdtempSync(join(tmpdir(), 'hqlt-bench-resume-'));
const config = (name: string, updates: number) =>
  parseTrainConfig({
    core: { type: 'mlp', dim: 8 },
    numEnvs: 16,
    rollout: 32,
    seqLen: 8,
    epochs: 1,
    minibatches: 1,
    steps: updates * perUpdate,
    checkpointEvery: 0,
    backend: values.backend,
    out: scratch,
    name,
  });

/** Seconds to resume a copy of the run (nothing left to train), median of 5. */
async function timeResume(name: string, updates: number): Promise<{ seconds: number; checkpointBytes: number }> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const copy = `${name}-copy${i}`;
    cpSync(join(scratch, name), join(scratch, copy), { recursive: true });
    const t0 = performance.now();
    await runTraining(config(copy, updates), { resume: true, progress: 'none' });
    times.push((performance.now() - t0) / 1000);
  }
  const dir = checkpointDir(join(scratch, name));
  const checkpointBytes = ['trainer.json', 'state.safetensors', 'weights.safetensors', 'optimizer.safetensors'].reduce(
    (n, f) => n + statSync(join(dir, f)).size,
    0,
  );
  return { seconds: times.sort((a, b) => a - b)[2]!, checkpointBytes };
}

try {
  await runTraining(config('early', early), { progress: 'none' });
  await runTraining(config('late', late), { progress: 'none' });
  const a = await timeResume('early', early);
  const b = await timeResume('late', late);
  const report = {
    date: new Date().toISOString(),
    early: { steps: early * perUpdate, ...a },
    late: { steps: late * perUpdate, ...b },
    ratio: b.seconds / a.seconds,
  };
  console.log(`resume at step ${report.early.steps}: ${a.seconds.toFixed(3)} s, checkpoint ${a.checkpointBytes} bytes`);
  console.log(`resume at step ${report.late.steps}: ${b.seconds.toFixed(3)} s, checkpoint ${b.checkpointBytes} bytes`);
  console.log(`late / early: ${report.ratio.toFixed(2)}`);
  const out = fileURLToPath(new URL('../../bench/results/resume.json', import.meta.url));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
