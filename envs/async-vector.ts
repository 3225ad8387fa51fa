/**
 * AsyncVectorEnv: envs stepped in parallel in worker threads, as Gymnasium's AsyncVectorEnv (threads, not
 * processes). Closures can't cross to a worker, so envs are named by registered id + kwargs (+ wrapper specs);
 * each worker imports `envs/index.js` and the caller's `modules` (which may register more envs).
 *
 * Worker threads can't load TypeScript, so when this module runs from its .ts source (vitest) the worker is the
 * compiled `dist/envs/async-worker.js`: run `npm run build` after changing env sources.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EnvMetadata } from './env.js';
import type { Json } from './snapshot.js';
import { spaceFromJSON, type Space, type SpaceJSON } from './spaces.js';
import {
  BaseVectorEnv,
  batchReset,
  batchStep,
  checkMode,
  type AutoresetMode,
  type EnvResetRecord,
  type EnvStepRecord,
  type GroupState,
  type MakeVectorOptions,
  type VectorResetResult,
  type VectorStepResult,
} from './vector.js';

export interface AsyncVectorEnvOptions extends MakeVectorOptions {
  /**
   * Worker threads; envs are split evenly among them. Default: min(numEnvs, 4, CPU cores - 1). Every worker adds a
   * message round trip (tens of microseconds) to each step, so for cheap envs more workers are slower (measured:
   * RepeatPrevious x16 runs ~300k steps/s on 1-4 workers, ~100k on 15); raise it for envs whose steps are costly.
   * For cheap envs SyncVectorEnv is fastest.
   */
  numWorkers?: number;
  /** Extra modules each worker imports before making its envs (paths, file URLs or package names), e.g. to register user envs. */
  modules?: string[];
}

/** What a worker is started with. */
export interface AsyncWorkerData {
  make: Omit<MakeVectorOptions, 'numEnvs'>;
  count: number;
  modules: string[];
}

export type WorkerRequest =
  | { cmd: 'reset'; seeds: (number | undefined)[]; options?: Record<string, unknown> }
  | { cmd: 'step'; actions: unknown[] }
  | { cmd: 'getState' }
  | { cmd: 'setState'; state: Json }
  | { cmd: 'close' };

export type WorkerReply = { ok: true; result: unknown } | { ok: false; error: string };

interface WorkerInit {
  observationSpace: SpaceJSON;
  actionSpace: SpaceJSON;
  metadata: EnvMetadata;
}

/** One worker and its pending request (one at a time). */
class WorkerLink {
  private pending?: { resolve: (v: unknown) => void; reject: (e: Error) => void };
  private failure?: Error;

  constructor(
    readonly worker: Worker,
    readonly index: number,
  ) {
    worker.on('message', (reply: WorkerReply) => {
      const p = this.take();
      if (!p) return;
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(`AsyncVectorEnv worker ${index}: ${reply.error}`));
    });
    worker.on('error', (err) => this.fail(new Error(`AsyncVectorEnv worker ${index} crashed: ${err.message}`)));
    worker.on('exit', (code) => this.fail(new Error(`AsyncVectorEnv worker ${index} exited (code ${code}).`)));
  }

  /** The worker's next reply (its init reply first); it holds the event loop open only while awaited. */
  request(msg?: WorkerRequest): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    if (msg) {
      try {
        this.worker.postMessage(msg);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        return Promise.reject(new Error(`AsyncVectorEnv: could not send ${msg.cmd}() to worker ${this.index}: ${why}`));
      }
    }
    // Replies arrive as later events, so setting `pending` after posting is safe.
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.ref();
    });
  }

  private take(): typeof this.pending {
    const p = this.pending;
    this.pending = undefined;
    this.worker.unref();
    return p;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.take()?.reject(err);
  }
}

export class AsyncVectorEnv<O = unknown, A = unknown> extends BaseVectorEnv<O, A> {
  private constructor(
    private readonly links: WorkerLink[],
    /** Envs per worker, in env order. */
    private readonly counts: number[],
    singleObservationSpace: Space<O>,
    singleActionSpace: Space<A>,
    metadata: EnvMetadata,
    autoresetMode: AutoresetMode,
  ) {
    super('AsyncVectorEnv', {
      numEnvs: counts.reduce((a, b) => a + b, 0),
      singleObservationSpace,
      singleActionSpace,
      autoresetMode,
      metadata,
    });
  }

