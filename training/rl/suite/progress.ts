/**
 * A suite's progress on screen: on a terminal, one bar per running trial (updates done) under a bar for the whole
 * suite with an ETA; otherwise plain lines, one when a trial starts and one when it finishes (with the suite's
 * count and ETA). The ETA is extrapolated from the updates done since this invocation started.
 */
import cliProgress from 'cli-progress';
import type { Trial, TrialEvent, TrialResult } from './trial.js';

const label = (t: Pick<Trial, 'env' | 'core' | 'seed'>) => `${t.env} ${t.core} seed ${t.seed}`;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class SuiteProgress {
  private readonly multi?: cliProgress.MultiBar;
  private readonly totalBar?: cliProgress.SingleBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  /** Fraction done of each running trial. */
  private readonly running = new Map<string, number>();
  private done: number;
  private readonly startFraction: number;
  private readonly started = performance.now();

  constructor(
    private readonly trials: number,
    alreadyDone: number,
    tty = Boolean(process.stdout.isTTY),
  ) {
    this.done = alreadyDone;
    this.startFraction = alreadyDone;
    if (tty) {
      this.multi = new cliProgress.MultiBar(
        { format: '{label} {bar} {value}/{total} {unit}', hideCursor: true, clearOnComplete: false, autopadding: true },
        cliProgress.Presets.shades_classic,
      );
      this.totalBar = this.multi.create(trials, alreadyDone, { label: 'suite'.padEnd(40), unit: 'trials | ETA ?' });
    }
  }

  /** What a runner reported about `trial`. */
  event(trial: Trial, e: TrialEvent): void {
    if (e.kind === 'start') {
      this.running.set(trial.id, (e.resumedFrom ?? 0) / e.total);
      const from = e.resumedFrom ? ` (resuming from update ${e.resumedFrom})` : '';
      if (this.multi) this.bars.set(trial.id, this.multi.create(e.total, e.resumedFrom ?? 0, { label: label(trial).padEnd(40), unit: `updates${from}` }));
      else console.log(`  started ${label(trial)}${from}`);
    } else if (e.kind === 'progress') {
      this.running.set(trial.id, e.update / e.total);
      this.bars.get(trial.id)?.update(e.update);
    } else if (e.kind === 'failed') {
      this.end(trial.id);
      this.line(`  ${label(trial)} failed: ${e.reason}`);
    }
    this.refresh();
  }

  /** A finished trial. */
  finished(r: TrialResult): void {
    this.end(r.id);
    this.done += 1;
    this.refresh();
    this.line(`  ${label(r)}: MMER ${(r.mmer ?? Number.NaN).toFixed(3)}${this.multi ? '' : `  [${this.done}/${this.trials} trials, ${this.eta()}]`}`);
  }

  stop(): void {
    this.multi?.stop();
  }

  private end(id: string): void {
    const bar = this.bars.get(id);
    if (bar) this.multi?.remove(bar);
    this.bars.delete(id);
    this.running.delete(id);
  }

  private line(text: string): void {
    if (this.multi) this.multi.log(text + '\n');
    else console.log(text);
  }

  private eta(): string {
    const progress = this.done + [...this.running.values()].reduce((a, b) => a + b, 0);
    const rate = (progress - this.startFraction) / ((performance.now() - this.started) / 1000);
    return `ETA ${duration((this.trials - progress) / rate)}`;
  }

  private refresh(): void {
    this.totalBar?.update(this.done, { unit: `trials | ${this.eta()}` });
  }
}
