/**
 * Suites across machines, on BullMQ (a Redis-backed job queue). `hqlt suite --queue <url>` adds one job per trial,
 * with the trial id as job id (so adding a suite twice adds nothing), and polls the jobs until every one finished;
 * `hqlt worker --queue <url>` runs jobs in child processes (`TrialPool`) and returns each trial's result as the
 * job's return value.
 *
 * Failures: a worker renews a lock on each job it runs; when it dies (kill -9, a lost machine) the lock expires
 * and another worker's stalled-job check puts the job back in the queue. Workers publish every checkpoint of a
 * running trial to Redis (`CheckpointStore`, one key per trial), so the worker that takes the job over resumes
 * from it rather than from the start. A trial that fails with an error is retried `ATTEMPTS` times; one that
 * cannot run as given (unknown env or core) fails at once (`UnrecoverableError`). Lost Redis connections are
 * retried for ever, with a message per outage.
 */
import { rmSync } from 'node:fs';
import { Queue, UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job, type RedisClient } from 'bullmq';
import { TrialPool, TrialFailed } from './pool.js';
import { checkpointUpdate, trialConfig, workerName, trialDir, TrialSchema, TrialSpecError, unpackBundle, type Trial, type TrialBundle, type TrialEvent, type TrialResult } from './trial.js';
import { join } from 'node:path';

export const QUEUE_NAME = 'hqlt-suite';
/** Tries per trial for errors (a crash of a worker counts as a stall, not an attempt). */
export const ATTEMPTS = 3;
/** How often a job may be taken back from a worker that stopped renewing its lock before it counts as failed. */
export const MAX_STALLS = 10;

/** BullMQ connection options for a `redis://[user:password@]host[:port][/db]` URL (or rediss:// for TLS). */
export function redisConnection(url: string): ConnectionOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--queue '${url}' is not a URL: give redis://host:6379/0 (or rediss:// for TLS).`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`--queue '${url}' is not a Redis URL: give redis://host:6379/0 (or rediss:// for TLS).`);
  }
  // Retry for ever, at most 5 s apart: a worker outlives Redis restarts.
  return { url, maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(500 * times, 5000) };
}

/**
 * Prints one message when Redis becomes unreachable and one when it answers again (a PING, which waits in the
 * client's queue until it has reconnected), instead of one per retry.
 */
function watchConnection(url: string, what: string, client: Promise<RedisClient>, log: (line: string) => void): (err: Error) => void {
  let down = false;
  return (err: Error) => {
    if (down) return;
    down = true;
    log(`${what}: lost Redis at ${url} (${err.message}); retrying every few seconds. Check that redis-server is running there and reachable.`);
    void client
      .then((c) => c.runCommand('ping', []))
      .then(() => {
        down = false;
        log(`${what}: reconnected to Redis at ${url}.`);
      })
      .catch(() => {}); // closed meanwhile
  };
}

