/** The Python server (envs/remote/hqlt_env_server.py) through RemoteVectorEnv: spaces, data, faults, fuzzing. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import { PROTOCOL_VERSION, RemoteVectorEnv, RemoteEnvError, makeRemoteVectorEnv } from '../envs/remote/index.js';
import { batchOf, unbatch, type Batch } from '../envs/spaces.js';
import {
  RawClient,
  describePython,
  describeSessions,
  echoSpace,
  ipcEndpoint,
  malformedRequests,
  rawRequest,
  header,
  startPythonEcho,
  type ChildServer,
} from './fixtures/remote-helpers.js';

const servers: ChildServer[] = [];
const start = async (...args: Parameters<typeof startPythonEcho>) => {
  const s = await startPythonEcho(...args);
  servers.push(s);
  return s;
};
afterAll(() => servers.forEach((s) => s.kill()));

describePython('Python env server', () => {
  let a: ChildServer;
  let b: ChildServer;
  let env: RemoteVectorEnv<Record<string, unknown>, Record<string, unknown>>;
  beforeAll(async () => {
    [a, b] = await Promise.all([start(3), start(2, { bind: ipcEndpoint() })]);
    env = await RemoteVectorEnv.connect([a.endpoint, b.endpoint], { timeoutMs: 10_000 });
  });
  afterAll(() => env?.close());
  const perEnv = (obs: { [key: string]: Batch }) => unbatch(env.singleObservationSpace, obs);

  it('describes its envs: count, every space type converted to our JSON form, autoreset mode', () => {
    expect(env.numEnvs).toBe(5);
    expect(env.singleObservationSpace.toJSON()).toEqual(echoSpace().toJSON());
    expect(env.singleActionSpace.equals(echoSpace())).toBe(true);
    expect(env.autoresetMode).toBe('next-step');
    expect(env.metadata.renderModes).toEqual([]);
  });

  it('round-trips values of every space type exactly, concatenating both servers', async () => {
    const reset = await env.reset({ seed: 10 });
    // Observations arrive batched (one typed array per leaf of the space), decoded straight from the frames.
    expect(env.singleObservationSpace.batchContains(reset.obs, 5)).toBe(true);
    const rng = seedrandom('actions');
    const actions = Array.from({ length: 5 }, () => env.singleActionSpace.sample(rng));
    const r = await env.step(actions);
    expect(r.obs).toEqual(batchOf(env.singleObservationSpace, actions)); // the env echoes each action back
    expect(perEnv(r.obs)).toEqual(actions);
    expect(Array.from(r.rewards)).toEqual([1.5, 1.5, 1.5, 1.5, 1.5]);
    expect(r.info.t).toEqual([1, 1, 1, 1, 1]);
    expect(r.info.arr).toEqual(new Array(5).fill(Float32Array.from([0, 1, 2])));
    expect(r.info.episode).toEqual({ l: [1, 1, 1, 1, 1], _l: new Array(5).fill(true) });
    expect(r.info.big).toEqual(new Array(5).fill(Infinity));
  });

  it('is deterministic under seeds (env i gets seed + i across servers)', async () => {
    const first = await env.reset({ seed: 3 });
    const again = await env.reset({ seed: 3 });
    expect(again.obs).toEqual(first.obs);
    const shifted = await env.reset({ seed: [4, 5, 6, 7, 8] });
    expect(perEnv(shifted.obs).slice(0, 4)).toEqual(perEnv(first.obs).slice(1));
    expect(first.info.seeded).toEqual(new Array(5).fill(true));
  });

  it('autoresets on the step after an episode ends (next-step mode)', async () => {
    await env.reset({ seed: 0 });
    const acts = Array.from({ length: 5 }, () => env.singleActionSpace.sample(seedrandom('x')));
    for (let t = 1; t <= 3; t++) {
      const r = await env.step(acts);
      expect(r.terminated.every((d) => d === (t === 3))).toBe(true);
    }
    const r = await env.step(acts);
    expect(Array.from(r.rewards)).toEqual([0, 0, 0, 0, 0]);
    expect(r.terminated.some(Boolean)).toBe(false);
    expect(perEnv(r.obs)).not.toEqual(acts); // a fresh episode's first obs, not the echo
  });

  it('reports remote exceptions with their type and message', async () => {
    await env.reset({ seed: 0 });
    const bad = { ...echoSpace().sample(seedrandom('y')), disc: 7 } as Record<string, unknown>;
    // The client checks actions against the space first, as a local vector env does...
    await expect(env.step(new Array(5).fill(bad))).rejects.toThrow(/not in the action space/);
    // ...and the server checks them too, for clients that don't (the fuzzing below sends it bad actions).
  });

  it('survives malformed, fuzzed and oversized requests, then still serves', async () => {
    const small = await start(2, { extra: ['--max-message-bytes', String(1 << 20)] });
    const raw = new RawClient(small.endpoint);
    const { session } = await raw.request({ type: 'hello' });
    await raw.request({ type: 'reset', session });
    for (const { name, frames } of malformedRequests(seedrandom('fuzz'), 1 << 20, String(session))) {
      const reply = await rawRequest(small.endpoint, frames);
      expect(reply.type, name).toBe('error');
      expect(typeof reply.message, name).toBe('string');
      if (name === 'step with wrong actions') {
        expect(reply).toMatchObject({ request: 'step', error_type: 'ProtocolError' });
        expect(reply.message).toMatch(/actions: expected an object of batches for a Dict space/);
      }
    }
    await raw.request({ type: 'close', session });
    raw.close();
    const version = await rawRequest(small.endpoint, [header({ v: 99, type: 'hello' })]);
    expect(version.error_type).toBe('ProtocolVersionMismatch');
    expect(String(version.message)).toMatch(
      new RegExp(`peer speaks hqlt env protocol v99, this side speaks v${PROTOCOL_VERSION}`),
    );
    const client = await RemoteVectorEnv.connect(small.endpoint, { timeoutMs: 10_000 });
    // A request the server finds oversized fails at once, with the server's reason.
    await expect(client.reset({ options: { pad: 'x'.repeat(1 << 20) } })).rejects.toThrow(
      /failed on 'reset': ProtocolError: message of \d+ bytes exceeds the limit of 1048576 bytes/,
    );
    await client.reset({ seed: 1 });
    const act = echoSpace().sample(seedrandom('z'));
    expect(unbatch(client.singleObservationSpace, (await client.step([act, act])).obs)).toEqual([act, act]);
    await client.close();
  });

  it('is stopped by its owner (SIGTERM or Ctrl-C), exiting cleanly; no request stops it', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const s = await start(1);
      const client = await RemoteVectorEnv.connect(s.endpoint, { timeoutMs: 10_000 });
      await client.close();
      expect(s.proc.exitCode).toBe(null);
      const exited = new Promise<number | null>((res) => s.proc.once('exit', (code) => res(code)));
      s.proc.kill(signal);
      expect(await exited, signal).toBe(0);
    }
  });
});

describePython('faults', () => {
  it('a server killed mid-rollout gives a clear error within the timeout', async () => {
    const s = await start(2);
    const env = await makeRemoteVectorEnv(`remote:${s.endpoint}`, { timeoutMs: 1000 });
    await env.reset({ seed: 0 });
    const act = echoSpace().sample(seedrandom('k'));
    await env.step([act, act]);
    s.kill();
    const t = Date.now();
    await expect(env.step([act, act])).rejects.toThrow(/No reply from env server .* within 1000 ms/);
    expect(Date.now() - t).toBeLessThan(2500);
    await env.close();
  });

  it('a hung server gives a clear error within the timeout', async () => {
    const s = await start(1, { kwargs: { hang_at: 2 } });
    const env = await RemoteVectorEnv.connect(s.endpoint, { timeoutMs: 800 });
    await env.reset();
    const act = echoSpace().sample(seedrandom('h'));
    await env.step([act]);
    const err = await env.step([act]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteEnvError);
    expect((err as RemoteEnvError).remoteType).toBe('Timeout');
    s.kill();
    await env.close();
  });

  it('with reconnect, a restarted server is reset and its envs reported truncated', async () => {
    const endpoint = ipcEndpoint('restart');
    const s1 = await start(2, { bind: endpoint });
    // Generous: the step waits for the restarted Python server, which takes seconds to start on a loaded machine.
    const env = await RemoteVectorEnv.connect(endpoint, { timeoutMs: 10_000, reconnect: true });
    await env.reset({ seed: 0 });
    const act = echoSpace().sample(seedrandom('r'));
    await env.step([act, act]);
    s1.kill();
    await new Promise((res) => s1.proc.once('exit', res));
    const restarted = start(2, { bind: endpoint });
    const r = await env.step([act, act]);
    await restarted;
    expect(r.truncated).toEqual([true, true]);
    expect(r.info.remote_restarted).toEqual([true, true]);
    const next = await env.step([act, act]); // the autoreset step: action ignored, the new episode's first obs
    expect(next.obs).toEqual(r.obs);
    expect(Array.from(next.rewards)).toEqual([0, 0]);
    expect(unbatch(env.singleObservationSpace, (await env.step([act, act])).obs)).toEqual([act, act]);
    await env.close();
  });

  it('a missing server fails the handshake within the timeout', async () => {
    await expect(RemoteVectorEnv.connect(ipcEndpoint('nobody'), { timeoutMs: 300 })).rejects.toThrow(
      /No reply from env server .* to 'hello' within 300 ms/,
    );
  });
});

describePython('Python server sessions', () =>
  describeSessions('Python server', async (sessionTimeoutS) => {
    const s = await start(2, { extra: sessionTimeoutS === undefined ? [] : ['--session-timeout', String(sessionTimeoutS)] });
    return { endpoint: s.endpoint, running: () => s.proc.exitCode === null && s.proc.signalCode === null };
  }),
);
