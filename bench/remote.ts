/**
 * Remote env throughput: env steps per second of a registered env stepped in-process (SyncVectorEnv) and through
 * 1 and 4 `EnvServer` child processes over ipc:// and tcp://127.0.0.1, for several batch sizes (total envs; with
 * 4 servers each hosts a quarter). Writes `bench/results/remote.json` and prints a table.
 *
 *   node dist/bench/remote.js [--env popgym-RepeatPreviousEasy-v0] [--batches 1,16,64] [--seconds 1.5]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import seedrandom from 'seedrandom';
import '../envs/index.js';
import { SyncVectorEnv, type VectorEnv } from '../envs/vector.js';
import { RemoteVectorEnv } from '../envs/remote/client.js';
import { serveRegisteredEnv } from '../envs/remote/server.js';

export interface RemoteBenchRow {
  mode: 'in-process' | 'ipc' | 'tcp';
  servers: number;
  batch: number;
  /** Env steps (batch × vector steps) per second. */
  envStepsPerSecond: number;
  /** Vector steps (calls to `step`) per second. */
  vectorStepsPerSecond: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Starts one EnvServer child (this script in --serve mode) and resolves with its endpoint. */
function startServer(env: string, numEnvs: number, bind: string): Promise<{ proc: ChildProcess; endpoint: string }> {
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', env, '--num-envs', String(numEnvs), '--bind', bind], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ proc, endpoint: m[1] });
    });
    proc.once('exit', (code) => reject(new Error(`bench server exited with ${code}: ${out}`)));
  });
}

async function timeSteps(env: VectorEnv, seconds: number): Promise<{ steps: number; elapsed: number }> {
  const rng = seedrandom('bench');
  const actions = Array.from({ length: 64 }, () => Array.from({ length: env.numEnvs }, () => env.singleActionSpace.sample(rng)));
  await env.reset({ seed: 0 });
  for (let i = 0; i < 20; i++) await env.step(actions[i % actions.length]); // warm-up
  const t0 = performance.now();
  let steps = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await env.step(actions[steps % actions.length]);
    steps++;
  }
  return { steps, elapsed: (performance.now() - t0) / 1000 };
}

export async function benchRemote(opts: { env: string; batches: number[]; seconds: number }): Promise<RemoteBenchRow[]> {
  const rows: RemoteBenchRow[] = [];
  const record = (mode: RemoteBenchRow['mode'], servers: number, batch: number, r: { steps: number; elapsed: number }) => {
    const row = { mode, servers, batch, vectorStepsPerSecond: r.steps / r.elapsed, envStepsPerSecond: (r.steps * batch) / r.elapsed };
    rows.push(row);
    console.log(`${mode.padEnd(10)} servers=${servers} batch=${String(batch).padStart(2)}  ${row.envStepsPerSecond.toFixed(0).padStart(8)} env steps/s  ${row.vectorStepsPerSecond.toFixed(0).padStart(6)} vector steps/s`);
  };
  const dir = mkdtempSync(join(tmpdir(), 'hqlt-bench-'));
  for (const batch of opts.batches) {
    const local = new SyncVectorEnv({ id: opts.env, numEnvs: batch });
    record('in-process', 0, batch, await timeSteps(local, opts.seconds));
    await local.close();
    for (const mode of ['ipc', 'tcp'] as const)
      for (const servers of [1, 4]) {
        if (batch % servers !== 0) continue; // 4 servers need a batch divisible by 4
        const binds = Array.from({ length: servers }, (_, k) => (mode === 'ipc' ? `ipc://${join(dir, `b${batch}-${k}.sock`)}` : 'tcp://127.0.0.1:*'));
        const started = await Promise.all(binds.map((b) => startServer(opts.env, batch / servers, b)));
        try {
          const remote = await RemoteVectorEnv.connect(started.map((s) => s.endpoint));
          record(mode, servers, batch, await timeSteps(remote, opts.seconds));
          await remote.close();
        } finally {
          started.forEach((s) => s.proc.kill());
        }
      }
  }
  return rows;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      'num-envs': { type: 'string', default: '1' },
      bind: { type: 'string', default: 'tcp://127.0.0.1:*' },
      env: { type: 'string', default: 'popgym-RepeatPreviousEasy-v0' },
      batches: { type: 'string', default: '1,16,64' },
      seconds: { type: 'string', default: '1.5' },
    },
  });
  if (values.serve) {
    const server = await serveRegisteredEnv({ id: values.serve, numEnvs: Number(values['num-envs']), bind: values.bind! });
    console.log(`listening on ${server.endpoint}`);
    await server.serve();
    return;
  }
  const opts = { env: values.env!, batches: values.batches!.split(',').map(Number), seconds: Number(values.seconds) };
  const rows = await benchRemote(opts);
  const out = join(here, '..', '..', 'bench', 'results', 'remote.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ env: opts.env, node: process.version, date: new Date().toISOString(), rows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
