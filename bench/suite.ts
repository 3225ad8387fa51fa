/**
 * Suite benchmark: wall time of one suite run 1 trial at a time vs 2 at a time (`--jobs 2`), and on a Redis queue
 * with one `hqlt worker` vs two. Ratios are measured in the same invocation, one run after another, so a machine
 * shared with other work loads both sides alike; the load average is recorded too.
 *
 *   node dist/bench/suite.js [--steps 65536] [--envs PassiveTMazeShort-v0,popgym-RepeatPreviousEasy-v0]
 *                            [--cores mlp,gru] [--seeds 2] [--backend wasm] [--skip-queue]
 *
 * The queue half starts its own redis-server on a free loopback port (skipped when redis-server is missing) and
 * its workers as `dist/cli/cli.js worker` processes. Writes bench/results/suite.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freeLoopbackPort } from '../util/net.js';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runSuite } from '../training/rl/suite.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '65536' },
    envs: { type: 'string', default: 'PassiveTMazeShort-v0,popgym-RepeatPreviousEasy-v0' },
    cores: { type: 'string', default: 'mlp,gru' },
    seeds: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm' },
    'skip-queue': { type: 'boolean', default: false },
  },
});
const envs = values.envs!.split(',');
const cores = values.cores!.split(',');
const seeds = Number(values.seeds);
const base = { steps: Number(values.steps), numEnvs: 8, rollout: 64, seqLen: 16, minibatches: 4, epochs: 2, backend: values.backend, checkpointEvery: 4 };
const CLI = fileURLToPath(new URL('../cli/cli.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'hqlt-bench-suite-'));

/** Seconds one suite run takes (a fresh output folder each time). */
async function timeSuite(name: string, extra: { jobs?: number; queue?: string }): Promise<number> {
  const out = join(scratch, name);
  const t0 = performance.now();
  await runSuite({ envs, cores, seeds, base, out, ...extra, log: () => {} });
  const s = (performance.now() - t0) / 1000;
  console.log(`${name}: ${s.toFixed(1)} s (load average ${loadavg()[0].toFixed(1)})`);
  return s;
}


/** Starts `n` workers on `url` and resolves once each says it is taking trials. */
async function startWorkers(url: string, n: number, tag: string): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      const proc = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--work', join(scratch, `${tag}-w${i}`), '--backend', values.backend!], { stdio: ['ignore', 'ignore', 'pipe'] });
      return new Promise<ChildProcess>((resolve, reject) => {
        let err = '';
        proc.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('taking trials from')) resolve(proc);
        });
        proc.on('exit', (code) => reject(new Error(`worker exited (${code}):\n${err}`)));
      });
    }),
  );
}

async function stopWorkers(procs: ChildProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => new Promise((resolve) => (p.once('exit', resolve), p.kill('SIGINT')))));
}

const loadBefore = loadavg()[0];
const jobs1 = await timeSuite('jobs-1', { jobs: 1 });
const jobs2 = await timeSuite('jobs-2', { jobs: 2 });
let queue: { oneWorker: number; twoWorkers: number; ratio: number } | string = 'skipped (--skip-queue)';
if (!values['skip-queue']) {
  if (spawnSync('redis-server', ['--version']).status !== 0) queue = 'skipped: redis-server is not installed';
  else {
    const port = await freeLoopbackPort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const one = await startWorkers(`redis://127.0.0.1:${port}/0`, 1, 'one');
      const oneWorker = await timeSuite('queue-1-worker', { queue: `redis://127.0.0.1:${port}/0` });
      await stopWorkers(one);
      const two = await startWorkers(`redis://127.0.0.1:${port}/1`, 2, 'two');
      const twoWorkers = await timeSuite('queue-2-workers', { queue: `redis://127.0.0.1:${port}/1` });
      await stopWorkers(two);
      queue = { oneWorker, twoWorkers, ratio: oneWorker / twoWorkers };
    } finally {
      redis.kill('SIGKILL');
    }
  }
}
rmSync(scratch, { recursive: true, force: true });
const report = {
  date: new Date().toISOString(),
  cpus: `${cpus().length} × ${cpus()[0]?.model}`,
  loadAverage: { before: loadBefore, after: loadavg()[0] },
  suite: { envs, cores, seeds, base },
  local: { jobs1, jobs2, ratio: jobs1 / jobs2 },
  queue,
};
console.log(JSON.stringify(report, null, 2));
mkdirSync(join('bench', 'results'), { recursive: true });
writeFileSync(join('bench', 'results', 'suite.json'), JSON.stringify(report, null, 2) + '\n');
console.log('wrote bench/results/suite.json');
