/**
 * Serves a vector env over ZeroMQ (ROUTER socket) with the hqlt env protocol, so that `RemoteVectorEnv` elsewhere
 * acts on it as on a local vector env. Requests are handled one at a time, in arrival order; any bad request gets
 * an `error` reply and the server keeps serving.
 *
 * One client session at a time (docs/PROTOCOL.md, Sessions): `hello` opens one, another client's `hello` gets a
 * `Busy` error while it lasts, and `close` ends it without stopping the server; only its owner stops a server
 * (`stop()`, or a signal to `hqlt serve`).
 */
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import type { EnvKwargs } from '../registry.js';
import { SyncVectorEnv, type AutoresetMode, type VectorEnv, type VectorResetOptions } from '../vector.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  batchToWire,
  decodeMessage,
  encodeMessage,
  unbatchValues,
  NDArray,
  type Header,
} from './protocol.js';

/** How long a silent client keeps its session against a newcomer, unless its connection is seen to drop. */
export const DEFAULT_SESSION_TIMEOUT_MS = 300_000;
/** A contested `hello` probes the owner's connection twice this far apart: a just-killed client's drop may lag. */
const PROBE_GRACE_MS = 250;

export interface EnvServerOptions {
  /** Requests larger than this (all frames together) are rejected with an error reply. */
  maxMessageBytes?: number;
  /** The id reported in `hello` (defaults to the env's metadata or 'unknown'). */
  envId?: string;
  /** A client silent this long loses its session to the next client's `hello` (default 300 s). */
  sessionTimeoutMs?: number;
  /** Told when a session starts or ends, in words (`hqlt serve` prints it). */
  onSession?: (event: string) => void;
}

/** The client being served: its session id, its latest connection (ROUTER routing id) and when it last asked. */
interface Session {
  id: string;
  peer: Buffer;
  lastSeen: number;
  /** Each session starts with a `reset`: a step before it would act on the previous client's episodes. */
  hasReset: boolean;
}

/** A vector env bound to a ZeroMQ endpoint. */
export class EnvServer {
  // mandatory: sending to a connection that is gone fails (EHOSTUNREACH), which tells a crashed client from an idle
  // one; sendTimeout 0: a reply that cannot be queued at once is dropped instead of stalling every other client.
  private readonly socket = new zmq.Router({ linger: 0, mandatory: true, sendTimeout: 0 });
  private stopped = false;
  private readonly maxBytes: number;
  private readonly envId: string;
  private readonly sessionTimeoutMs: number;
  private readonly onSession: (event: string) => void;
  private owner?: Session;

  private constructor(
    readonly env: VectorEnv,
    opts: EnvServerOptions,
  ) {
    this.maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.envId = opts.envId ?? String(env.metadata.envId ?? 'unknown');
    this.sessionTimeoutMs = opts.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    this.onSession = opts.onSession ?? (() => undefined);
  }

  /** Binds `env` to `endpoint` (`tcp://127.0.0.1:5555`, `tcp://127.0.0.1:*` for a free port, `ipc://...`). */
  static async bind(env: VectorEnv, endpoint: string, opts: EnvServerOptions = {}): Promise<EnvServer> {
    const server = new EnvServer(env, opts);
    try {
      await server.socket.bind(endpoint);
    } catch (e) {
      server.socket.close();
      throw new Error(`Cannot bind the env server to ${endpoint}: ${(e as Error).message}.`);
    }
    return server;
  }

  /** The bound endpoint, with the actual port when bound to `*`. */
  get endpoint(): string {
    return this.socket.lastEndpoint ?? '';
  }

  /** Serves requests, one client session at a time, until `stop()` is called. */
  async serve(): Promise<void> {
    while (!this.stopped) {
      let msg: Buffer[];
      try {
        msg = await this.socket.receive();
      } catch (e) {
        if (this.stopped) break;
        throw e;
      }
      const [identity, ...frames] = msg;
      // A REQ client puts an empty delimiter frame first; keep it for the reply.
      const envelope = frames.length > 0 && frames[0].length === 0 ? [identity, frames.shift()!] : [identity];
      const reply = await this.handle(identity, frames);
      try {
        await this.socket.send([...envelope, ...reply]);
      } catch {
        // The client left; nothing to tell it.
      }
    }
  }

