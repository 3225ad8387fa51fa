#!/usr/bin/env python3
"""Serves N copies of a Gymnasium-style env over ZeroMQ with the hqlt env protocol (docs/PROTOCOL.md).

    python3 hqlt_env_server.py --env CartPole-v1 --num-envs 8 --bind tcp://127.0.0.1:5555
    python3 hqlt_env_server.py --entry-point my_module:MyEnv --kwargs '{"size": 5}' --bind ipc:///tmp/env.sock

The envs are stepped as one vector env with next-step autoreset (Gymnasium 1.x's default). Any object with
Gymnasium's `reset(seed=, options=)`, `step(action)`, `observation_space` and `action_space` works; spaces are
recognised by class name and attributes (Discrete, Box, MultiDiscrete, MultiBinary, Tuple, Dict), so Gymnasium is
needed only for `--env` ids. Depends on pyzmq and numpy only. A bad request gets an `error` reply.

One client session at a time (docs/PROTOCOL.md, Sessions): another client's `hello` gets a `Busy` error while a
session lasts, and a client's `close` ends its session, not the server. The server runs until its owner stops it
(Ctrl-C or SIGTERM).
"""
import argparse
import importlib
import importlib.util
import json
import math
import os
import signal
import sys
import time

try:
    import numpy as np
    import zmq
except ImportError as missing:
    raise SystemExit(f'hqlt_env_server.py needs pyzmq and numpy ({missing}): pip install pyzmq numpy, '
                     'or apt-get install python3-zmq python3-numpy.') from None

PROTOCOL_VERSION = 2
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_SESSION_TIMEOUT_S = 300
PROBE_GRACE_S = 0.25  # a contested hello probes the owner twice this far apart: a just-killed client's drop may lag
DTYPES = ('float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool')


class ProtocolError(Exception):
    """A request that breaks the protocol."""


class Denied(Exception):
    """A request refused by the session rules; its `error_type` is the reply's."""

    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


# ---- framing: JSON header + raw little-endian frames -------------------------------------------------------------

def encode(header):
    """Header (may hold numpy arrays and non-finite floats) -> list of frames."""
    frames = []

    def walk(v):
        if isinstance(v, np.ndarray):
            if v.dtype.name not in DTYPES:
                if v.dtype.kind not in 'biuf':
                    return walk(v.tolist())
                v = v.astype(np.float64 if v.dtype.kind == 'f' else np.int64)
            a = np.ascontiguousarray(v, dtype=v.dtype.newbyteorder('<'))
            frames.append(a.tobytes())
            return {'$nd': len(frames), 'dtype': a.dtype.name, 'shape': list(a.shape)}
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            f = float(v)
            return f if math.isfinite(f) else {'$f': 'nan' if f != f else 'inf' if f > 0 else '-inf'}
        if isinstance(v, dict):
            return {str(k): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if isinstance(v, (bytes, bytearray)):
            return walk(np.frombuffer(bytes(v), np.uint8))
        return str(v)

    head = json.dumps(walk(header), allow_nan=False, separators=(',', ':'))
    return [head.encode('utf-8')] + frames


def decode(frames, max_bytes):
    """Frames -> header dict, with array references resolved to numpy arrays."""
    total = sum(len(f) for f in frames)
    if total > max_bytes:
        raise ProtocolError(f'message of {total} bytes exceeds the limit of {max_bytes} bytes (max_message_bytes).')
    if not frames:
        raise ProtocolError('empty message: expected a JSON header frame.')

    def hook(o):
        if '$f' in o:
            if o['$f'] not in ('inf', '-inf', 'nan'):
                raise ProtocolError(f'bad non-finite float {o["$f"]!r}: expected "inf", "-inf" or "nan".')
            return float(o['$f'])
        if '$nd' not in o:
            return o
        k, dtype, shape = o['$nd'], o.get('dtype'), o.get('shape')
        if type(k) is not int or not 1 <= k < len(frames):
            raise ProtocolError(f'array reference $nd={k!r} names no frame (message has {len(frames)}).')
        if dtype not in DTYPES:
            raise ProtocolError(f'unknown dtype {dtype!r}; known: {", ".join(DTYPES)}.')
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise ProtocolError(f'bad shape {shape!r}: expected non-negative integers.')
        dt = np.dtype(dtype).newbyteorder('<')
        need = math.prod(shape) * dt.itemsize
        if len(frames[k]) != need:
            raise ProtocolError(f'frame {k} has {len(frames[k])} bytes but a {dtype} array of shape {shape} needs {need}.')
        return np.frombuffer(frames[k], dt).reshape(shape).astype(np.dtype(dtype))

    try:
        header = json.loads(bytes(frames[0]).decode('utf-8'), object_hook=hook)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f'the header frame is not valid JSON ({e}).') from None
    if not isinstance(header, dict) or not isinstance(header.get('type'), str):
        raise ProtocolError('the header must be a JSON object with a string "type" field.')
    return header


