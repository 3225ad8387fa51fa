/**
 * `RemoteVectorEnv`: envs served over ZeroMQ (by `hqlt serve` or `hqlt_env_server.py`) as one local vector env.
 * Several endpoints are concatenated in order; each step is sent to all servers before any reply is awaited, so
 * the servers step in parallel.
 */
import * as zmq from 'zeromq';
import type { EnvMetadata } from '../env.js';
import { copyBatch, spaceFromJSON, type Batch, type BatchOf, type Space, type SpaceJSON } from '../spaces.js';
import { BaseVectorEnv, type AutoresetMode, type VectorInfo, type VectorResetResult, type VectorStepResult } from '../vector.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_REMOTE_TIMEOUT_MS,
  PROTOCOL_VERSION,
  ProtocolError,
  RemoteEnvError,
  batchFromWire,
  batchValues,
  decodeMessage,
  encodeMessage,
  flags,
  numbers,
  plainInfo,
  type Header,
} from './protocol.js';

export interface RemoteVectorEnvOptions {
  /**
   * Longest wait for any reply, connecting included; a dead, hung or silent server fails within it. Default 30 s
   * (`--remote-timeout` on the command line).
   */
  timeoutMs?: number;
  /** Replies larger than this are rejected. Default 64 MiB. */
  maxMessageBytes?: number;
  /**
   * On a fault, reconnect to the server and reset its envs instead of throwing: that step reports those envs as
   * truncated (their obs being the new episode's first obs) and sets `info.remote_restarted`; the next step is
   * then their autoreset step (action ignored, reward 0), as in Gymnasium's next-step mode. Default false.
   */
  reconnect?: boolean;
}

/** The `--env` prefix that names remote envs: `remote:tcp://host:port[,ipc://path...]`. */
export const REMOTE_PREFIX = 'remote:';

/** Whether an env id names remote envs (`remote:tcp://...`). */
export function isRemoteEnvId(id: string): boolean {
  return id.startsWith(REMOTE_PREFIX);
}

/** Connects to the endpoints named by a `remote:` env id (comma-separated). */
export function makeRemoteVectorEnv(id: string, opts: RemoteVectorEnvOptions = {}): Promise<RemoteVectorEnv> {
  if (!isRemoteEnvId(id)) throw new Error(`'${id}' is not a remote env id; expected remote:tcp://host:port[,...].`);
  const endpoints = id.slice(REMOTE_PREFIX.length).split(',').map((s) => s.trim()).filter(Boolean);
  return RemoteVectorEnv.connect(endpoints, opts);
}

interface Hello {
  numEnvs: number;
  envId: string;
  observationSpace: SpaceJSON;
  actionSpace: SpaceJSON;
  metadata: Record<string, unknown>;
  session?: string;
}

/** One server: a DEALER socket, recreated after any fault so a stale request can never be delivered late. */
class Connection {
  private socket!: zmq.Dealer;
  private nextId = 1;
  hello!: Hello;
  /** Set after a reconnect: the obs to return, as an autoreset step, on the next step. */
  pendingObs?: Batch;
  /** Why the socket was given up, after a fault; `open()` clears it. */
  private broken?: string;

  constructor(
    readonly endpoint: string,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
  ) {}

  async open(): Promise<void> {
    this.socket?.close();
    this.broken = undefined;
    this.socket = new zmq.Dealer({
      linger: 0,
      receiveTimeout: this.timeoutMs,
      sendTimeout: this.timeoutMs,
      reconnectInterval: 100,
    });
    try {
      this.socket.connect(this.endpoint);
    } catch (e) {
      throw new Error(`Cannot connect to env server ${this.endpoint}: ${(e as Error).message}. ` + ENDPOINT_HINT);
    }
    const r = await this.request({ type: 'hello' });
    if (r.v !== PROTOCOL_VERSION)
      throw new RemoteEnvError(`${this.endpoint}: server speaks protocol v${String(r.v)}, this client v${PROTOCOL_VERSION}.`);
    const n = r.num_envs;
    if (!Number.isInteger(n) || (n as number) < 1) throw this.garbage(`hello: bad num_envs ${String(n)}`);
    const meta = (r.metadata ?? {}) as Record<string, unknown>;
    this.hello = {
      numEnvs: n as number,
      envId: String(r.env_id ?? 'unknown'),
      observationSpace: r.observation_space as SpaceJSON,
      actionSpace: r.action_space as SpaceJSON,
      metadata: meta,
      session: typeof r.session === 'string' ? r.session : undefined,
    };
  }