  /** Stops serving and closes the env. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.socket.close();
    await this.env.close();
  }

  private async handle(peer: Buffer, frames: Buffer[]): Promise<Buffer[]> {
    let id: unknown = null;
    let type = 'unknown';
    try {
      const req = decodeMessage(frames, this.maxBytes);
      id = req.id ?? null;
      type = req.type;
      if (req.v !== PROTOCOL_VERSION) return errorReply(id, type, 'ProtocolVersionMismatch', versionMessage(req.v));
      const denied = type === 'hello' ? await this.openSession(peer, req.session) : this.checkSession(peer, req);
      if (denied) return errorReply(id, type, denied.type, denied.message);
      const body = await this.dispatch(req);
      if (type === 'reset') this.owner!.hasReset = true;
      if (type === 'close') this.endSession('the client closed it');
      return encodeMessage({ v: PROTOCOL_VERSION, id, ...body });
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      return errorReply(id, type, err.name, err.message);
    }
  }

  /** A `hello`: starts a session, unless another live client holds one (`Busy`). */
  private async openSession(peer: Buffer, previous: unknown): Promise<Denial | undefined> {
    const owner = this.owner;
    // The owner itself may say hello again: on the same connection, or on a new one with the session it holds.
    if (owner && previous !== owner.id && !peer.equals(owner.peer)) {
      const idle = Date.now() - owner.lastSeen;
      if (idle < this.sessionTimeoutMs && (await this.connected(owner.peer)))
        return { type: 'Busy', message: busyMessage(idle, this.sessionTimeoutMs) };
      this.endSession(idle < this.sessionTimeoutMs ? 'its client is gone' : `its client was silent for ${secs(idle)}`);
    } else if (owner) this.endSession('its client reconnected');
    this.owner = { id: randomBytes(8).toString('hex'), peer, lastSeen: Date.now(), hasReset: false };
    this.onSession(`session ${this.owner.id} started`);
    return undefined;
  }

  /** Any request but `hello`: only the session's owner acts on the envs (a sessionless `ping` is fine). */
  private checkSession(peer: Buffer, req: Header): Denial | undefined {
    if (req.session === undefined || req.session === null) {
      if (req.type === 'ping') return undefined;
      return { type: 'NoSession', message: `'${req.type}' needs a session: send hello first and put its session in every request.` };
    }
    const owner = this.owner;
    if (!owner || req.session !== owner.id) return { type: 'StaleSession', message: STALE_SESSION };
    owner.peer = peer; // a reconnected socket gets a new routing id
    owner.lastSeen = Date.now();
    if (req.type === 'step' && !owner.hasReset)
      return { type: 'RuntimeError', message: 'step before reset in this session: call reset first.' };
    return undefined;
  }

  private endSession(why: string): void {
    if (!this.owner) return;
    this.onSession(`session ${this.owner.id} ended: ${why}`);
    this.owner = undefined;
  }

  /**
   * Whether a client's connection is still up: a `probe` message (clients ignore it) to a connection that is gone
   * fails at once. A connection dropped a moment ago may still look up, so a live-looking one is probed once more.
   */
  private async connected(peer: Buffer): Promise<boolean> {
    const probe = encodeMessage({ v: PROTOCOL_VERSION, id: null, type: 'probe' });
    for (let attempt = 0; attempt < 2; attempt++) {
      if (attempt > 0) await new Promise((res) => setTimeout(res, PROBE_GRACE_MS));
      try {
        await this.socket.send([peer, ...probe]);
      } catch (e) {
        if ((e as { code?: string }).code === 'EHOSTUNREACH') return false;
        // Anything else (a full queue): the connection is there.
      }
    }
    return true;
  }