# ---- spaces: Gymnasium-style objects <-> the JSON form of envs/spaces.ts, and batching per space ------------------

def space_to_json(s):
    kind = type(s).__name__
    if kind == 'Discrete':
        return {'type': 'Discrete', 'n': int(s.n), 'start': int(getattr(s, 'start', 0))}
    if kind == 'Box':
        def bounds(a):
            a = np.asarray(a, np.float64).ravel()
            enc = [('inf' if v > 0 else '-inf') if math.isinf(v) else float(v) for v in a]
            return enc[0] if a.size and (a == a[0]).all() else enc
        shape = [int(d) for d in s.shape]
        return {'type': 'Box', 'shape': shape, 'low': bounds(np.broadcast_to(s.low, shape)),
                'high': bounds(np.broadcast_to(s.high, shape))}
    if kind == 'MultiDiscrete':
        nvec = np.asarray(s.nvec).ravel()
        start = np.asarray(getattr(s, 'start', None) if getattr(s, 'start', None) is not None else 0)
        return {'type': 'MultiDiscrete', 'nvec': [int(v) for v in nvec],
                'start': [int(v) for v in np.broadcast_to(start, np.asarray(s.nvec).shape).ravel()]}
    if kind == 'MultiBinary':
        n = s.n
        return {'type': 'MultiBinary', 'n': int(n) if np.isscalar(n) else [int(d) for d in n]}
    if kind == 'Tuple':
        return {'type': 'Tuple', 'spaces': [space_to_json(x) for x in s.spaces]}
    if kind == 'Dict':
        return {'type': 'Dict', 'spaces': [[str(k), space_to_json(x)] for k, x in s.spaces.items()]}
    raise TypeError(f'unsupported space {s!r}: supported are Discrete, Box, MultiDiscrete, MultiBinary, Tuple, Dict.')


def leaf_shape(s):
    kind = type(s).__name__
    if kind == 'Discrete':
        return ()
    if kind == 'MultiDiscrete':
        return (int(np.asarray(s.nvec).size),)
    if kind == 'MultiBinary':
        return (int(s.n),) if np.isscalar(s.n) else tuple(int(d) for d in s.n)
    return tuple(int(d) for d in s.shape)


def batch(s, values):
    """One value per env -> the batched wire form (arrays with the env index first)."""
    kind = type(s).__name__
    if kind == 'Tuple':
        return [batch(sub, [v[i] for v in values]) for i, sub in enumerate(s.spaces)]
    if kind == 'Dict':
        return {str(k): batch(sub, [v[k] for v in values]) for k, sub in s.spaces.items()}
    dtype = {'Discrete': np.int64, 'MultiDiscrete': np.int64, 'MultiBinary': np.int8}.get(
        kind, getattr(s, 'dtype', None) or np.float32)
    shape = leaf_shape(s)
    return np.stack([np.asarray(v, dtype).reshape(shape) for v in values])


