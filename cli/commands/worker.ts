import type { Command } from 'commander';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stopped, stopOnSignals } from '../../util/interrupt.js';
import { resolveJobs } from '../../training/rl/suite/pool.js';
import { runWorker } from '../../training/rl/suite/queue.js';
import { backendOption, positiveIntArg } from './options.js';
import { jobsArg } from './suite.js';

interface WorkerFlags {
  queue: string;
  jobs: number | 'auto';
  backend?: string;
  work: string;
  lockMs: number;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description("take trials queued by 'hqlt suite --queue' and run them, until Ctrl-C (which checkpoints them and hands them back)")
    .requiredOption('--queue <url>', 'the Redis of the queue (redis://host:6379/0)')
    .option('--jobs <n|auto>', 'trials at once, each in its own process (auto: one per core, or per GPU with a GPU backend)', jobsArg, 1)
    .option('--work <dir>', 'local folder for the running trials', join(tmpdir(), 'hqlt-worker'))
    .option('--lock-ms <ms>', "a trial whose worker is silent this long (killed, machine lost) goes to another worker", positiveIntArg, 30_000)
    .addOption(backendOption())
    .action(async (f: WorkerFlags) => {
      const { jobs, env } = resolveJobs(f.jobs, f.backend);
      await stopOnSignals('checkpointing the running trials and handing them back to the queue', async (signal) => {
        await runWorker({ url: f.queue, jobs, backend: f.backend, work: f.work, lockMs: f.lockMs, signal, env });
        if (signal.aborted) throw new Stopped('worker stopped; its unfinished trials are back on the queue.');
      });
    });
}
