/**
 * Inputs the CLI must refuse (or explain) up front, as a user meets them: sizes that cannot fit in memory, an empty
 * sequence, steps that round up, a finished run resumed, plots of nothing, a WebGPU without a driver, run names
 * that escape --out.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { HqltLayer } from '../memory/hqlt.js';
import { makeRng } from '../util/random.js';
import { writeSafetensors } from '../util/safetensors.js';
import { exportWeights } from '../memory/weights.js';
import { readMetrics } from '../training/metrics.js';
import { killStarted, runCli, TINY } from './fixtures/cli.js';

const out = mkdtempSync(join(tmpdir(), 'hqlt-inputs-'));
afterEach(killStarted);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('sizes that cannot fit', () => {
  it('--num-envs 1000000000 fails at once, naming the heap limit and the largest count that could fit', async () => {
    // A small heap, so that without the check the run dies in seconds (with the default heap: after ~47 s).
    const r = await runCli(['train', '--num-envs', '1000000000', '--backend', 'cpu', '--out', out, '--name', 'huge'], {
      NODE_OPTIONS: '--max-old-space-size=256',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/heap out of memory|FATAL ERROR/);
    expect(r.stderr).toContain('hqlt: --num-envs 1000000000 × --rollout 64 (163,840 steps) does not fit in memory:');
    expect(r.stderr).toMatch(
      /- the envs \(at least 1 KiB each\) need at least 95\d\.\d GiB, but the V8 heap limit is \d+\.\d MiB \(raise it with NODE_OPTIONS=--max-old-space-size=<MiB>\)/,
    );
    expect(r.stderr).toMatch(/Use fewer envs, or a shorter --rollout: --num-envs \d+ is the most that could fit/);
    expect(existsSync(join(out, 'huge'))).toBe(false);
  });
});

describe('hqlt layer', () => {
  beforeAll(() => initBackend('cpu'));

  it('refuses an input with no time steps, saying what shape it needs', async () => {
    const layer = new HqltLayer(
      { dim: 8, heads: 2, window: 4, blend: 'synchronous', mixing: 'vector', rope: false, shortConv: false, allowNegativeEigenvalues: true },
      makeRng(1),
    );
    await exportWeights(layer, join(out, 'w.safetensors'));
    layer.dispose();
    writeFileSync(join(out, 'layer.json'), JSON.stringify({ mixing: 'vector' }));
    writeSafetensors(join(out, 'x0.safetensors'), { x: { shape: [2, 0, 8], data: new Float32Array(0) } });
    const r = await runCli(['layer', '--config', join(out, 'layer.json'), '--weights', join(out, 'w.safetensors'),
      '--input', join(out, 'x0.safetensors'), '--out', join(out, 'y.safetensors'), '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("hqlt: 'x' has shape [2, 0, 8]: it needs at least one sequence and one time step (B ≥ 1, T ≥ 1).");
    expect(existsSync(join(out, 'y.safetensors'))).toBe(false);
  });
});

describe('hqlt train', () => {
  it('says when --steps rounds up to whole updates, and a finished run resumed says it is finished', async () => {
    const runDir = join(out, 'rounded');
    const r = await runCli(['train', ...TINY, '--steps', '100', '--out', out, '--name', 'rounded']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Note: --steps 100 is rounded up to whole updates of 2 envs × 16 steps: this run trains 4 updates, 128 steps.');
    expect(readMetrics(join(runDir, 'metrics.jsonl')).at(-1)?.globalStep).toBe(128);

    const again = await runCli(['train', '--resume', runDir]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      new RegExp(`^Nothing to train: ${runDir} has already trained 128 steps, all that --steps 100 asks for \\(mean return over the last 1 update with finished episodes -?\\d+\\.\\d{3}\\)\\. To train further, resume with a larger --steps, e\\.g\\. hqlt train --resume ${runDir} --steps 256\\.$`, 'm'),
    );
    expect(again.stdout).not.toMatch(/ -\./);
    expect(readMetrics(join(runDir, 'metrics.jsonl'))).toHaveLength(4);
  });

  it.each([
    ['--name', ['--name', '../../escaped'], "error: option '--name <name>' argument '../../escaped' is invalid. '../../escaped' contains a path separator: give a plain name, and choose the folder it goes in with --out."],
    ['--name ..', ['--name', '..'], "'..' is not a folder name"],
    ['a config file', ['--config', 'CONFIG'], "Invalid config (CONFIG + flags):\n  'name': '../../escaped' contains a path separator: give a plain name; choose the folder it goes in with --out (or 'out')"],
  ])('refuses a run name that leaves --out (%s)', async (_, flags, message) => {
    const config = join(out, 'escape.json');
    writeFileSync(config, JSON.stringify({ name: '../../escaped' }));
    const runs = join(out, 'deep', 'runs');
    mkdirSync(runs, { recursive: true });
    const r = await runCli(['train', ...TINY, '--steps', '32', '--out', runs, ...flags.map((f) => (f === 'CONFIG' ? config : f))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message.replace('CONFIG', config));
    expect(existsSync(join(out, 'escaped'))).toBe(false);
    expect(readdirSync(runs)).toEqual([]);
  });
});

describe('hqlt plot', () => {
  it('refuses an unknown --x and an empty metrics file, writing no SVG', async () => {
    const run = join(out, 'plotted');
    mkdirSync(run);
    writeFileSync(join(run, 'metrics.jsonl'), '{"update":1,"globalStep":32,"returnMean":0.5}\n');
    const bogus = await runCli(['plot', run, '--x', 'bogus']);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toContain(`hqlt: Run ${run} has no numeric metric 'bogus'. Available: update, globalStep, returnMean.`);

    const empty = join(out, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'metrics.jsonl'), '');
    const none = await runCli(['plot', empty]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`hqlt: ${join(empty, 'metrics.jsonl')} has no rows yet: the run has not finished an update.`);
    expect(existsSync(join(run, 'curves.svg')) || existsSync(join(empty, 'curves.svg'))).toBe(false);
  });
});

describe('--backend webgpu', () => {
  it('with the packages installed but no GPU driver, says the driver is missing rather than to install packages', async (ctx) => {
    const r = await runCli(['info', '--backend', 'webgpu'], { HQLT_WEBGPU_ADAPTER: '' });
    if (r.code === 0) return ctx.skip('this machine has a working WebGPU adapter');
    if (/is not installed/.test(r.stderr)) return ctx.skip('the optional WebGPU packages are not installed here');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("hqlt: Backend 'webgpu' is not available: the WebGPU packages are installed, but ");
    expect(r.stderr).toMatch(/there is no Vulkan driver: the Vulkan loader \(libvulkan\.so\.1\) is missing|no hardware GPU adapter was found/);
    expect(r.stderr).not.toContain('npm install');
  });

  it('--precision f16 says what it needs: the webgpu backend, and an adapter with f16 subgroup matrices', async (ctx) => {
    const cpu = await runCli(['info', '--backend', 'wasm', '--precision', 'f16']);
    expect(cpu.code).toBe(1);
    expect(cpu.stderr).toContain("hqlt: Precision 'f16' runs matrix products on a GPU's tensor cores through WebGPU: add --backend webgpu, or use --precision f32 (backend 'wasm').");
    const bogus = await runCli(['info', '--precision', 'f8']);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toMatch(/argument 'f8' is invalid\. Allowed choices are f32, f16/);
    const soft = await runCli(['info', '--backend', 'webgpu', '--precision', 'f16'], { HQLT_WEBGPU_ADAPTER: 'software' });
    if (/is not available/.test(soft.stderr)) return ctx.skip("no WebGPU software adapter here (Mesa's OpenGL driver)");
    expect(soft.code).toBe(1);
    expect(soft.stderr).toMatch(/hqlt: --precision f16 runs matrix products on tensor cores \(WebGPU subgroup matrices\), but this GPU's adapter \(.*\) cannot: it lacks shader-f16, subgroups, chromium-experimental-subgroup-matrix\. Use --precision f32\./);
  });
});