def unbatch(s, wire, n, what):
    """The batched wire form -> one value per env, checked against the space's structure."""
    kind = type(s).__name__
    if kind == 'Tuple':
        if not isinstance(wire, list) or len(wire) != len(s.spaces):
            raise ProtocolError(f'{what}: expected a list of {len(s.spaces)} batches for a Tuple space.')
        parts = [unbatch(sub, w, n, f'{what}[{i}]') for i, (sub, w) in enumerate(zip(s.spaces, wire))]
        return [tuple(p[i] for p in parts) for i in range(n)]
    if kind == 'Dict':
        if not isinstance(wire, dict):
            raise ProtocolError(f'{what}: expected an object of batches for a Dict space.')
        parts = {k: unbatch(sub, wire.get(str(k)), n, f'{what}.{k}') for k, sub in s.spaces.items()}
        return [{k: p[i] for k, p in parts.items()} for i in range(n)]
    shape = (n,) + leaf_shape(s)
    if not isinstance(wire, np.ndarray) or wire.shape != shape:
        got = f'shape {list(wire.shape)}' if isinstance(wire, np.ndarray) else repr(wire)[:60]
        raise ProtocolError(f'{what}: expected an array of shape {list(shape)}, got {got}.')
    if kind == 'Box':
        return list(wire.astype(getattr(s, 'dtype', None) or np.float32))
    if wire.dtype.kind not in 'biu':
        raise ProtocolError(f'{what}: expected integers for a {kind} space, got {wire.dtype.name}.')
    if kind == 'Discrete':
        start = int(getattr(s, 'start', 0))
        bad = (wire < start) | (wire >= start + int(s.n))
        if bad.any():
            raise ProtocolError(f'{what}: {int(wire[bad][0])} is outside {s!r}.')
        return [int(v) for v in wire]
    if kind == 'MultiDiscrete':
        nvec = np.asarray(s.nvec).ravel()
        start = np.broadcast_to(np.asarray(getattr(s, 'start', None) if getattr(s, 'start', None) is not None else 0),
                                np.asarray(s.nvec).shape).ravel()
        if ((wire < start) | (wire >= start + nvec)).any():
            raise ProtocolError(f'{what}: values outside {s!r}.')
        return [row.astype(np.int64).reshape(np.asarray(s.nvec).shape) for row in wire]
    if ((wire != 0) & (wire != 1)).any():
        raise ProtocolError(f'{what}: MultiBinary values must be 0 or 1.')
    return [row.astype(np.int8) for row in wire]


# ---- the vector of envs ------------------------------------------------------------------------------------------

def merge_infos(infos):
    """Per-env info dicts -> Gymnasium's vector form: info[key][i] and the mask info['_' + key][i], dicts nested."""
    out = {}
    for i, info in enumerate(infos):
        add_info(out, info or {}, i, len(infos))
    return out


def add_info(out, info, i, n):
    for k, v in info.items():
        k = str(k)
        if isinstance(v, dict):
            sub = out.get(k)
            out[k] = add_info(sub if isinstance(sub, dict) else {}, v, i, n)
        else:
            if not isinstance(out.get(k), list):
                out[k] = [None] * n
            out[k][i] = v
        out.setdefault('_' + k, [False] * n)[i] = True
    return out


class VectorHost:
    """N envs stepped as a vector with next-step autoreset, as Gymnasium 1.x's SyncVectorEnv."""

    def __init__(self, make_env, num_envs):
        self.envs = [make_env() for _ in range(num_envs)]
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space
        self.obs_json = space_to_json(self.observation_space)
        self.action_json = space_to_json(self.action_space)
        self.autoreset = [False] * num_envs
        self.started = False

    def reset(self, seeds, options):
        n = len(self.envs)
        if seeds is None:
            seeds = [None] * n
        if not isinstance(seeds, list) or len(seeds) != n or not all(s is None or type(s) is int for s in seeds):
            raise ProtocolError(f'reset: seeds must be a list of {n} integers or nulls (one per env).')
        if options is not None and not isinstance(options, dict):
            raise ProtocolError('reset: options must be an object or null.')
        results = [env.reset(seed=s, options=options) for env, s in zip(self.envs, seeds)]
        self.autoreset = [False] * n
        self.started = True
        return {'obs': batch(self.observation_space, [r[0] for r in results]),
                'info': merge_infos([r[1] for r in results])}

    def step(self, wire_actions):
        if not self.started:
            raise RuntimeError('step() called before reset(); call reset() first.')
        n = len(self.envs)
        actions = unbatch(self.action_space, wire_actions, n, 'actions')
        obs, rewards = [], np.zeros(n, np.float64)
        terminated, truncated = np.zeros(n, np.bool_), np.zeros(n, np.bool_)
        infos = []
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            if self.autoreset[i]:
                o, info = env.reset()
            else:
                o, r, te, tr, info = env.step(action)
                rewards[i], terminated[i], truncated[i] = r, te, tr
            obs.append(o)
            infos.append(info)
        self.autoreset = list(terminated | truncated)
        return {'obs': batch(self.observation_space, obs), 'rewards': rewards, 'terminated': terminated,
                'truncated': truncated, 'info': merge_infos(infos)}

    def close(self):
        for env in self.envs:
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


# ---- the server --------------------------------------------------------------------------------------------------

class Session:
    """The client being served: its session id, its latest connection (ROUTER routing id), when it last asked."""

    def __init__(self, peer):
        self.id, self.peer, self.last_seen = os.urandom(8).hex(), peer, time.monotonic()


