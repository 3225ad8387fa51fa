/**
 * Serves a vector env over ZeroMQ (ROUTER socket) with the hqlt env protocol, so that `RemoteVectorEnv` elsewhere
 * acts on it as on a local vector env. Requests are handled one at a time, in arrival order; any bad request gets
 * an `error` reply and the server keeps serving.
 */
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import type { EnvKwargs } from '../registry.js';
import { SyncVectorEnv, type AutoresetMode, type VectorEnv, type VectorResetOptions } from '../vector.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  batchValues,
  decodeMessage,
  encodeMessage,
  unbatchValues,
  NDArray,
  type Header,
} from './protocol.js';

export interface EnvServerOptions {
  /** Requests larger than this (all frames together) are rejected with an error reply. */
  maxMessageBytes?: number;
  /** The id reported in `hello` (defaults to the env's metadata or 'unknown'). */
  envId?: string;
}

/** A vector env bound to a ZeroMQ endpoint. */
export class EnvServer {
  private readonly socket = new zmq.Router({ linger: 0 });
  private stopped = false;
  private readonly maxBytes: number;
  private readonly envId: string;
  /** Random per server process: requests from before a restart are told so instead of acting on fresh envs. */
  private readonly session = randomBytes(8).toString('hex');

  private constructor(
    readonly env: VectorEnv,
    opts: EnvServerOptions,
  ) {
    this.maxBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.envId = opts.envId ?? String(env.metadata.envId ?? 'unknown');
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

  /** Serves requests until a client sends `close` or `stop()` is called. */
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
      const { reply, closing } = await this.handle(frames);
      try {
        await this.socket.send([...envelope, ...reply]);
      } catch {
        // The client left; nothing to tell it.
      }
      if (closing) await this.stop();
    }
  }

  /** Stops serving and closes the env. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.socket.close();
    await this.env.close();
  }

  private async handle(frames: Buffer[]): Promise<{ reply: Buffer[]; closing: boolean }> {
    let id: unknown = null;
    let type = 'unknown';
    try {
      const req = decodeMessage(frames, this.maxBytes);
      id = req.id ?? null;
      type = req.type;
      if (req.v !== PROTOCOL_VERSION)
        return {
          reply: errorReply(id, type, 'ProtocolVersionMismatch', versionMessage(req.v)),
          closing: false,
        };
      if (req.session !== undefined && req.session !== this.session)
        return { reply: errorReply(id, type, 'StaleSession', STALE_SESSION), closing: false };
      const body = await this.dispatch(req);
      return { reply: encodeMessage({ v: PROTOCOL_VERSION, id, ...body }), closing: req.type === 'close' };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      return { reply: errorReply(id, type, err.name, err.message), closing: false };
    }
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
          session: this.session,
        };
      case 'ping':
        return { type: 'pong' };
      case 'reset': {
        const r = await env.reset(resetOptions(req, n));
        return { type: 'reset', obs: batchValues(env.singleObservationSpace.toJSON(), r.obs, 'obs'), info: r.info };
      }
      case 'step': {
        const actions = unbatchValues(env.singleActionSpace.toJSON(), req.actions, n, 'actions');
        const r = await env.step(actions);
        return {
          type: 'step',
          obs: batchValues(env.singleObservationSpace.toJSON(), r.obs, 'obs'),
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

function errorReply(id: unknown, request: string, errorType: string, message: string): Buffer[] {
  return encodeMessage({ v: PROTOCOL_VERSION, id, type: 'error', request, error_type: errorType, message });
}

const STALE_SESSION =
  'this request belongs to an earlier session: the server was restarted since your hello. Reconnect (send hello) and reset.';

/** The message for a peer speaking another protocol version (shared by client and server). */
export function versionMessage(theirs: unknown): string {
  return (
    `protocol version mismatch: the peer speaks hqlt env protocol v${JSON.stringify(theirs)}, this side speaks ` +
    `v${PROTOCOL_VERSION}. Use matching hqlt versions (and envs/remote/hqlt_env_server.py from the same release).`
  );
}