  /** Sends a request and awaits its reply; a fault closes the socket and throws a RemoteEnvError. */
  async request(body: Header): Promise<Header> {
    if (this.broken)
      throw new RemoteEnvError(
        `Env server ${this.endpoint} failed earlier (${this.broken}); connect again, or pass reconnect: true.`,
        'Broken',
      );
    const id = this.nextId++;
    const deadline = Date.now() + this.timeoutMs;
    try {
      // On a reconnect, the hello carries the session held so far, which lets this client take it back.
      const session = this.hello?.session;
      await this.socket.send(encodeMessage({ v: PROTOCOL_VERSION, id, session, ...body }));
      for (;;) {
        const frames = await this.socket.receive();
        const reply = decodeMessage(frames, this.maxBytes);
        // An error with a null id answers a request the server could not read (one is in flight at a time).
        if (reply.id !== id && !(reply.type === 'error' && reply.id === null)) {
          // A late reply to an earlier request, or a server's probe; drop it, within the deadline.
          if (Date.now() > deadline) throw Object.assign(new Error('timeout'), { code: 'EAGAIN' });
          continue;
        }
        if (reply.type === 'error')
          throw new RemoteEnvError(
            reply.error_type === 'Busy'
              ? `Env server ${this.endpoint} is busy: ${String(reply.message)}`
              : `Env server ${this.endpoint} failed on '${body.type}': ${String(reply.error_type)}: ${String(reply.message)}`,
            String(reply.error_type),
          );
        if (reply.type !== (body.type === 'ping' ? 'pong' : body.type))
          throw this.garbage(`expected a '${body.type}' reply, got '${reply.type}'`);
        return reply;
      }
    } catch (e) {
      if (e instanceof RemoteEnvError) throw e;
      this.socket.close(); // never reuse a socket that may hold a stale request
      this.broken = `${(e as Error).message} on '${body.type}'`;
      if ((e as { code?: string }).code === 'EAGAIN')
        throw new RemoteEnvError(
          `No reply from env server ${this.endpoint} to '${body.type}' within ${this.timeoutMs} ms: the server ` +
            `died, hung or is not running. ${ENDPOINT_HINT}`,
          'Timeout',
        );
      if (e instanceof ProtocolError) throw this.garbage(e.message);
      throw new RemoteEnvError(`Env server ${this.endpoint}: ${(e as Error).message}`);
    }
  }

  garbage(what: string): RemoteEnvError {
    return new RemoteEnvError(`Env server ${this.endpoint} sent an invalid reply: ${what}.`, 'ProtocolError');
  }

  close(): void {
    this.socket?.close();
  }
}

const ENDPOINT_HINT =
  'Start one with `hqlt serve --env <id> --bind <endpoint>` or ' +
  '`python3 envs/remote/hqlt_env_server.py --env <id> --bind <endpoint>`; if it is just slow, raise it with ' +
  '--remote-timeout <ms> (timeoutMs in code).';

/** One server's part of a vector step, before the parts are joined. */
interface ServerStep {
  obs: Batch;
  rewards: Float64Array;
  terminated: boolean[];
  truncated: boolean[];
  info: VectorInfo;
}