class Server:
    def __init__(self, host, env_id, max_bytes, session_timeout=DEFAULT_SESSION_TIMEOUT_S):
        self.host, self.env_id, self.max_bytes, self.session_timeout = host, env_id, max_bytes, session_timeout
        self.owner = None
        self.sock = None

    def handle(self, peer, frames):
        """Frames of one request from connection `peer` -> reply frames. Never raises."""
        req_id, req_type = None, 'unknown'
        try:
            req = decode(frames, self.max_bytes)
            req_id, req_type = req.get('id'), req['type']
            if req.get('v') != PROTOCOL_VERSION:
                return self.error(req_id, req_type, 'ProtocolVersionMismatch', version_message(req.get('v')))
            if req_type == 'hello':
                self.open_session(peer, req.get('session'))
            else:
                self.check_session(peer, req)
            body = self.dispatch(req)
            if req_type == 'close':
                self.end_session('the client closed it')
            return encode({'v': PROTOCOL_VERSION, 'id': req_id, **body})
        except Denied as e:
            return self.error(req_id, req_type, e.error_type, str(e))
        except Exception as e:  # noqa: BLE001 - every failure becomes an error reply
            return self.error(req_id, req_type, type(e).__name__, str(e))

    def open_session(self, peer, previous):
        """A hello: starts a session, unless another live client holds one (Busy)."""
        owner = self.owner
        # The owner itself may say hello again: on the same connection, or on a new one with the session it holds.
        if owner and previous != owner.id and peer != owner.peer:
            idle = time.monotonic() - owner.last_seen
            if idle < self.session_timeout and self.connected(owner.peer):
                raise Denied('Busy', busy_message(idle, self.session_timeout))
            self.end_session('its client is gone' if idle < self.session_timeout
                             else f'its client was silent for {idle:.0f} s')
        elif owner:
            self.end_session('its client reconnected')
        self.owner = Session(peer)
        self.host.started = False  # each session starts with a reset, never on the previous client's episodes
        log(f'session {self.owner.id} started')

    def check_session(self, peer, req):
        """Any request but hello: only the session's owner acts on the envs (a sessionless ping is fine)."""
        session = req.get('session')
        if session is None:
            if req['type'] == 'ping':
                return
            raise Denied('NoSession', f"'{req['type']}' needs a session: send hello first and put its session in "
                                      'every request.')
        if self.owner is None or session != self.owner.id:
            raise Denied('StaleSession', STALE_SESSION)
        self.owner.peer, self.owner.last_seen = peer, time.monotonic()  # a reconnected socket gets a new routing id

    def end_session(self, why):
        if self.owner is not None:
            log(f'session {self.owner.id} ended: {why}')
            self.owner = None

    def connected(self, peer):
        """Whether a client's connection is still up: with ROUTER_MANDATORY, a `probe` message (clients ignore it)
        to a connection that is gone fails at once. A connection dropped a moment ago may still look up, so a
        live-looking one is probed once more."""
        probe = encode({'v': PROTOCOL_VERSION, 'id': None, 'type': 'probe'})
        for attempt in range(2):
            if attempt:
                time.sleep(PROBE_GRACE_S)
            try:
                self.sock.send_multipart([peer] + probe, flags=zmq.NOBLOCK)
            except zmq.ZMQError as e:
                if e.errno == zmq.EHOSTUNREACH:
                    return False  # anything else (a full queue): the connection is there
        return True

    def dispatch(self, req):
        host, t = self.host, req['type']
        if t == 'hello':
            meta = dict(getattr(host.envs[0], 'metadata', None) or {})
            meta['autoreset_mode'] = 'next-step'
            return {'type': 'hello', 'server': 'hqlt-py', 'env_id': self.env_id, 'num_envs': len(host.envs),
                    'observation_space': host.obs_json, 'action_space': host.action_json, 'metadata': meta,
                    'max_message_bytes': self.max_bytes, 'session': self.owner.id}
        if t == 'ping':
            return {'type': 'pong'}
        if t == 'reset':
            return {'type': 'reset', **host.reset(req.get('seeds'), req.get('options'))}
        if t == 'step':
            return {'type': 'step', **host.step(req.get('actions'))}
        if t == 'close':
            return {'type': 'close'}
        raise ProtocolError(f"unknown request type '{t}'; expected hello, reset, step, close or ping.")

    @staticmethod
    def error(req_id, req_type, error_type, message):
        return encode({'v': PROTOCOL_VERSION, 'id': req_id, 'type': 'error', 'request': req_type,
                       'error_type': error_type, 'message': message})

    def serve(self, bind):
        """Serves until its owner stops it: Ctrl-C or SIGTERM (which raise KeyboardInterrupt / SystemExit here)."""
        ctx = zmq.Context.instance()
        self.sock = sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # sends to a connection that is gone fail: see connected()
        sock.bind(bind)
        log(f'listening on {sock.getsockopt_string(zmq.LAST_ENDPOINT)} (Ctrl-C or SIGTERM stops it)')
        try:
            while True:
                # Wake up regularly: a signal that lands on another thread (numpy's BLAS pool does not block them)
                # runs its Python handler only once this thread is back in Python, never while blocked in recv.
                if not sock.poll(200):
                    continue
                identity, *frames = sock.recv_multipart()
                # A REQ client puts an empty delimiter frame first; keep it for the reply.
                envelope = [identity] + ([frames.pop(0)] if frames and len(frames[0]) == 0 else [])
                try:
                    sock.send_multipart(envelope + self.handle(identity, frames), flags=zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # the client left
        finally:
            self.host.close()
            sock.close(0)
            log('stopped')


def log(message):
    print(f'hqlt-env-server: {message}', flush=True)


def busy_message(idle, timeout):
    return (f"another client holds this server's session (its last request was {idle:.0f} s ago). A server serves "
            'one client at a time, so that no two share its envs. Wait for that client to finish, or serve more envs '
            'at another endpoint. A client that is gone without closing loses its session once its connection '
            f'drops, or after {timeout:.0f} s of silence.')


STALE_SESSION = ("this request's session has ended: the server restarted since your hello, or gave the session to "
                 'another client after yours went silent past its session timeout. Reconnect (send hello) and reset.')


def version_message(theirs):
    return (f'protocol version mismatch: the peer speaks hqlt env protocol v{json.dumps(theirs)}, this side speaks '
            f'v{PROTOCOL_VERSION}. Use matching hqlt versions (and hqlt_env_server.py from the same release).')


def load_entry_point(spec):
    """`module:Attr` or `path/to/file.py:Attr` -> the callable."""
    module_name, sep, attr = spec.rpartition(':')
    if not sep or not module_name or not attr:
        raise SystemExit(f"--entry-point must be 'module:Attr' or 'path/file.py:Attr', got {spec!r}.")
    if module_name.endswith('.py'):
        path = os.path.abspath(module_name)
        sys.path.insert(0, os.path.dirname(path))
        mod_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
        if mod_spec is None or mod_spec.loader is None:
            raise SystemExit(f'--entry-point: cannot load {path}.')
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f'--entry-point: {module_name} has no attribute {attr!r}.') from None


