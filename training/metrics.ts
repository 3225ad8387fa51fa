/**
 * Metrics on disk (`metrics.jsonl`, one JSON object a line, and `metrics.csv` with the same columns)
 * and on screen (a live progress bar on a TTY, plain log lines otherwise).
 */
import cliProgress from 'cli-progress';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendFileNamedSync, writeFileAtomicSync } from '../util/files.js';
import type { UpdateMetrics } from './rl/ppo.js';

export const METRIC_COLUMNS = [
  'update',
  'globalStep',
  'episodes',
  'returnMean',
  'successRate',
  'returnMax',
  'lengthMean',
  'lengthMax',
  'learningRate',
  'policyLoss',
  'valueLoss',
  'entropy',
  'approxKl',
  'clipFraction',
  'explainedVariance',
  'gradNorm',
  'stepsPerSecond',
] as const satisfies readonly (keyof UpdateMetrics)[];

function csvLine(values: unknown[]): string {
  return values.map((v) => (v === null || v === undefined || Number.isNaN(v) ? '' : String(v))).join(',') + '\n';
}

/**
 * Appends metrics rows to `<dir>/metrics.jsonl` and `<dir>/metrics.csv`; shared by the RL and supervised trainers.
 * A row is one flat object; the CSV columns are `columns`, or the first row's keys.
 */
export class MetricsLog<Row extends object = UpdateMetrics> {
  readonly jsonlPath: string;
  readonly csvPath: string;
  private columns?: readonly string[];

  /**
   * Opens the log in `dir`, starting it afresh. On resume, pass `keep` (rows at or before the checkpoint): the
   * rows the interrupted run wrote after its last checkpoint are dropped, so the files read as one run.
   */
  constructor(dir: string, options: { columns?: readonly string[]; keep?: (row: Row) => boolean } = {}) {
    this.jsonlPath = join(dir, 'metrics.jsonl');
    this.csvPath = join(dir, 'metrics.csv');
    const keep = options.keep;
    const kept = keep ? (readMetrics(this.jsonlPath, { dropTornLine: true }) as unknown as Row[]).filter((m) => keep(m)) : [];
    this.columns = options.columns ?? (kept.length ? Object.keys(kept[0]) : undefined);
    writeFileAtomicSync(this.jsonlPath, kept.map((m) => JSON.stringify(m) + '\n').join(''));
    writeFileAtomicSync(this.csvPath, this.columns ? this.header() + kept.map((m) => this.line(m)).join('') : '');
  }

  append(m: Row): void {
    if (!this.columns) {
      this.columns = Object.keys(m);
      appendFileNamedSync(this.csvPath, this.header());
    }
    appendFileNamedSync(this.jsonlPath, JSON.stringify(m) + '\n');
    appendFileNamedSync(this.csvPath, this.line(m));
  }

  private header(): string {
    return csvLine([...this.columns!]);
  }

  private line(m: Row): string {
    return csvLine(this.columns!.map((k) => (m as Record<string, unknown>)[k]));
  }
}

/**
 * Reads a metrics.jsonl file (missing file: no metrics); NaN fields come back as null. `dropTornLine` skips an
 * unparsable last line without its newline: what a crash or a full disk mid-append leaves (the resume path, which
 * drops rows after the checkpoint anyway).
 */
export function readMetrics(path: string, options: { dropTornLine?: boolean } = {}): UpdateMetrics[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  return lines
    .map((line, i) => {
      if (line.trim() === '') return undefined;
      try {
        return JSON.parse(line) as UpdateMetrics;
      } catch {
        if (options.dropTornLine && i === lines.length - 1) return undefined;
        throw new Error(`${path}: line ${i + 1} is not valid JSON.`);
      }
    })
    .filter((m): m is UpdateMetrics => m !== undefined);
}

const fmt = (x: number | null, digits = 3) => (x === null || Number.isNaN(x) ? '-' : x.toFixed(digits));

/** One human line for an update. */
export function formatMetrics(m: UpdateMetrics, totalSteps: number): string {
  return (
    `update ${m.update} step ${m.globalStep}/${totalSteps} return ${fmt(m.returnMean)} (max ${fmt(m.returnMax)}) ` +
    `len ${fmt(m.lengthMean, 1)} pi ${fmt(m.policyLoss, 4)} v ${fmt(m.valueLoss, 4)} ent ${fmt(m.entropy)} ` +
    `kl ${fmt(m.approxKl, 4)} clip ${fmt(m.clipFraction, 2)} ev ${fmt(m.explainedVariance, 2)} ` +
    `${Math.round(m.stepsPerSecond)} steps/s`
  );
}

/** Progress display: a live bar on a TTY, one log line per update otherwise. */
export class Progress {
  private bar?: cliProgress.SingleBar;

  constructor(
    private readonly totalSteps: number,
    startStep: number,
    tty = Boolean(process.stdout.isTTY),
  ) {
    if (tty) {
      this.bar = new cliProgress.SingleBar(
        {
          format: '{bar} {percentage}% | {value}/{total} steps | return {ret} | ent {ent} | kl {kl} | {sps} steps/s | ETA {eta_formatted}',
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(totalSteps, startStep, { ret: '-', ent: '-', kl: '-', sps: '-' });
    }
  }

  update(m: UpdateMetrics): void {
    if (this.bar) {
      this.bar.update(Math.min(m.globalStep, this.totalSteps), {
        ret: fmt(m.returnMean),
        ent: fmt(m.entropy),
        kl: fmt(m.approxKl, 4),
        sps: Math.round(m.stepsPerSecond),
      });
    } else console.log(formatMetrics(m, this.totalSteps));
  }

  /** Prints a message without breaking the bar. */
  log(message: string): void {
    if (this.bar) this.bar.stop();
    console.log(message);
  }

  stop(): void {
    this.bar?.stop();
  }
}
