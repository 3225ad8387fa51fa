/**
 * PPO benchmark: env steps per second of full training (rollout + update) on popgym-RepeatPreviousEasy-v0, and
 * the env steps needed until an update's mean episodic return first reaches 0.95, per core.
 *
 *   node dist/bench/ppo.js [--steps 400000] [--cores gru,hqlt] [--backend wasm] [--seed 1]
 *
 * Writes bench/results/ppo.json (results of cores not run this time are kept from an earlier run, so cores can be
 * benchmarked with different budgets: `--cores gru --steps 400000`, then `--cores hqlt --steps 60000`). The peer: a CleanRL-style PyTorch PPO-GRU (16 envs × 128 steps, hidden 128,
 * previous action in the input) runs ~2,300 env-steps/s on a 2-core machine and first reaches 0.95 after ~350k
 * env steps.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runTraining } from '../training/rl/train.js';
import { defaultCore, parseTrainConfig } from '../training/rl/config.js';

/** The core configs benchmarked: the GRU matched to the peer (width 128, no MLP block); HQLT as `hqlt train` makes it. */
const CORES: Record<string, Record<string, unknown>> = {
  gru: { type: 'gru', dim: 128, layers: 1, mlp: false },
  hqlt: defaultCore('hqlt'),
};

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '400000' },
    cores: { type: 'string', default: 'gru,hqlt' },
    backend: { type: 'string', default: 'wasm' },
    seed: { type: 'string', default: '1' },
    target: { type: 'string', default: '0.95' },
  },
});
const steps = Number(values.steps);
const target = Number(values.target);
const out = join('bench', 'results');
mkdirSync(out, { recursive: true });
const results: { core: string; [key: string]: unknown }[] = [];
for (const name of values.cores!.split(',')) {
  const core = CORES[name];
  if (!core) throw new Error(`Unknown core '${name}' (benchmarked: ${Object.keys(CORES).join(', ')}).`);
  const config = parseTrainConfig({
    env: 'popgym-RepeatPreviousEasy-v0',
    core,
    numEnvs: 16,
    rollout: 128,
    seqLen: 32,
    steps,
    seed: Number(values.seed),
    backend: values.backend,
    out: join(out, 'runs'),
    name: `ppo-${name}-${Date.now()}`,
    checkpointEvery: 0,
  });
  let stepsToTarget: number | null = null;
  const t0 = performance.now();
  const { metrics } = await runTraining(config, {
    progress: 'none',
    onUpdate: (m) => {
      if (stepsToTarget === null && m.returnMean !== null && m.returnMean >= target) stepsToTarget = m.globalStep;
      if (m.update % 10 === 0) console.log(`${name} step ${m.globalStep} return ${m.returnMean?.toFixed(3)} ${Math.round(m.stepsPerSecond)} steps/s`);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const envSteps = metrics[metrics.length - 1].globalStep;
  const last = metrics.slice(-5).map((m) => m.returnMean ?? NaN);
  const r = {
    core: name,
    config: config.core,
    budget: steps,
    envSteps,
    seconds,
    envStepsPerSecond: envSteps / seconds,
    stepsToReturn095: stepsToTarget,
    finalReturn: last.reduce((a, b) => a + b, 0) / last.length,
  };
  console.log(JSON.stringify(r));
  results.push(r);
}
const path = join(out, 'ppo.json');
const previous = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { results?: { core: string }[] }).results ?? [] : [];
const kept = previous.filter((p) => !results.some((r) => r.core === p.core));
const report = {
  date: new Date().toISOString(),
  cpus: `${cpus().length} × ${cpus()[0]?.model}`,
  backend: values.backend,
  env: 'popgym-RepeatPreviousEasy-v0',
  settings: { numEnvs: 16, rollout: 128, seqLen: 32, epochs: 4, minibatches: 4, target },
  results: [...kept, ...results],
  peer: { name: 'CleanRL-style PyTorch PPO-GRU, hidden 128, 2 cores', envStepsPerSecond: 2300, stepsToReturn095: 350_000 },
};
writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
console.log(`wrote ${path}`);
