/** The TypeScript env server (envs/remote/server.ts, `hqlt serve`) through RemoteVectorEnv. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import '../envs/index.js';
import { SyncVectorEnv, type VectorEnv } from '../envs/vector.js';
import { unbatch } from '../envs/spaces.js';
import { EnvServer, RemoteVectorEnv } from '../envs/remote/index.js';
import { registerTrain } from '../cli/commands/train.js';
import {
  EchoEnv,
  RawClient,
  describeSessions,
  echoSpace,
  header,
  ipcEndpoint,
  malformedRequests,
  rawRequest,
  startServer,
  type ChildServer,
} from './fixtures/remote-helpers.js';

const ID = 'popgym-RepeatPreviousEasy-v0';
const servers: EnvServer[] = [];
const children: ChildServer[] = [];
afterAll(async () => {
  children.forEach((c) => c.kill());
  await Promise.all(servers.map((s) => s.stop()));
});

/** Binds a vector env in this process and serves it in the background. */
async function serve(
  env: VectorEnv,
  endpoint = 'tcp://127.0.0.1:*',
  opts: { maxMessageBytes?: number; sessionTimeoutMs?: number } = {},
): Promise<EnvServer> {
  const server = await EnvServer.bind(env, endpoint, opts);
  servers.push(server);
  void server.serve();
  return server;
}

const echoVector = (n: number, autoresetMode: 'next-step' | 'same-step' = 'next-step') =>
  new SyncVectorEnv(Array.from({ length: n }, () => () => new EchoEnv()), { autoresetMode });