/** Waits for the connection, failing after `ms` with what to check. */
async function connected(queue: Queue, url: string, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Cannot reach Redis at ${url} within ${ms / 1000} s. Start it (redis-server; on Debian/Ubuntu: apt-get install redis-server) or fix --queue.`)),
      ms,
    );
  });
  try {
    await Promise.race([queue.waitUntilReady(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Where workers publish checkpoints of running trials: a Redis hash per trial (update, bundle as JSON). A put
 * older than the stored one is ignored, so a worker that lost its job cannot roll the checkpoint back.
 */
export class CheckpointStore {
  constructor(private readonly client: RedisClient) {}

  private key(id: string): string {
    return `hqlt:suite:checkpoint:${id}`;
  }

  async put(id: string, bundle: TrialBundle): Promise<void> {
    const script =
      "local cur = redis.call('HGET', KEYS[1], 'update') " +
      "if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end " +
      "redis.call('HSET', KEYS[1], 'update', ARGV[1], 'bundle', ARGV[2]) return 1";
    await this.client.runCommand('eval', [script, 1, this.key(id), bundle.update, JSON.stringify(bundle)]);
  }

  async get(id: string): Promise<TrialBundle | undefined> {
    const text = await this.client.hget(this.key(id), 'bundle');
    return text ? (JSON.parse(text) as TrialBundle) : undefined;
  }

  async delete(id: string): Promise<void> {
    await this.client.del(this.key(id));
  }
}

/** Adds a job per trial unless it exists; failed ones are retried. */
async function addTrials(queue: Queue, trials: Trial[], log: (line: string) => void): Promise<{ added: number; existing: number }> {
  let added = 0;
  let existing = 0;
  for (const trial of trials) {
    const job = await queue.getJob(trial.id);
    if (job && (await job.getState()) === 'failed') {
      log(`retrying trial ${trial.id}, which failed before: ${job.failedReason}`);
      await job.retry('failed');
    }
    if (job) existing++;
    else {
      await queue.add('trial', trial, {
        jobId: trial.id,
        attempts: ATTEMPTS,
        backoff: { type: 'exponential', delay: 5000 },
        removeOnComplete: false,
        removeOnFail: false,
      });
      added++;
    }
  }
  return { added, existing };
}

/** Enqueues `trials` on the queue at `url` (idempotently: one job per trial id) without waiting for them. */
export async function enqueueTrials(url: string, trials: Trial[], log: (line: string) => void = console.error): Promise<{ added: number; existing: number }> {
  const queue = new Queue(QUEUE_NAME, { connection: redisConnection(url) });
  queue.on('error', () => {});
  try {
    await connected(queue, url, 10_000);
    return await addTrials(queue, trials, log);
  } finally {
    await queue.close();
  }
}

export interface QueueRunOptions {
  url: string;
  signal?: AbortSignal;
  onEvent?: (trial: Trial, event: TrialEvent) => void;
  onResult: (result: TrialResult) => void;
  log?: (line: string) => void;
  /** Poll period in ms. */
  pollMs?: number;
}

interface JobProgress {
  update?: number;
  total?: number;
  resumedFrom?: number | null;
}

/**
 * Enqueues `trials` and waits until all finished, passing each result to `onResult` once. Aborting stops the
 * waiting (the jobs stay queued). Throws, after the others finished, if any trial failed for good.
 */
export async function runTrialsOnQueue(trials: Trial[], opts: QueueRunOptions): Promise<void> {
  const log = opts.log ?? console.error;
  const queue = new Queue(QUEUE_NAME, { connection: redisConnection(opts.url) });
  queue.on('error', watchConnection(opts.url, 'suite', queue.client, log));
  try {
    await connected(queue, opts.url, 10_000);
    const { added, existing } = await addTrials(queue, trials, log);
    log(`queued ${added} trial(s) on ${opts.url}${existing ? ` (${existing} already there)` : ''}; waiting for workers (hqlt worker --queue ${opts.url}).`);
    const pending = new Map(trials.map((t) => [t.id, t]));
    const active = new Set<string>();
    const failures: string[] = [];
    while (pending.size > 0 && !opts.signal?.aborted) {
      for (const trial of [...pending.values()]) {
        const job = (await queue.getJob(trial.id)) as Job<Trial, TrialResult> | undefined;
        if (!job) {
          await addTrials(queue, [trial], log); // removed meanwhile (the queue was cleaned): add it again
          continue;
        }
        const state = await job.getState();
        const progress = (typeof job.progress === 'object' ? job.progress : {}) as JobProgress;
        if (state === 'completed') {
          // Read again: the job may have finished after `job` was read, which then lacks the return value.
          const result = ((await queue.getJob(trial.id)) as Job<Trial, TrialResult> | undefined)?.returnvalue;
          if (result?.id !== trial.id) continue;
          pending.delete(trial.id);
          opts.onResult(result);
        } else if (state === 'failed') {
          pending.delete(trial.id);
          failures.push(`${trial.id}: ${job.failedReason}`);
          opts.onEvent?.(trial, { kind: 'failed', reason: job.failedReason });
        } else if (state === 'active' && progress.total !== undefined) {
          if (!active.has(trial.id)) {
            active.add(trial.id);
            opts.onEvent?.(trial, { kind: 'start', resumedFrom: progress.resumedFrom ?? null, total: progress.total });
          }
          if (progress.update !== undefined) opts.onEvent?.(trial, { kind: 'progress', update: progress.update, total: progress.total });
        } else active.delete(trial.id);
      }
      if (pending.size > 0) await sleep(opts.pollMs ?? 500, opts.signal);
    }
    if (failures.length) {
      throw new Error(
        `${failures.length} trial(s) failed on the workers:\n  ${failures.join('\n  ')}\n` +
          `Fix the cause and run the same command again: finished trials are kept, failed ones are queued again.`,
      );
    }
  } finally {
    await queue.close();
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export interface WorkerOptions {
  url: string;
  /** Trials at once (child processes). */
  jobs: number;
  backend?: string;
  /** Local folder for the trials' run folders while they run (`<work>/<settings hash>/runs/...`). */
  work: string;
  /** A job whose worker stops renewing its lock for this long goes to another worker (BullMQ lockDuration). */
  lockMs?: number;
  /** Aborting checkpoints running trials, hands them back to the queue and returns. */
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Extra environment of trial process `i`. */
  env?: (i: number) => Record<string, string>;
}

/** Takes trials from the queue and runs them until `signal` aborts. */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const log = opts.log ?? console.error;
  const connection = redisConnection(opts.url);
  const pool = new TrialPool({ size: opts.jobs, root: opts.work, backend: opts.backend, publish: true, env: opts.env });
  const storeQueue = new Queue(QUEUE_NAME, { connection });
  storeQueue.on('error', () => {}); // reported through the worker's connection
  const lockMs = opts.lockMs ?? 30_000;

  const processJob = async (job: Job<unknown, TrialResult>, token?: string): Promise<TrialResult> => {
    const parsed = TrialSchema.safeParse(job.data);
    if (!parsed.success) {
      throw new UnrecoverableError(`Job ${job.id} is not an hqlt trial (${parsed.error.issues.map((i) => i.path.join('.') + ': ' + i.message).join('; ')}): it was queued by something other than this version of 'hqlt suite'.`);
    }
    const trial = parsed.data;
    const root = join(opts.work, trial.hash);
    try {
      trialConfig(trial, root, opts.backend);
    } catch (err) {
      log(`trial ${trial.id} cannot run here: ${(err as Error).message}`);
      throw err instanceof TrialSpecError ? new UnrecoverableError(err.message) : err;
    }
    const store = new CheckpointStore(await storeQueue.client);
    const stored = await store.get(trial.id);
    const local = checkpointUpdate(root, trial);
    if (stored && (local === null || stored.update > local)) unpackBundle(root, trial, stored);
    const from = Math.max(local ?? 0, stored?.update ?? 0);
    log(`took trial ${trial.id}${from ? `, resuming from the checkpoint of update ${from}` : ''} (attempt ${job.attemptsMade + 1}, taken back from stalled workers ${job.stalledCounter} time(s))`);
    let lastReport = 0;
    let uploads = Promise.resolve();
    const onEvent = (e: TrialEvent) => {
      if (e.kind === 'checkpoint' && e.bundle) {
        const bundle = e.bundle;
        uploads = uploads.then(() => store.put(trial.id, bundle)).catch((err: Error) => log(`could not publish the checkpoint of ${trial.id}: ${err.message}`));
      } else if (e.kind === 'start') {
        void job.updateProgress({ update: e.resumedFrom ?? 0, total: e.total, resumedFrom: e.resumedFrom }).catch(() => {});
      } else if (e.kind === 'progress' && (Date.now() - lastReport > 1000 || e.update === e.total)) {
        lastReport = Date.now();
        void job.updateProgress({ update: e.update, total: e.total }).catch(() => {});
      }
    };
    let outcome;
    try {
      outcome = await pool.run(trial, onEvent, root);
    } catch (err) {
      log(`trial ${trial.id} failed: ${(err as Error).message}`);
      throw err instanceof TrialFailed && err.spec ? new UnrecoverableError(err.message) : err;
    } finally {
      await uploads;
    }
    if (outcome.kind === 'stopped') {
      if (outcome.bundle) await store.put(trial.id, outcome.bundle);
      log(`handed trial ${trial.id} back to the queue at update ${outcome.update}`);
      await job.moveToWait(token);
      throw new WaitingError();
    }
    log(`finished trial ${trial.id}: MMER ${outcome.result.mmer?.toFixed(3) ?? 'none'} (${outcome.result.seconds.toFixed(1)} s)`);
    rmSync(trialDir(root, trial), { recursive: true, force: true });
    return { ...outcome.result, worker: workerName() }; // this worker, not its trial process
  };

  const worker = new Worker<unknown, TrialResult>(QUEUE_NAME, processJob, {
    connection,
    concurrency: opts.jobs,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: MAX_STALLS,
    autorun: false,
  });
  worker.on('error', watchConnection(opts.url, 'worker', worker.client, log));
  worker.on('completed', (job) => {
    void storeQueue.client.then((c) => new CheckpointStore(c).delete(job.id!)).catch(() => {});
  });
  const running = worker.run();
  log(`worker: taking trials from ${opts.url} (${opts.jobs} at a time, runs under ${opts.work}).`);
  await new Promise<void>((resolve) => {
    if (opts.signal?.aborted) resolve();
    opts.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  log('worker: stopping: checkpointing running trials and handing them back to the queue.');
  pool.stop();
  await worker.close();
  await running.catch(() => {});
  await pool.close();
  await storeQueue.close();
}
