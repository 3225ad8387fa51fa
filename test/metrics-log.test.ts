import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsLog, readMetrics } from '../training/metrics.js';

type Row = { step: number; loss: number; 'test/accuracy': number };

describe('MetricsLog', () => {
  it('writes jsonl and csv with the first row as header, and on resume drops rows after the checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hqlt-metrics-'));
    const first = new MetricsLog<Row>(dir);
    for (const step of [10, 20, 30]) first.append({ step, loss: 1 / step, 'test/accuracy': step / 100 });
    // The run crashed after logging step 30 but its last checkpoint is at step 20.
    const resumed = new MetricsLog<Row>(dir, { keep: (r) => r.step <= 20 });
    resumed.append({ step: 30, loss: 0.5, 'test/accuracy': 0.9 });
    expect(readMetrics(join(dir, 'metrics.jsonl')).map((r) => (r as unknown as Row).step)).toEqual([10, 20, 30]);
    const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv).toEqual(['step,loss,test/accuracy', '10,0.1,0.1', '20,0.05,0.2', '30,0.5,0.9']);
  });

  it('starts afresh without keep, and honours given columns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hqlt-metrics-'));
    new MetricsLog<Row>(dir).append({ step: 1, loss: 2, 'test/accuracy': 0 });
    const log = new MetricsLog<Row>(dir, { columns: ['loss', 'step'] });
    log.append({ step: 5, loss: 3, 'test/accuracy': 1 });
    expect(readFileSync(join(dir, 'metrics.csv'), 'utf8')).toBe('loss,step\n3,5\n');
    expect(readMetrics(join(dir, 'metrics.jsonl'))).toHaveLength(1);
  });

  it('on resume, drops a torn last line (a crash or full disk mid-append) but still refuses a corrupt line elsewhere', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hqlt-metrics-'));
    const log = new MetricsLog<Row>(dir);
    for (const step of [10, 20]) log.append({ step, loss: 1, 'test/accuracy': 0 });
    appendFileSync(join(dir, 'metrics.jsonl'), '{"step":30,"lo');
    expect(() => readMetrics(join(dir, 'metrics.jsonl'))).toThrow(/metrics\.jsonl: line 3 is not valid JSON/);
    new MetricsLog<Row>(dir, { keep: (r) => r.step <= 20 }).append({ step: 30, loss: 2, 'test/accuracy': 1 });
    expect(readMetrics(join(dir, 'metrics.jsonl')).map((r) => (r as unknown as Row).step)).toEqual([10, 20, 30]);

    appendFileSync(join(dir, 'metrics.jsonl'), 'garbage\n{"step":40}\n');
    expect(() => new MetricsLog<Row>(dir, { keep: () => true })).toThrow(/line 4 is not valid JSON/);
  });
});