def main(argv=None):
    p = argparse.ArgumentParser(description='Serve N copies of a Gymnasium-style env over ZeroMQ (hqlt protocol).')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--env', help='a Gymnasium id, e.g. CartPole-v1 (needs gymnasium)')
    src.add_argument('--entry-point', help="'module:Class' or 'path/file.py:Class' building one env")
    p.add_argument('--kwargs', default='{}', help='JSON object of keyword arguments for the env')
    p.add_argument('--num-envs', type=int, default=1)
    p.add_argument('--bind', default='tcp://127.0.0.1:5555',
                   help='ZeroMQ endpoint (default loopback; tcp://127.0.0.1:* picks a free port)')
    p.add_argument('--max-message-bytes', type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    p.add_argument('--session-timeout', type=float, default=DEFAULT_SESSION_TIMEOUT_S,
                   help='seconds a silent client keeps its session against a new client (a client whose connection '
                        'drops loses it at once)')
    args = p.parse_args(argv)
    if args.num_envs < 1:
        p.error('--num-envs must be at least 1.')
    if args.session_timeout <= 0:
        p.error('--session-timeout must be positive.')
    try:
        kwargs = json.loads(args.kwargs)
        assert isinstance(kwargs, dict)
    except (ValueError, AssertionError):
        p.error(f'--kwargs must be a JSON object, got {args.kwargs!r}.')
    if args.env:
        try:
            import gymnasium
        except ImportError:
            raise SystemExit('--env needs gymnasium (pip install gymnasium); or use --entry-point module:Class.')
        def make_env():
            return gymnasium.make(args.env, **kwargs)
        env_id = args.env
    else:
        factory = load_entry_point(args.entry_point)
        def make_env():
            return factory(**kwargs)
        env_id = args.entry_point
    Server(VectorHost(make_env, args.num_envs), env_id, args.max_message_bytes, args.session_timeout).serve(args.bind)


if __name__ == '__main__':
    # SIGTERM stops the server as Ctrl-C does: serve() closes the envs and the socket on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        main()
    except KeyboardInterrupt:
        pass
