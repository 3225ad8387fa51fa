/**
 * Issue 11: `bench/gpu.js --check` compares every HQLT blend's outputs and gradients, the GRU's and LSTM's, and the
 * weights after 3 PPO updates with the cpu backend. Here it runs on Mesa's software adapter, so every fused kernel
 * (the PPO loss, categorical, Adam, reductions and the dispatch caches included) is checked end to end in CI.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'hqlt-gpu-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench/gpu.js --check on the software adapter', () => {
  it('matches the cpu backend to 1e-5: every core, and PPO weights after 3 updates', async () => {
    const out = join(dir, 'check.json');
    const args = ['dist/bench/gpu.js', '--check', '--fused', '', '--sizes', '', '--ppo-updates', '0', '--out', out];
    await promisify(execFile)(process.execPath, args, { env: { ...process.env, HQLT_WEBGPU_ADAPTER: 'software' } });
    const report = JSON.parse(readFileSync(out, 'utf8')) as { backend: string; checkAgainstCpu: Record<string, number> };
    expect(report.backend).toBe('webgpu');
    const checks = Object.entries(report.checkAgainstCpu);
    expect(checks.map(([k]) => k.split(':')[0])).toEqual(expect.arrayContaining(['core hqlt synchronous', 'core hqlt delayed-chunk', 'core gru', 'core lstm', 'PPO']));
    for (const [figure, value] of checks) expect(value, figure).toBeLessThanOrEqual(1e-5);
  }, 180_000);

  it('bench/matmul.js times every product of a training pass both ways and reports them as JSON', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['dist/bench/matmul.js', '--rows', '4096', '--runs', '1'], {
      env: { ...process.env, HQLT_WEBGPU_ADAPTER: 'software' },
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as { rows: number; products: { name: string; m: number; k: number; n: number; tfjsMs: number; oursMs: number }[] };
    expect(report.rows).toBe(4096);
    const products = (d: number, e: number) => [[4096, d, e], [4096, e, d], [d, 4096, e]];
    expect(report.products.map((p) => [p.m, p.k, p.n])).toEqual([...products(256, 1028), ...products(256, 688), ...products(688, 256), ...products(256, 256)]);
    for (const p of report.products) for (const ms of [p.tfjsMs, p.oursMs]) expect(ms, p.name).toBeGreaterThan(0);
  }, 120_000);
});
