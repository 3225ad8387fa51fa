/**
 * `hqlt record` and `hqlt view`: recordings replay evaluation exactly, and the viewer page, driven in a real
 * headless Chromium (Debian's), loads cleanly, scrubs, shows the recorded numbers and plays the agent live with the
 * same actions as Node.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../envs/index.js';
import { readCheckpointConfig } from '../training/rl/checkpoint.js';
import { parseTrainConfig } from '../training/rl/config.js';
import { runEval } from '../training/rl/evaluate.js';
import { runRecord } from '../training/rl/record.js';
import { runTraining } from '../training/rl/train.js';
import type { Recording } from '../training/viewer/episode.js';
import { readRecording, writeRecording } from '../training/viewer/episode-file.js';
import { decodeSafetensorsRaw } from '../util/safetensors.js';
import { exportedAgent, viewerHtml } from '../training/viewer/html.js';
import { agentConfigOf, playLive } from '../training/viewer/live.js';
import { attentionCells } from '../training/viewer/payload.js';
import type { ViewerApi } from '../training/viewer/page.js';
import { describeUnless } from './fixtures/skip.js';

const out = mkdtempSync(join(tmpdir(), 'hqlt-viewer-'));
let run = '';

beforeAll(async () => {
  const config = parseTrainConfig({
    env: 'PassiveTMazeShort-v0',
    core: { type: 'hqlt', dim: 16, heads: 2, window: 4, layers: 1 },
    numEnvs: 4,
    rollout: 16,
    seqLen: 8,
    minibatches: 2,
    steps: 256,
    seed: 2,
    backend: 'wasm',
    out,
    checkpointEvery: 0,
    name: 'viewer',
  });
  run = (await runTraining(config, { progress: 'none' })).runDir;
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

const actionsOf = (r: Recording) => r.episodes.map((e) => e.steps.map((s) => s.action));

describe('hqlt record', () => {
  it('with introspection off replays hqlt eval bit for bit; introspection changes no action', async () => {
    const opts = { run, episodes: 5, numEnvs: 2, seed: 7 };
    const plain = await runRecord({ ...opts, introspect: false, saliency: false });
    const evaluated = await runEval(opts);
    expect(plain.episodes.map((e) => e.return)).toEqual(evaluated.returns);
    expect(plain.episodes.every((e) => e.steps.every((s) => s.memory === undefined && s.saliency === undefined))).toBe(true);
    const full = await runRecord(opts);
    expect(actionsOf(full)).toEqual(actionsOf(plain));
    expect(full.episodes.map((e) => e.steps.map((s) => s.value))).toEqual(plain.episodes.map((e) => e.steps.map((s) => s.value)));
    for (const step of full.episodes.flatMap((e) => e.steps)) {
      expect(step.frame).toMatchObject({ width: 16 * 6, height: 16 * 3 }); // the T-maze's rgb_array render
      expect(step.policy.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      const a = step.memory!['layers.0.attention']!;
      expect(a.shape).toEqual([2, 4]);
      for (let h = 0; h < 2; h++) expect(a.data.slice(4 * h, 4 * h + 4).reduce((x, y) => x + y, 0)).toBeCloseTo(1, 5);
      expect(step.saliency!.length).toBeGreaterThan(0);
    }
  });

  it('records the saliency of the steps asked for only', async () => {
    const r = await runRecord({ run, episodes: 1, seed: 3, saliency: [0, -1] });
    const steps = r.episodes[0]!.steps;
    expect(steps.map((s) => s.saliency?.length ?? 0)).toEqual(steps.map((_, t) => (t === 0 || t === steps.length - 1 ? t + 1 : 0)));
  });

  it('binary episodes files (.safetensors, .gz) read back as the JSON one: the same viewer page, byte for byte', async () => {
    const opts = { run, episodes: 2, numEnvs: 2, seed: 5 };
    const json = join(out, 'episodes.json');
    const bin = join(out, 'episodes.safetensors');
    const gz = join(out, 'episodes.safetensors.gz');
    writeRecording(json, await runRecord(opts));
    const binary = await runRecord(opts);
    writeRecording(bin, binary);
    writeRecording(gz, binary);
    const fromJson = readRecording(json);
    const page = await viewerHtml({ recording: fromJson, run });
    for (const file of [bin, gz]) {
      const fromBin = readRecording(file);
      expect(fromBin).toEqual(fromJson);
      expect(await viewerHtml({ recording: fromBin, run })).toBe(page);
    }
    expect(statSync(bin).size).toBeLessThan(statSync(json).size);
    expect(statSync(gz).size).toBeLessThan(statSync(json).size / 20);
    // Other safetensors tools see stacked tensors: frames as bytes, the attention weights as float32.
    const { tensors } = decodeSafetensorsRaw(gunzipSync(readFileSync(gz)));
    const T = fromJson.episodes[0]!.steps.length;
    expect(tensors['episodes.0.frame.rgb']).toMatchObject({ dtype: 'U8', shape: [T, 16 * 6 * 16 * 3 * 3] });
    expect(tensors['episodes.0.memory.layers.0.attention.data']).toMatchObject({ dtype: 'F32', shape: [T, 2 * 4] });
  });

  it('episodes files name the two formats for any other extension, and a weights file is no episodes file', () => {
    expect(() => readRecording(join(out, 'episodes.txt'))).toThrow(/episodes\.txt: an episodes file ends in \.json or \.safetensors .*\.gz.*got '\.txt'/);
    expect(() => readRecording(join(out, 'episodes.txt.gz'))).toThrow(/got '\.gz'/);
    expect(() => writeRecording(join(out, 'episodes'), { episodes: [] } as unknown as Recording)).toThrow(/got no extension/);
    expect(() => readRecording(join(run, 'checkpoint', 'weights.safetensors'))).toThrow(/weights\.safetensors is a safetensors file but not an episodes file/);
  });

  it('live mode (the page’s code) plays the recorded episode of the same seed in Node', async () => {
    const recording = await runRecord({ run, episodes: 1, numEnvs: 1, seed: 11, deterministic: true, saliency: false });
    const agent = exportedAgent(run);
    const live = await playLive(agentConfigOf(readCheckpointConfig(run).config), Buffer.from(agent.weights, 'base64'), {
      seed: 11,
      maxSteps: 100,
      deterministic: true,
      introspect: true,
      saliency: false,
    });
    expect(live.steps.map((s) => s.action)).toEqual(actionsOf(recording)[0]);
    expect(live.steps.map((s) => s.memory)).toEqual(recording.episodes[0]!.steps.map((s) => s.memory));
  });
});

const chromiumPath = '/usr/bin/chromium';

/** Opens `file` in a fresh headless Chromium with `flags`, collecting console errors into `errors`; waits for the page. */
async function openViewer(file: string, flags: string[], errors: string[]): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.launchPersistentContext(mkdtempSync(join(out, 'chromium-')), {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...flags,
    ],
  });
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(pathToFileURL(file).href);
  await page.waitForFunction('window.hqltViewer !== undefined');
  await page.evaluate('window.hqltViewer.ready');
  return { context, page };
}
const noChromium = existsSync(chromiumPath) ? undefined : `${chromiumPath} is missing: apt-get install -y chromium to run the viewer's browser tests`;

