/**
 * Clean stops for the commands that train (`train`, `suite`, `synth`, `recall`, `lm`).
 *
 * The first SIGINT (Ctrl-C) or SIGTERM (what `kill`, systemd, Docker and job schedulers send) asks the work to stop
 * at its next safe point and write a checkpoint; a second one exits at once (the last checkpoint is kept). Either
 * way the process exits with 128 + the signal's number, the shell's convention for "ended by a signal": 130 for
 * SIGINT, 143 for SIGTERM, so scripts and schedulers can tell a stopped run from a finished one (0).
 *
 * Signals are delivered by the event loop, which a training loop on the cpu or wasm backends never reaches on its
 * own: its awaits (tensor reads, env steps) settle at once and continue as microtasks. Long loops therefore call
 * `yieldToEventLoop` regularly.
 */

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof EXIT_CODES;

/** Thrown by a command's work when it stopped early on a signal; its message tells how to continue. */
export class Stopped extends Error {
  override readonly name = 'Stopped';
}

let lastYield = 0;

/**
 * Lets the event loop run (signal handlers, timers, I/O) when `everyMs` have passed since it last did; otherwise
 * returns at once, so calling it every step costs next to nothing.
 */
export async function yieldToEventLoop(everyMs = 25): Promise<void> {
  if (performance.now() - lastYield < everyMs) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  lastYield = performance.now();
}

/**
 * Runs `work` with an AbortSignal that the first SIGINT or SIGTERM aborts (after printing that the work is
 * `stopping`, e.g. "finishing this update and writing a checkpoint"); a second signal exits at once. If `work`
 * throws `Stopped`, its message is printed and the exit code set to 130 / 143; other errors propagate.
 */
export async function stopOnSignals(stopping: string, work: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  let received: StopSignal | undefined;
  const onSignal = (sig: StopSignal) => {
    if (received) {
      console.error(`\n${sig} again: quitting now; the last checkpoint written is kept.`);
      process.exit(EXIT_CODES[sig]);
    }
    received = sig;
    const again = sig === 'SIGINT' ? 'Ctrl-C again' : 'SIGTERM again';
    console.error(`\n${sig === 'SIGINT' ? 'Interrupted' : 'Terminated'} (${sig}): ${stopping} (${again} to quit at once).`);
    controller.abort(sig);
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await work(controller.signal);
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
    console.log(err.message);
    process.exitCode = EXIT_CODES[received ?? 'SIGINT'];
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