  private async dispatch(req: Header): Promise<Header> {
    const env = this.env;
    const n = env.numEnvs;
    switch (req.type) {
      case 'hello':
        return {
          type: 'hello',
          server: 'hqlt-ts',
          env_id: this.envId,
          num_envs: n,
          observation_space: env.singleObservationSpace.toJSON(),
          action_space: env.singleActionSpace.toJSON(),
          metadata: { ...env.metadata, autoreset_mode: env.autoresetMode },
          max_message_bytes: this.maxBytes,
          session: this.owner!.id,
        };
      case 'ping':
        return { type: 'pong' };
      case 'reset': {
        const r = await env.reset(resetOptions(req, n));
        return { type: 'reset', obs: batchToWire(env.singleObservationSpace.toJSON(), r.obs, n), info: r.info };
      }
      case 'step': {
        const actions = unbatchValues(env.singleActionSpace.toJSON(), req.actions, n, 'actions');
        const r = await env.step(actions);
        return {
          type: 'step',
          obs: batchToWire(env.singleObservationSpace.toJSON(), r.obs, n),
          rewards: new NDArray('float64', [n], r.rewards),
          terminated: new NDArray('bool', [n], Uint8Array.from(r.terminated, Number)),
          truncated: new NDArray('bool', [n], Uint8Array.from(r.truncated, Number)),
          info: r.info,
        };
      }
      case 'close':
        return { type: 'close' };
      default:
        throw new ProtocolError(`unknown request type '${req.type}'; expected hello, reset, step, close or ping.`);
    }
  }
}

export interface ServeRegisteredOptions extends EnvServerOptions {
  /** A registered env id (registered by the time this is called). */
  id: string;
  numEnvs: number;
  kwargs?: EnvKwargs;
  autoresetMode?: AutoresetMode;
  /** Endpoint to bind, e.g. `tcp://127.0.0.1:5555` (loopback unless told otherwise). */
  bind: string;
}

/** Binds N copies of a registered env (a SyncVectorEnv) to an endpoint; call `serve()` on the result. */
export function serveRegisteredEnv(opts: ServeRegisteredOptions): Promise<EnvServer> {
  const env = new SyncVectorEnv({
    id: opts.id,
    kwargs: opts.kwargs,
    numEnvs: opts.numEnvs,
    autoresetMode: opts.autoresetMode,
  });
  return EnvServer.bind(env, opts.bind, { envId: opts.id, ...opts });
}

function resetOptions(req: Header, n: number): VectorResetOptions {
  const { seeds, options } = req;
  const out: VectorResetOptions = {};
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object' || Array.isArray(options)) throw new ProtocolError('reset: options must be an object.');
    out.options = options as Record<string, unknown>;
  }
  if (seeds === undefined || seeds === null) return out;
  if (!Array.isArray(seeds) || seeds.length !== n)
    throw new ProtocolError(`reset: seeds must be a list of ${n} integers or nulls (one per env).`);
  if (seeds.every((s) => s === null)) return out;
  if (!seeds.every((s) => Number.isInteger(s)))
    throw new ProtocolError('reset: this server needs either an integer seed for every env or none at all.');
  out.seed = seeds as number[];
  return out;
}

interface Denial {
  type: 'Busy' | 'NoSession' | 'StaleSession' | 'RuntimeError';
  message: string;
}

function secs(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

function busyMessage(idleMs: number, timeoutMs: number): string {
  return (
    `another client holds this server's session (its last request was ${secs(idleMs)} ago). A server serves one ` +
    'client at a time, so that no two share its envs. Wait for that client to finish, or serve more envs at another ' +
    `endpoint. A client that is gone without closing loses its session once its connection drops, or after ` +
    `${secs(timeoutMs)} of silence.`
  );
}

function errorReply(id: unknown, request: string, errorType: string, message: string): Buffer[] {
  return encodeMessage({ v: PROTOCOL_VERSION, id, type: 'error', request, error_type: errorType, message });
}

const STALE_SESSION =
  "this request's session has ended: the server restarted since your hello, or gave the session to another client " +
  'after yours went silent past its session timeout. Reconnect (send hello) and reset.';

/** The message for a peer speaking another protocol version (shared by client and server). */
export function versionMessage(theirs: unknown): string {
  return (
    `protocol version mismatch: the peer speaks hqlt env protocol v${JSON.stringify(theirs)}, this side speaks ` +
    `v${PROTOCOL_VERSION}. Use matching hqlt versions (and envs/remote/hqlt_env_server.py from the same release).`
  );
}