  /** Starts the workers and makes the envs in them; resolves once all are ready. */
  static async create<O = unknown, A = unknown>(opts: AsyncVectorEnvOptions): Promise<AsyncVectorEnv<O, A>> {
    const { numWorkers, modules = [], ...make } = opts;
    if (!Number.isInteger(make.numEnvs) || make.numEnvs <= 0)
      throw new Error(`AsyncVectorEnv: numEnvs must be a positive integer, got ${make.numEnvs}.`);
    const autoresetMode = make.autoresetMode ?? 'next-step';
    checkMode(autoresetMode);
    const workers = Math.min(numWorkers ?? defaultWorkers(), make.numEnvs);
    if (!Number.isInteger(workers) || workers <= 0)
      throw new Error(`AsyncVectorEnv: numWorkers must be a positive integer, got ${numWorkers}.`);
    const counts = Array.from({ length: workers }, (_, w) => Math.floor((make.numEnvs + w) / workers)).reverse();
    const script = workerScript();
    const { numEnvs: _n, ...makeRest } = make;
    const links = counts.map((count, w) => {
      const workerData: AsyncWorkerData = { make: { ...makeRest, autoresetMode }, count, modules: modules.map(moduleUrl) };
      return new WorkerLink(new Worker(script, { workerData }), w);
    });
    let inits: WorkerInit[];
    try {
      inits = (await Promise.all(links.map((l) => l.request()))) as WorkerInit[];
    } catch (err) {
      await Promise.all(links.map((l) => l.worker.terminate()));
      throw err;
    }
    return new AsyncVectorEnv<O, A>(
      links,
      counts,
      spaceFromJSON(inits[0].observationSpace) as Space<O>,
      spaceFromJSON(inits[0].actionSpace) as Space<A>,
      { ...inits[0].metadata, autoresetMode },
      autoresetMode,
    );
  }

  protected async resetEnvs(seeds: (number | undefined)[], options?: Record<string, unknown>): Promise<VectorResetResult<O>> {
    const split = this.split(seeds);
    const parts = await Promise.all(this.links.map((l, w) => l.request({ cmd: 'reset', seeds: split[w], options })));
    return batchReset(this.singleObservationSpace, (parts as EnvResetRecord<O>[][]).flat());
  }

  protected async stepEnvs(actions: ArrayLike<A>): Promise<VectorStepResult<O>> {
    const split = this.split(Array.from(actions));
    const parts = await Promise.all(this.links.map((l, w) => l.request({ cmd: 'step', actions: split[w] })));
    return batchStep(this.singleObservationSpace, (parts as EnvStepRecord<O>[][]).flat());
  }

  /** Every env's state, in env order, as SyncVectorEnv's (see `VectorEnv.getState`). */
  async getState(): Promise<Json> {
    const parts = (await Promise.all(this.links.map((l) => l.request({ cmd: 'getState' })))) as GroupState[];
    return { envs: parts.flatMap((p) => p.envs), needsAutoreset: parts.flatMap((p) => p.needsAutoreset) };
  }

  async setState(state: Json): Promise<void> {
    const s = state as Partial<GroupState> | null;
    if (!s || !Array.isArray(s.envs) || !Array.isArray(s.needsAutoreset) || s.envs.length !== this.numEnvs)
      throw new Error(`AsyncVectorEnv: the saved state is not of ${this.numEnvs} envs (was it saved with another --num-envs?).`);
    const envs = this.split(s.envs);
    const flags = this.split(s.needsAutoreset);
    await this.asReset(() =>
      Promise.all(this.links.map((l, w) => l.request({ cmd: 'setState', state: { envs: envs[w], needsAutoreset: flags[w] } }))),
    );
  }

  protected async closeEnvs(): Promise<void> {
    await Promise.all(
      this.links.map(async (l) => {
        await l.request({ cmd: 'close' }).catch(() => undefined);
        await l.worker.terminate();
      }),
    );
  }

  /** Splits a per-env list into per-worker slices. */
  private split<T>(items: T[]): T[][] {
    let start = 0;
    return this.counts.map((c) => items.slice(start, (start += c)));
  }
}

export function defaultWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/** The compiled worker script: a sibling in dist/, or dist/envs/ of the project root when running from .ts. */
function workerScript(): URL {
  const here = new URL(import.meta.url);
  const url = here.pathname.endsWith('.ts')
    ? new URL('../dist/envs/async-worker.js', here)
    : new URL('./async-worker.js', here);
  if (!existsSync(fileURLToPath(url)))
    throw new Error(`AsyncVectorEnv: the compiled worker ${fileURLToPath(url)} is missing; run \`npm run build\`.`);
  return url;
}

/** Paths (relative to the cwd) become file URLs; URLs and package names pass through. */
function moduleUrl(m: string): string {
  if (/\.(c|m)?ts$/.test(m))
    throw new Error(`AsyncVectorEnv: worker threads can't load TypeScript module '${m}'; pass its compiled .js.`);
  if (m.startsWith('.') || m.startsWith('/')) return pathToFileURL(resolvePath(m)).href;
  return m;
}