describeUnless(noChromium, 'hqlt view in headless Chromium', () => {
  let recording: Recording;
  let file = '';
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  const api = <T>(f: (v: ViewerApi) => T | Promise<T>) => page.evaluate(`(${f.toString()})(window.hqltViewer)`) as Promise<T>;

  beforeAll(async () => {
    recording = await runRecord({ run, episodes: 2, deterministic: true, seed: 11 });
    file = join(out, 'viewer.html');
    writeFileSync(file, await viewerHtml({ recording, run }));
    // --disable-gpu: no WebGPU adapter, so the page falls back to wasm (the WebGPU test below opens its own browser).
    ({ context, page } = await openViewer(file, ['--disable-gpu'], errors));
  }, 120_000);
  afterAll(async () => {
    await context?.close();
  });

  it('loads with no console errors, on the wasm backend where WebGPU has no adapter, and says so', async () => {
    expect(errors).toEqual([]);
    expect(await api((v) => v.backend())).toBe('wasm');
    expect(await page.locator('#backend').textContent()).toBe('tfjs wasm (no WebGPU adapter)');
    expect(await page.locator('#episode option').count()).toBe(2);
  });

  it('the scrubber moves through the steps', async () => {
    const steps = recording.episodes[0]!.steps;
    for (let t = 1; t <= 3; t++) {
      await page.keyboard.press('ArrowRight');
      await expect.poll(() => api((v) => v.current().step)).toBe(t);
    }
    await page.locator('#scrubber').fill(String(steps.length - 1));
    await expect.poll(() => api((v) => v.current().step)).toBe(steps.length - 1);
    expect(await page.locator('#step-label').textContent()).toBe(`step ${steps.length - 1} / ${steps.length - 1}`);
    const value = page.locator('#info tr', { hasText: 'value' }).locator('td');
    expect(await value.textContent()).toBe(steps[steps.length - 1]!.value.toFixed(4));
    await page.locator('#prev').click();
    await expect.poll(() => api((v) => v.current().step)).toBe(steps.length - 2);
    expect(await value.textContent()).toBe(steps[steps.length - 2]!.value.toFixed(4));
    expect(errors).toEqual([]);
  });

  it('the attention heat maps show the recorded weights, the current step outlined', async () => {
    await api((v) => v.setStep(3));
    // Each cell's accessible label lists its fields ("… t: 3; key: 1; w: 0.2500").
    const labels = async (layer: number) =>
      page.locator(`#layers svg .child_layer_${layer}_marks path`).evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
    const parse = (label: string) => Object.fromEntries([...label.matchAll(/(\w+): ([-\d.e]+)/g)].map((m) => [m[1]!, Number(m[2])]));
    const cells = (await labels(0)).map(parse);
    const expected = attentionCells(recording.episodes[0]!, 'layers.0');
    expect(cells.length).toBe(expected.length);
    // Facets draw head 0's cells, then head 1's, each in data order.
    const byHead = [0, 1].flatMap((h) => expected.filter((c) => c.head === h));
    cells.forEach((c, i) => {
      expect(c.t).toBe(byHead[i]!.t);
      expect(c.key).toBe(byHead[i]!.key);
      expect(c.w).toBeCloseTo(byHead[i]!.w, 4);
    });
    const outlined = (await labels(1)).map(parse);
    expect(outlined.length).toBe(2 * 4);
    expect(outlined.every((c) => c.t === 3)).toBe(true);
  });

  it('live mode runs the agent in the browser with the Node agent’s actions on the same seed', async () => {
    const live = await api((v) => v.runLive({ seed: 11, maxSteps: 20, deterministic: true }));
    // The recording's first episode was played by env 0, seeded 11.
    expect(live.steps.map((s) => s.action)).toEqual(actionsOf(recording)[0]);
    live.steps.forEach((s, t) => expect(s.value).toBeCloseTo(recording.episodes[0]!.steps[t]!.value, 4));
    expect(await page.locator('#episode option').count()).toBe(3);
    expect(await api((v) => v.current())).toEqual({ episode: 2, step: 0 });
    expect(errors).toEqual([]);
  });

  it('on WebGPU (SwiftShader: --enable-unsafe-webgpu) the live agent takes the Node agent’s actions', async () => {
    const gpuErrors: string[] = [];
    const gpu = await openViewer(file, ['--enable-unsafe-webgpu'], gpuErrors);
    try {
      expect(await gpu.page.locator('#backend').textContent()).toBe('tfjs webgpu');
      const live = (await gpu.page.evaluate('window.hqltViewer.runLive({ seed: 11, maxSteps: 20, deterministic: true, saliency: false })')) as Recording['episodes'][number];
      expect(live.steps.map((s) => s.action)).toEqual(actionsOf(recording)[0]);
      live.steps.forEach((s, t) => expect(s.value).toBeCloseTo(recording.episodes[0]!.steps[t]!.value, 3));
      expect(await gpu.page.locator('#live-status').textContent()).toBe(`played ${live.steps.length} steps on webgpu`);
      expect(gpuErrors).toEqual([]);
    } finally {
      await gpu.context.close();
    }
  }, 120_000);

  it('a page without an agent loads an exported one (weights.safetensors + trainer.json) and plays it', async () => {
    const file = join(out, 'episodes-only.html');
    writeFileSync(file, await viewerHtml({ recording }));
    const other = await context.newPage();
    const otherErrors: string[] = [];
    other.on('console', (m) => m.type() === 'error' && otherErrors.push(m.text()));
    other.on('pageerror', (e) => otherErrors.push(e.message));
    await other.goto(pathToFileURL(file).href);
    await other.waitForFunction('window.hqltViewer !== undefined');
    await other.evaluate('window.hqltViewer.ready');
    expect(await other.locator('#live-status').textContent()).toBe('no agent loaded');
    await other.locator('#live-weights').setInputFiles(join(run, 'checkpoint', 'weights.safetensors'));
    await other.locator('#live-config').setInputFiles(join(run, 'checkpoint', 'trainer.json'));
    await expect.poll(() => other.locator('#live-status').textContent()).toBe('agent: hqlt on PassiveTMazeShort-v0');
    await other.locator('#live-seed').fill('11');
    await other.locator('#live-run').click();
    await expect.poll(() => other.locator('#episode option').count()).toBe(3);
    const live = (await other.evaluate('window.hqltViewer.episodes()[2]')) as Recording['episodes'][number];
    expect(live.steps.map((s) => s.action)).toEqual(actionsOf(recording)[0]);
    expect(otherErrors).toEqual([]);
    await other.close();
  });
});