describe('TypeScript env server', () => {
  it('round-trips values of every space type exactly', async () => {
    const s = await serve(echoVector(3));
    const env = await RemoteVectorEnv.connect<Record<string, unknown>, Record<string, unknown>>(s.endpoint);
    expect(env.singleObservationSpace.toJSON()).toEqual(echoSpace().toJSON());
    const reset = await env.reset({ seed: 1 });
    unbatch(env.singleObservationSpace, reset.obs).forEach((o) => expect(env.singleObservationSpace.contains(o)).toBe(true));
    const rng = seedrandom('a');
    const actions = Array.from({ length: 3 }, () => env.singleActionSpace.sample(rng));
    const r = await env.step(actions);
    expect(unbatch(env.singleObservationSpace, r.obs)).toEqual(actions);
    expect(r.info.arr).toEqual(new Array(3).fill(Float32Array.from([0, 1, 2])));
    expect(r.info.episode).toEqual({ l: [1, 1, 1], _l: [true, true, true] });
    await env.close();
  });

  it('passes same-step autoreset results, infos (final_obs) included, through unchanged', async () => {
    const local = echoVector(2, 'same-step');
    const s = await serve(echoVector(2, 'same-step'), ipcEndpoint());
    const env = await RemoteVectorEnv.connect<Record<string, unknown>, Record<string, unknown>>(s.endpoint);
    expect(env.autoresetMode).toBe('same-step');
    expect(await env.reset({ seed: 2 })).toEqual(await local.reset({ seed: 2 }));
    const act = echoSpace().sample(seedrandom('b'));
    for (let t = 1; t <= 4; t++) {
      const [a, b] = await Promise.all([local.step([act, act]), env.step([act, act])]);
      expect(b).toEqual(a);
      if (t === 3) expect(b.info._final_obs).toEqual([true, true]);
    }
    await env.close();
  });

  it('gives the same trajectories as the env run in-process with the same seeds', async () => {
    const local = new SyncVectorEnv({ id: ID, numEnvs: 4 });
    const [s1, s2] = await Promise.all([
      serve(new SyncVectorEnv({ id: ID, numEnvs: 2 })),
      serve(new SyncVectorEnv({ id: ID, numEnvs: 2 }), ipcEndpoint()),
    ]);
    const remote = await RemoteVectorEnv.connect([s1.endpoint, s2.endpoint]);
    expect(remote.numEnvs).toBe(4);
    expect(remote.singleObservationSpace.equals(local.singleObservationSpace)).toBe(true);
    expect(await remote.reset({ seed: 7 })).toEqual(await local.reset({ seed: 7 }));
    const rng = seedrandom('steps');
    let dones = 0;
    for (let t = 0; t < 80; t++) {
      const actions = Array.from({ length: 4 }, () => local.singleActionSpace.sample(rng));
      const [a, b] = await Promise.all([local.step(actions), remote.step(actions)]);
      expect(b.obs).toEqual(a.obs);
      expect(b.rewards).toEqual(a.rewards);
      expect(b.terminated).toEqual(a.terminated);
      expect(b.truncated).toEqual(a.truncated);
      dones += a.terminated.filter(Boolean).length + a.truncated.filter(Boolean).length;
    }
    expect(dones).toBeGreaterThan(0); // the run crossed episode ends, so autoreset was compared too
    await Promise.all([local.close(), remote.close()]);
  });

  it('survives malformed, fuzzed and oversized requests, then still serves', async () => {
    const s = await serve(echoVector(2), 'tcp://127.0.0.1:*', { maxMessageBytes: 1 << 20 });
    const raw = new RawClient(s.endpoint);
    const { session } = await raw.request({ type: 'hello' });
    await raw.request({ type: 'reset', session });
    for (const { name, frames } of malformedRequests(seedrandom('fuzz-ts'), 1 << 20, String(session))) {
      const reply = await rawRequest(s.endpoint, frames);
      expect(reply.type, name).toBe('error');
      if (name === 'step with wrong actions') expect(reply.message).toMatch(/actions: expected an object of batches/);
    }
    await raw.request({ type: 'close', session });
    raw.close();
    const version = await rawRequest(s.endpoint, [header({ v: 99, type: 'hello' })]);
    expect(version.error_type).toBe('ProtocolVersionMismatch');
    const stale = await rawRequest(s.endpoint, [header({ type: 'ping', session: 'old' })]);
    expect(stale.error_type).toBe('StaleSession');
    const env = await RemoteVectorEnv.connect(s.endpoint);
    await env.reset({ seed: 3 });
    const act = echoSpace().sample(seedrandom('c'));
    expect(unbatch(env.singleObservationSpace, (await env.step([act, act])).obs)).toEqual([act, act]);
    expect(await env.ping()).toBeGreaterThanOrEqual(0);
    await env.close();
  });

  it('the client rejects oversized replies', async () => {
    const s = await serve(echoVector(1));
    await expect(RemoteVectorEnv.connect(s.endpoint, { maxMessageBytes: 100 })).rejects.toThrow(
      /sent an invalid reply: message of \d+ bytes exceeds the limit of 100 bytes/,
    );
  });

  it('`hqlt serve` in a child process outlives its clients, stops cleanly on Ctrl-C, and its clients then time out', async () => {
    // vite-node runs the TypeScript CLI; on a busy machine it can take long to start.
    const args = ['test/fixtures/serve-cli.ts', '--', 'serve', '--env', ID, '--num-envs', '3', '--bind', 'tcp://127.0.0.1:*'];
    const child = await startServer('node_modules/.bin/vite-node', args, 90_000);
    children.push(child);
    const first = await RemoteVectorEnv.connect(child.endpoint, { timeoutMs: 1000 });
    await first.reset({ seed: 0 });
    await first.close(); // a finished trainer: the server must stay up for the next one
    const env = await RemoteVectorEnv.connect(child.endpoint, { timeoutMs: 1000 });
    expect(env.numEnvs).toBe(3);
    expect(env.metadata.envId).toBe(ID);
    await env.reset({ seed: 0 });
    const rng = seedrandom('d');
    const acts = () => Array.from({ length: 3 }, () => env.singleActionSpace.sample(rng));
    for (let t = 0; t < 5; t++) await env.step(acts());
    // Its owner stops it mid-rollout; it exits cleanly (Node's default would die of the signal, code null), and the
    // client fails within its timeout. SIGINT, not SIGTERM: vite-node's own SIGTERM handler exits with 143.
    const exited = new Promise<number | null>((res) => child.proc.once('exit', (code) => res(code)));
    child.proc.kill('SIGINT');
    expect(await exited).toBe(0);
    const t0 = Date.now();
    await expect(env.step(acts())).rejects.toThrow(
      /No reply from env server .* within 1000 ms: the server died.*--remote-timeout/,
    );
    expect(Date.now() - t0).toBeLessThan(2500);
    await env.close();
  });

  it('with reconnect, a client whose request timed out takes its session back on the live server', async () => {
    const base = echoVector(2);
    let slow = true;
    // The first step outlasts the client's timeout, once; the server itself stays healthy.
    const slowOnce: VectorEnv = {
      numEnvs: base.numEnvs,
      singleObservationSpace: base.singleObservationSpace,
      singleActionSpace: base.singleActionSpace,
      autoresetMode: base.autoresetMode,
      metadata: base.metadata,
      reset: (opts) => base.reset(opts),
      step: async (actions) => {
        if (slow) await new Promise((res) => setTimeout(res, 1500));
        slow = false;
        return base.step(actions as ArrayLike<Record<string, unknown>>);
      },
      close: () => base.close(),
    };
    const s = await serve(slowOnce);
    const env = await RemoteVectorEnv.connect<Record<string, unknown>, Record<string, unknown>>(s.endpoint, {
      timeoutMs: 1000,
      reconnect: true,
    });
    await env.reset({ seed: 0 });
    const act = echoSpace().sample(seedrandom('slow'));
    const r = await env.step([act, act]);
    expect(r.truncated).toEqual([true, true]);
    expect(r.info.remote_restarted).toEqual([true, true]);
    await env.step([act, act]); // the autoreset step
    expect(unbatch(env.singleObservationSpace, (await env.step([act, act])).obs)).toEqual([act, act]);
    await env.close();
  });

  it('`hqlt train --remote-timeout <ms>` waits that long for a server, and its error names the flag', async () => {
    const program = new Command('hqlt').exitOverride();
    registerTrain(program);
    const out = mkdtempSync(join(tmpdir(), 'hqlt-remote-timeout-'));
    const argv = ['train', '--env', `remote:${ipcEndpoint('nobody')}`, '--remote-timeout', '300', '--backend', 'cpu'];
    const t0 = Date.now();
    await expect(program.parseAsync([...argv, '--out', out], { from: 'user' })).rejects.toThrow(
      /to 'hello' within 300 ms.*raise it with --remote-timeout <ms>/,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describeSessions('TypeScript server', async (sessionTimeoutS) => {
  const server = await EnvServer.bind(echoVector(2), 'tcp://127.0.0.1:*', {
    sessionTimeoutMs: sessionTimeoutS === undefined ? undefined : sessionTimeoutS * 1000,
  });
  servers.push(server);
  let serving = true;
  void server.serve().finally(() => (serving = false));
  return { endpoint: server.endpoint, running: () => serving };
});
