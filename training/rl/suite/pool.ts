/**
 * A pool of child processes that run trials (`child.ts`), one at a time each: tfjs backends are process-global,
 * so parallel trials need their own processes. Used by `hqlt suite --jobs N` and by `hqlt worker`, whose own event
 * loop must stay free to renew its queue locks while trials train.
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Trial, TrialEvent, TrialOutcome } from './trial.js';

/** Parent → child. */
export type ToChild = { type: 'run'; trial: Trial; root: string; backend?: string; publish: boolean } | { type: 'stop' };

/** Child → parent. */
export type FromChild =
  | { type: 'event'; event: TrialEvent }
  | { type: 'outcome'; outcome: TrialOutcome }
  | { type: 'error'; message: string; spec: boolean };

/** Raised in the parent for a child's failure; `spec` marks trials that cannot run as given (see TrialSpecError). */
export class TrialFailed extends Error {
  override readonly name = 'TrialFailed';
  constructor(
    message: string,
    readonly spec: boolean,
  ) {
    super(message);
  }
}

/** The built child module: beside this file in dist/, or dist/'s copy when this file runs from source (tests). */
export function childModulePath(): string {
  const sibling = fileURLToPath(new URL('./child.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  const built = fileURLToPath(new URL('../../../dist/training/rl/suite/child.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new Error(`The trial process module ${built} is missing: build first (npx tsc -p tsconfig.json).`);
}

/** GPUs `nvidia-smi -L` lists (0 when it is missing). */
function nvidiaGpus(): number {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('GPU ')).length : 0;
}

/**
 * How many trials to run at once for `--jobs <n|auto>`: auto is one per core, or with a GPU backend one per GPU;
 * then trial process `i` sees only GPU `i` (CUDA_VISIBLE_DEVICES, which the TensorFlow GPU backend honours; a
 * WebGPU process uses the adapter Dawn picks).
 */
export function resolveJobs(spec: number | 'auto', backend: string | undefined): { jobs: number; env?: (i: number) => Record<string, string> } {
  const gpuBackend = backend === 'webgpu' || backend === 'tensorflow-gpu';
  if (spec !== 'auto') return { jobs: spec };
  if (!gpuBackend) return { jobs: availableParallelism() };
  const gpus = Math.max(1, nvidiaGpus());
  return { jobs: gpus, env: gpus > 1 ? (i) => ({ CUDA_VISIBLE_DEVICES: String(i % gpus) }) : undefined };
}

interface Slot {
  index: number;
  /** Taken by a `run` (set before its process exists). */
  taken: boolean;
  proc?: ChildProcess;
  current?: { trial: Trial; onEvent: (e: TrialEvent) => void; resolve: (o: TrialOutcome) => void; reject: (e: Error) => void };
}

export interface PoolOptions {
  size: number;
  /** Folder the trials' run folders go under. */
  root: string;
  backend?: string;
  /** Attach checkpoint bundles to events (for the queue's store). */
  publish?: boolean;
  /** Extra environment of child `i` (e.g. which GPU it sees). */
  env?: (i: number) => Record<string, string>;
}

export class TrialPool {
  private readonly slots: Slot[];
  private readonly waiters: ((slot: Slot) => void)[] = [];
  private stopping = false;

  constructor(private readonly opts: PoolOptions) {
    this.slots = Array.from({ length: opts.size }, (_, index) => ({ index, taken: false }));
  }

  /**
   * Runs `trial` under `root` (default: the pool's) in a free child, waiting for one; rejects with `TrialFailed`
   * when it fails or its process dies.
   */
  async run(trial: Trial, onEvent: (e: TrialEvent) => void = () => {}, root = this.opts.root): Promise<TrialOutcome> {
    const slot = await this.acquire();
    try {
      const proc = this.ensureProcess(slot);
      return await new Promise<TrialOutcome>((resolve, reject) => {
        slot.current = { trial, onEvent, resolve, reject };
        const msg: ToChild = { type: 'run', trial, root, backend: this.opts.backend, publish: this.opts.publish ?? false };
        proc.send(msg);
        if (this.stopping) proc.send({ type: 'stop' } satisfies ToChild);
      });
    } finally {
      slot.current = undefined;
      this.release(slot);
    }
  }

  /** Asks every running trial to checkpoint and return `stopped`; trials started later stop after one update. */
  stop(): void {
    this.stopping = true;
    for (const s of this.slots) if (s.current && s.proc?.connected) s.proc.send({ type: 'stop' } satisfies ToChild);
  }

  /** Ends the child processes (they exit when their channel closes) and waits for them. */
  async close(): Promise<void> {
    await Promise.all(
      this.slots.map(async (s) => {
        const proc = s.proc;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        if (proc.connected) proc.disconnect();
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private acquire(): Promise<Slot> {
    const free = this.slots.find((s) => !s.taken);
    if (free) {
      free.taken = true;
      return Promise.resolve(free);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(slot: Slot): void {
    const next = this.waiters.shift();
    if (next) next(slot);
    else slot.taken = false;
  }

  private ensureProcess(slot: Slot): ChildProcess {
    if (slot.proc && slot.proc.exitCode === null && slot.proc.signalCode === null && slot.proc.connected) return slot.proc;
    const proc = fork(childModulePath(), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...this.opts.env?.(slot.index) },
    });
    slot.proc = proc;
    proc.on('message', (msg: FromChild) => {
      const cur = slot.current;
      if (!cur) return;
      if (msg.type === 'event') cur.onEvent(msg.event);
      else if (msg.type === 'outcome') cur.resolve(msg.outcome);
      else cur.reject(new TrialFailed(msg.message, msg.spec));
    });
    proc.on('exit', (code, signal) => {
      if (slot.proc === proc) slot.proc = undefined;
      slot.current?.reject(
        new TrialFailed(
          `The process running trial ${slot.current.trial.id} exited (${signal ?? `code ${code}`}) before finishing it; its last checkpoint is kept.`,
          false,
        ),
      );
    });
    return proc;
  }
}
