/**
 * `npm run bench [-- <names>]`: runs the benchmarks one after another, each in its own process (backends are
 * process-global). Each writes its JSON under bench/results/ and prints a table.
 *
 *   envs    env steps/s, single env and vectors of 16 (sync, async)        bench/envs.ts
 *   core    step latency and forward+backward tokens/s of every core       bench/core.ts
 *   layer   the HQLT layer alone, per blend                                bench/hqlt-layer.ts
 *   ppo     PPO env-steps/s and steps to return 0.95 on RepeatPreviousEasy bench/ppo.ts
 *   remote  steps/s through ZeroMQ servers vs in-process                   bench/remote.ts
 *   suite   suite wall time: --jobs 1 vs 2, one queue worker vs two         bench/suite.ts
 *   resume  resume time early vs late in a run (checkpoints do not grow)   bench/resume.ts
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPTS: Record<string, string> = { envs: 'envs.js', core: 'core.js', layer: 'hqlt-layer.js', ppo: 'ppo.js', remote: 'remote.js', suite: 'suite.js', resume: 'resume.js' };

const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
const chosen = names.length ? names : Object.keys(SCRIPTS);
for (const name of chosen) {
  if (!(name in SCRIPTS)) {
    console.error(`Unknown benchmark '${name}'. Choose from: ${Object.keys(SCRIPTS).join(', ')}.`);
    process.exit(2);
  }
}
for (const name of chosen) {
  console.log(`\n=== bench ${name}`);
  const script = fileURLToPath(new URL(SCRIPTS[name], import.meta.url));
  const r = spawnSync(process.execPath, [script, ...passThrough], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