/** Remote envs acting as one local vector env (see the module comment). */
export class RemoteVectorEnv<O = unknown, A = unknown> extends BaseVectorEnv<O, A> {
  private constructor(
    private readonly conns: Connection[],
    private readonly reconnect: boolean,
  ) {
    const first = conns[0].hello;
    for (const c of conns.slice(1)) {
      for (const key of ['observationSpace', 'actionSpace'] as const)
        if (JSON.stringify(c.hello[key]) !== JSON.stringify(first[key]))
          throw new Error(
            `Env servers ${conns[0].endpoint} and ${c.endpoint} have different ${key === 'actionSpace' ? 'action' : 'observation'} ` +
              `spaces (${JSON.stringify(first[key])} vs ${JSON.stringify(c.hello[key])}); serve the same env everywhere.`,
          );
      if (c.hello.metadata.autoreset_mode !== first.metadata.autoreset_mode)
        throw new Error(`Env servers ${conns[0].endpoint} and ${c.endpoint} use different autoreset modes.`);
    }
    const mode = first.metadata.autoreset_mode ?? 'next-step';
    if (mode !== 'next-step' && mode !== 'same-step') throw conns[0].garbage(`unknown autoreset_mode '${String(mode)}'`);
    const { render_modes, renderModes, autoreset_mode: _, ...rest } = first.metadata;
    super('RemoteVectorEnv', {
      numEnvs: conns.reduce((s, c) => s + c.hello.numEnvs, 0),
      // Spaces arrive as JSON: their types are the caller's claim, as for any deserialised value.
      singleObservationSpace: spaceFromJSON(first.observationSpace) as Space<O>,
      singleActionSpace: spaceFromJSON(first.actionSpace) as Space<A>,
      autoresetMode: mode,
      metadata: {
        ...rest,
        renderModes: (renderModes ?? render_modes ?? []) as string[],
        envId: first.envId,
        endpoints: conns.map((c) => c.endpoint),
      },
    });
  }

  /** Connects to every endpoint (in parallel) and checks they serve the same spaces. */
  static async connect<O = unknown, A = unknown>(
    endpoints: string | string[],
    opts: RemoteVectorEnvOptions = {},
  ): Promise<RemoteVectorEnv<O, A>> {
    const list = typeof endpoints === 'string' ? [endpoints] : endpoints;
    if (list.length === 0) throw new Error('RemoteVectorEnv: give at least one endpoint (tcp://host:port or ipc://path).');
    for (const e of list)
      if (!/^(tcp|ipc|inproc):\/\/.+/.test(e))
        throw new Error(`RemoteVectorEnv: bad endpoint '${e}'; expected tcp://host:port or ipc://path.`);
    const conns = list.map(
      (e) => new Connection(e, opts.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS, opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES),
    );
    try {
      await Promise.all(conns.map((c) => c.open()));
      return new RemoteVectorEnv<O, A>(conns, opts.reconnect ?? false);
    } catch (e) {
      conns.forEach((c) => c.close());
      throw e;
    }
  }

  protected async resetEnvs(seeds: (number | undefined)[], options?: Record<string, unknown>): Promise<VectorResetResult<O>> {
    const wireSeeds = seeds.map((s) => s ?? null);
    const replies = await Promise.all(
      this.conns.map((c, k) => {
        c.pendingObs = undefined;
        return c.request({ type: 'reset', seeds: this.slice(wireSeeds, k), options: options ?? null });
      }),
    );
    const parts = replies.map((r, k) => ({ obs: this.obsOf(r, k), info: plainInfo(r.info ?? {}) }));
    return { obs: this.join(parts.map((p) => p.obs)), info: mergeInfos(parts.map((p, k) => [p.info, this.conns[k].hello.numEnvs])) };
  }

  protected async stepEnvs(actions: ArrayLike<A>): Promise<VectorStepResult<O>> {
    const all = Array.from(actions);
    const space = this.singleActionSpace.toJSON();
    // Send to every server before awaiting any reply, so they step in parallel.
    const parts = await Promise.all(
      this.conns.map((c, k) => this.stepOne(c, k, batchValues(space, this.slice(all, k), 'action'))),
    );
    const rewards = new Float64Array(this.numEnvs);
    let o = 0;
    for (const p of parts) {
      rewards.set(p.rewards, o);
      o += p.rewards.length;
    }
    return {
      obs: this.join(parts.map((p) => p.obs)),
      rewards,
      terminated: parts.flatMap((p) => p.terminated),
      truncated: parts.flatMap((p) => p.truncated),
      info: mergeInfos(parts.map((p, k) => [p.info, this.conns[k].hello.numEnvs])),
    };
  }

  /** Ends this client's session on every server (they keep running, for the next client), closes the sockets. */
  protected async closeEnvs(): Promise<void> {
    await Promise.all(this.conns.map((c) => c.request({ type: 'close' }).catch(() => undefined)));
    this.conns.forEach((c) => c.close());
  }

