/**
 * The worker thread of AsyncVectorEnv: makes its slice of envs through the registry (after importing
 * `index.js`'s registrations and the caller's extra modules), then answers reset/step/close requests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AsyncWorkerData, WorkerReply, WorkerRequest } from './async-vector.js';
import { EnvGroup, vectorEnvFns } from './vector.js';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('async-worker.js must run in a worker thread (it is started by AsyncVectorEnv).');
  const data = workerData as AsyncWorkerData;
  let group: EnvGroup;
  try {
    await import('./index.js');
    for (const m of data.modules) await import(m);
    const envs = vectorEnvFns({ ...data.make, numEnvs: data.count }).map((fn) => fn());
    group = new EnvGroup(envs, data.make.autoresetMode ?? 'next-step');
    const env = envs[0];
    port.postMessage({
      ok: true,
      result: {
        observationSpace: env.observationSpace.toJSON(),
        actionSpace: env.actionSpace.toJSON(),
        metadata: env.metadata,
      },
    } satisfies WorkerReply);
  } catch (err) {
    // Keep answering (with the error) rather than exiting, so the reply can't race the worker's exit.
    const reply = failure(err);
    port.postMessage(reply);
    port.on('message', () => port.postMessage(reply));
    return;
  }
  port.on('message', (req: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      if (req.cmd === 'reset') reply = { ok: true, result: group.reset(req.seeds, req.options) };
      else if (req.cmd === 'step') reply = { ok: true, result: group.step(req.actions) };
      else if (req.cmd === 'getState') reply = { ok: true, result: group.getState() };
      else if (req.cmd === 'setState') reply = { ok: true, result: group.setState(req.state) ?? null };
      else {
        group.close();
        reply = { ok: true, result: null };
      }
    } catch (err) {
      reply = failure(err);
    }
    port.postMessage(reply);
    if (req.cmd === 'close') port.close();
  });
}

function failure(err: unknown): WorkerReply {
  return { ok: false, error: err instanceof Error ? err.message : String(err) };
}

void main();
