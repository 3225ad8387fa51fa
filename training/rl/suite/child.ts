/**
 * A trial process (forked by `TrialPool`): runs the trials its parent sends, one at a time, and reports events
 * and outcomes back. A 'stop' message or SIGTERM checkpoints the running trial; SIGINT is left to the parent
 * (Ctrl-C reaches the whole process group, and the parent decides); when the parent goes away (killed, even with
 * kill -9) this process exits at once, keeping the trial's last checkpoint.
 */
import type { FromChild, ToChild } from './pool.js';
import { runTrial, TrialSpecError } from './trial.js';

let stopping = false;
let current: AbortController | undefined;

const send = (msg: FromChild) => process.send?.(msg);

function stop(): void {
  stopping = true;
  current?.abort();
}

process.on('SIGINT', () => {});
process.on('SIGTERM', () => (stopping ? process.exit(143) : stop()));
process.on('disconnect', () => process.exit(stopping ? 0 : 1));

process.on('message', (msg: ToChild) => {
  if (msg.type === 'stop') return stop();
  const controller = new AbortController();
  current = controller;
  if (stopping) controller.abort();
  runTrial(msg.trial, {
    root: msg.root,
    backend: msg.backend,
    publish: msg.publish,
    signal: controller.signal,
    onEvent: (event) => send({ type: 'event', event }),
  })
    .then((outcome) => send({ type: 'outcome', outcome }))
    .catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err), spec: err instanceof TrialSpecError }))
    .finally(() => {
      if (current === controller) current = undefined;
    });
});