  /** Round-trips a `ping` to every server; resolves with the slowest round trip in ms. */
  async ping(): Promise<number> {
    if (this.closed) throw new Error('RemoteVectorEnv: ping() called after close().');
    const t = Date.now();
    await Promise.all(this.conns.map((c) => c.request({ type: 'ping' })));
    return Date.now() - t;
  }

  private async stepOne(c: Connection, k: number, actions: unknown): Promise<ServerStep> {
    const n = c.hello.numEnvs;
    if (c.pendingObs) {
      const obs = c.pendingObs;
      c.pendingObs = undefined;
      return { obs, rewards: new Float64Array(n), terminated: falses(n), truncated: falses(n), info: {} };
    }
    try {
      const r = await c.request({ type: 'step', actions });
      return {
        obs: this.obsOf(r, k),
        rewards: numbers(r.rewards, n, 'rewards'),
        terminated: flags(r.terminated, n, 'terminated'),
        truncated: flags(r.truncated, n, 'truncated'),
        info: plainInfo(r.info ?? {}),
      };
    } catch (e) {
      const fault = e instanceof RemoteEnvError && ['Timeout', 'ProtocolError', 'StaleSession'].includes(e.remoteType ?? '');
      if (!this.reconnect || !fault) throw e;
      await c.open();
      const r = await c.request({ type: 'reset', seeds: new Array(n).fill(null), options: null });
      const obs = this.obsOf(r, k);
      c.pendingObs = obs;
      return {
        obs,
        rewards: new Float64Array(n),
        terminated: falses(n),
        truncated: new Array<boolean>(n).fill(true),
        info: { remote_restarted: new Array(n).fill(true), _remote_restarted: new Array(n).fill(true) },
      };
    }
  }

  /** Server k's observations, decoded straight into a batch. */
  private obsOf(r: Header, k: number): Batch {
    const c = this.conns[k];
    try {
      return batchFromWire(c.hello.observationSpace, r.obs, c.hello.numEnvs, 'obs');
    } catch (e) {
      throw c.garbage((e as Error).message);
    }
  }

  /** The servers' batches as one, checked against the observation space (which also gives it its type). */
  private join(parts: Batch[]): BatchOf<O> {
    const space = this.singleObservationSpace;
    let obs: Batch = parts[0];
    if (parts.length > 1) {
      obs = space.createBatch(this.numEnvs);
      let at = 0;
      parts.forEach((p, k) => {
        copyBatch(p, this.conns[k].hello.numEnvs, obs, at);
        at += this.conns[k].hello.numEnvs;
      });
    }
    if (!space.batchContains(obs, this.numEnvs))
      throw this.conns[0].garbage(`obs: not a batch of ${this.numEnvs} observations in ${space}`);
    return obs;
  }

  /** The entries of `all` (one per env) that belong to server k. */
  private slice<T>(all: T[], k: number): T[] {
    let start = 0;
    for (let j = 0; j < k; j++) start += this.conns[j].hello.numEnvs;
    return all.slice(start, start + this.conns[k].hello.numEnvs);
  }
}

/** Concatenates per-server infos (nested ones recursively); absent entries are null, absent masks false. */
function mergeInfos(parts: [VectorInfo, number][]): VectorInfo {
  const keys = new Set(parts.flatMap(([info]) => Object.keys(info)));
  const out: VectorInfo = {};
  for (const key of keys) {
    const nested = parts.some(([info]) => info[key] !== undefined && !Array.isArray(info[key]));
    if (nested) {
      out[key] = mergeInfos(parts.map(([info, n]) => [asNested(info[key]), n]));
      continue;
    }
    const fill = key.startsWith('_') ? false : null;
    out[key] = parts.flatMap(([info, n]) => (info[key] as unknown[] | undefined) ?? new Array<unknown>(n).fill(fill));
  }
  return out;
}

function asNested(v: unknown[] | VectorInfo | undefined): VectorInfo {
  return v === undefined || Array.isArray(v) ? {} : v;
}

function falses(n: number): boolean[] {
  return new Array<boolean>(n).fill(false);
}

