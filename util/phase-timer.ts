/**
 * Wall time per named phase of a loop, for benchmarks' breakdowns ("where does each millisecond of an update go").
 * Code under measurement calls `mark(phase)` at the end of each phase; an absent timer (`timer?.mark(...)`) costs
 * nothing. GPU work is asynchronous: with `sync` set, the measured code waits for the GPU at the end of each phase
 * that only dispatches work (`await timer.settle(tensor)`), so its time lands in that phase instead of the next read.
 */
export class PhaseTimer {
  private readonly totals = new Map<string, { ms: number; calls: number }>();
  private last = performance.now();

  constructor(readonly sync = false) {}

  /** Starts the next phase now (time since the last mark is dropped). */
  restart(): void {
    this.last = performance.now();
  }

  /** Charges the time since the previous mark to `phase`. */
  mark(phase: string): void {
    const now = performance.now();
    const t = this.totals.get(phase) ?? { ms: 0, calls: 0 };
    t.ms += now - this.last;
    t.calls += 1;
    this.totals.set(phase, t);
    this.last = now;
  }

  /** With `sync`, waits until `tensor` (anything with an async `data()`) is computed; otherwise returns at once. */
  async settle(tensor: { data(): Promise<unknown> } | undefined): Promise<void> {
    if (this.sync && tensor) await tensor.data();
  }

  /** Phases in the order first marked: total ms, calls, and the share of the total. */
  report(): { phase: string; ms: number; calls: number; share: number }[] {
    const all = [...this.totals.values()].reduce((s, t) => s + t.ms, 0);
    return [...this.totals].map(([phase, t]) => ({ phase, ms: t.ms, calls: t.calls, share: all > 0 ? t.ms / all : 0 }));
  }

  /** The report as aligned text lines, per `per` repetitions (e.g. ms per update). */
  format(per = 1): string {
    const rows = this.report();
    const width = Math.max(...rows.map((r) => r.phase.length), 5);
    return rows.map((r) => `  ${r.phase.padEnd(width)} ${(r.ms / per).toFixed(1).padStart(9)} ms ${(100 * r.share).toFixed(1).padStart(5)} %`).join('\n');
  }
}
