/**
 * Env throughput: steps/s of every registered env alone, and as vectors of 16 (sync and async), with actions
 * drawn from a pre-sampled pool so the env itself is measured. Writes bench/results/envs.json and prints a table.
 *
 *   node dist/bench/envs.js [--ids <regex>] [--seconds <per measurement>] [--num-envs 16] [--workers <n>]
 *                           [--out bench/results/envs.json]
 *
 * For reference, POPGym's Python RepeatPrevious runs at about 50k-136k steps/s (single env).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import seedrandom from 'seedrandom';
import { AsyncVectorEnv, defaultWorkers, make, registeredIds, SyncVectorEnv, type VectorEnv } from '../envs/index.js';

interface Row {
  id: string;
  single: number;
  sync: number;
  async: number;
}

const POOL = 256;
const WARMUP_S = 0.1;

/** Steps/s of a single env, resetting at episode ends. */
function benchSingle(id: string, seconds: number): number {
  const env = make(id);
  const rng = seedrandom('bench');
  const actions = Array.from({ length: POOL }, () => env.actionSpace.sample(rng));
  env.reset({ seed: 0 });
  const run = (ms: number): number => {
    let steps = 0;
    const start = performance.now();
    while (performance.now() < start + ms) {
      for (let i = 0; i < 256; i++, steps++) {
        const r = env.step(actions[steps % POOL]);
        if (r.terminated || r.truncated) env.reset();
      }
    }
    return steps / ((performance.now() - start) / 1e3);
  };
  run(WARMUP_S * 1e3); // lets the JIT settle before timing
  const rate = run(seconds * 1e3);
  env.close();
  return rate;
}

/** Env-steps/s of a vector env (numEnvs env steps per vector step). */
async function benchVector(v: VectorEnv, seconds: number): Promise<number> {
  const rng = seedrandom('bench');
  const batches = Array.from({ length: POOL }, () =>
    Array.from({ length: v.numEnvs }, () => v.singleActionSpace.sample(rng)),
  );
  await v.reset({ seed: 0 });
  const run = async (ms: number): Promise<number> => {
    let steps = 0;
    const start = performance.now();
    while (performance.now() < start + ms) await v.step(batches[steps++ % POOL]);
    return (steps * v.numEnvs) / ((performance.now() - start) / 1e3);
  };
  await run(WARMUP_S * 1e3);
  const rate = await run(seconds * 1e3);
  await v.close();
  return rate;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ids: { type: 'string', default: '.' },
      seconds: { type: 'string', default: '0.3' },
      'num-envs': { type: 'string', default: '16' },
      workers: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const numEnvs = Number(values['num-envs']);
  const numWorkers = values.workers ? Number(values.workers) : undefined;
  const pattern = new RegExp(values.ids);
  const ids = registeredIds().filter((id) => pattern.test(id));
  if (ids.length === 0) throw new Error(`No registered env id matches /${values.ids}/.`);

  const rows: Row[] = [];
  for (const id of ids) {
    const single = benchSingle(id, seconds);
    const sync = await benchVector(new SyncVectorEnv({ id, numEnvs }), seconds);
    const async = await benchVector(await AsyncVectorEnv.create({ id, numEnvs, numWorkers }), seconds);
    rows.push({ id, single, sync, async });
    process.stderr.write(`${id.padEnd(44)} ${fmt(single)} ${fmt(sync)} ${fmt(async)}\n`);
  }

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    numEnvs,
    numWorkers: Math.min(numWorkers ?? defaultWorkers(), numEnvs),
    secondsPerMeasurement: seconds,
    unit: 'env steps per second',
    reference: 'POPGym (Python) RepeatPrevious: about 50k-136k steps/s for a single env',
    rows,
  };
  const out = values.out ? resolve(values.out) : fileURLToPath(new URL('../../bench/results/envs.json', import.meta.url));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  console.log(`\n${'env'.padEnd(44)} ${'single'.padStart(10)} ${`sync x${numEnvs}`.padStart(10)} ${`async x${numEnvs}`.padStart(10)}`);
  for (const r of rows) console.log(`${r.id.padEnd(44)} ${fmt(r.single)} ${fmt(r.sync)} ${fmt(r.async)}`);
  console.log(`\nsteps/s; written to ${out}`);
}

function fmt(rate: number): string {
  return (rate >= 1e6 ? `${(rate / 1e6).toFixed(2)}M` : `${(rate / 1e3).toFixed(1)}k`).padStart(10);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
