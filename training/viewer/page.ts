/**
 * The viewer page (browser entry, bundled by `html.ts` with esbuild): a timeline scrubber over a recorded (or live)
 * episode showing the env frame, action, policy, value and reward, per layer the attention heat maps of every
 * head and the memory's gates over time, and the saliency of past observations. Live mode plays an exported agent
 * with tfjs on the env bundled from `envs/`: on WebGPU where the browser gives an adapter, else on wasm (its binary
 * embedded in the page), else on cpu; the header shows the backend and why faster ones were passed over.
 *
 * The page reads its payload from `<script id="hqlt-payload" type="application/json">` and exposes
 * `window.hqltViewer` (see `ViewerApi`) for tests and the console.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { base64ToBytes, checkRecording, decodeFrame, type RecordedEpisode, type RecordedStep, type Recording } from './episode.js';
import { agentConfigOf, playLive, type AgentConfig } from './live.js';
import { attentionCells, memorySeries, saliencyBars, type ViewerPayload } from './payload.js';

/** What the page exposes on `window.hqltViewer`. */
export interface ViewerApi {
  /** Resolves once the backend is up and the first episode is drawn. */
  ready: Promise<void>;
  backend(): string;
  /** Why WebGPU (and wasm) were passed over, as the header shows it; empty on WebGPU. */
  backendNote(): string;
  episodes(): RecordedEpisode[];
  current(): { episode: number; step: number };
  setEpisode(i: number): Promise<void>;
  setStep(t: number): Promise<void>;
  /** The vega views by name (`attention.<layer>`, `memory.<layer>`, `saliency`). */
  views: Map<string, vega.View>;
  /** Plays an episode with the page's agent and shows it (with the saliency of every step unless `saliency: false`). */
  runLive(opts: LiveRun): Promise<RecordedEpisode>;
}

type LiveRun = { seed: number; maxSteps: number; deterministic?: boolean; saliency?: boolean };

declare global {
  interface Window {
    hqltViewer: ViewerApi;
  }
}

const payload = JSON.parse(document.getElementById('hqlt-payload')?.textContent ?? '{}') as ViewerPayload;
const recording: Recording | undefined = payload.recording ? checkRecording(payload.recording, 'the embedded episodes') : undefined;
let agent: { config: AgentConfig; weights: Uint8Array } | undefined = payload.agent
  ? { config: agentConfigOf(payload.agent.config), weights: base64ToBytes(payload.agent.weights) }
  : undefined;
const episodes: { label: string; episode: RecordedEpisode }[] = (recording?.episodes ?? []).map((e, i) => ({
  label: `episode ${i} (env ${e.stream}, return ${e.return.toFixed(2)}, ${e.steps.length} steps)`,
  episode: e,
}));
const views = new Map<string, vega.View>();
/** Step axes: whole steps only. */
const STEP_AXIS = { tickMinStep: 1, format: 'd' };
let episodeIndex = 0;
let stepIndex = 0;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`viewer: #${id} is missing`);
  return e as T;
}

let backendNote = '';

/**
 * WebGPU where `navigator.gpu` gives an adapter; else wasm with the embedded binary (one SIMD build under every
 * name tfjs asks for); else cpu. Records why each faster backend was passed over in `backendNote`.
 */
async function initBackend(): Promise<string> {
  const passed: string[] = [];
  const tryBackend = async (name: string): Promise<boolean> => {
    try {
      if (await tf.setBackend(name)) return true;
      passed.push(`${name} failed to start`);
    } catch (err) {
      passed.push(`${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    return false;
  };
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (!gpu) passed.push('no WebGPU in this browser');
  else if (!adapter) passed.push('no WebGPU adapter');
  else if (await tryBackend('webgpu')) return finish();
  if (payload.wasm) {
    const url = URL.createObjectURL(new Blob([base64ToBytes(payload.wasm) as BlobPart], { type: 'application/wasm' }));
    setWasmPaths({ 'tfjs-backend-wasm.wasm': url, 'tfjs-backend-wasm-simd.wasm': url, 'tfjs-backend-wasm-threaded-simd.wasm': url });
    if (await tryBackend('wasm')) return finish();
  } else passed.push('no wasm binary in the page');
  await tf.setBackend('cpu');
  return finish();

  function finish(): string {
    backendNote = passed.join('; ');
    return tf.getBackend();
  }
}

function buildLayout(): void {
  const root = byId('app');
  const head = el('header');
  head.append(el('h1', {}, payload.title ?? 'hqlt viewer'));
  const meta = recording ? `${recording.env} · core ${recording.core.type} · seed ${recording.seed}${recording.deterministic ? ' · deterministic' : ''}` : '';
  head.append(el('span', { id: 'meta' }, meta), el('span', { id: 'backend' }, 'backend …'));
  const controls = el('div', { class: 'controls' });
  controls.append(el('select', { id: 'episode' }));
  controls.append(el('button', { id: 'prev', title: 'previous step (←)' }, '◀'));
  controls.append(el('input', { id: 'scrubber', type: 'range', min: '0', max: '0', value: '0' }));
  controls.append(el('button', { id: 'next', title: 'next step (→)' }, '▶'));
  controls.append(el('button', { id: 'play' }, 'play'));
  controls.append(el('span', { id: 'step-label' }));
  const live = el('div', { class: 'controls', id: 'live' });
  live.append(
    el('label', {}, 'live: seed '),
    el('input', { id: 'live-seed', type: 'number', value: String(recording?.seed ?? 0) }),
    el('label', {}, ' steps '),
    el('input', { id: 'live-steps', type: 'number', value: '50' }),
    el('button', { id: 'live-run' }, 'run agent in the browser'),
    el('label', { for: 'live-weights' }, ' load an agent: weights '),
    el('input', { id: 'live-weights', type: 'file', accept: '.safetensors', title: 'checkpoint/weights.safetensors' }),
    el('label', { for: 'live-config' }, ' config '),
    el('input', { id: 'live-config', type: 'file', accept: '.json', title: 'checkpoint/trainer.json, or the run config' }),
    el('span', { id: 'live-status' }, agent ? `agent: ${agent.config.core.type} on ${agent.config.env}` : 'no agent loaded'),
  );
  const grid = el('main');
  const left = el('section', { class: 'panel' });
  left.append(el('h2', {}, 'env'), el('canvas', { id: 'frame' }), el('pre', { id: 'text' }), el('h2', {}, 'step'), el('table', { id: 'info' }));
  const right = el('section', { class: 'panel wide' });
  right.append(el('h2', {}, 'saliency of past observations'), el('div', { id: 'saliency' }), el('div', { id: 'layers' }));
  grid.append(left, right);
  root.append(head, controls, live, grid);
}

const episode = (): RecordedEpisode | undefined => episodes[episodeIndex]?.episode;

function drawFrame(step: RecordedStep): void {
  const canvas = byId<HTMLCanvasElement>('frame');
  const text = byId<HTMLPreElement>('text');
  canvas.style.display = step.frame ? '' : 'none';
  text.style.display = step.text !== undefined ? '' : 'none';
  text.textContent = step.text ?? '';
  if (!step.frame) return;
  const { width, height } = step.frame;
  const rgb = decodeFrame(step.frame);
  canvas.width = width;
  canvas.height = height;
  const image = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    image.data.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    image.data[4 * i + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(image, 0, 0);
}

function drawInfo(steps: RecordedStep[], t: number): void {
  const step = steps[t]!;
  const table = byId<HTMLTableElement>('info');
  table.replaceChildren();
  const row = (name: string, value: string | HTMLElement) => {
    const tr = el('tr');
    const td = el('td');
    td.append(value);
    tr.append(el('th', {}, name), td);
    table.append(tr);
  };
  const so = steps.slice(0, t + 1).reduce((a, s) => a + s.reward, 0);
  row('action', JSON.stringify(step.action));
  const probs = recording?.policy !== 'parameters';
  const bars = el('div', { class: 'bars' });
  step.policy.forEach((p, i) => {
    const bar = el('div', { class: 'bar', title: `${i}: ${p.toFixed(4)}` });
    bar.append(el('span', { style: `width:${probs ? Math.round(100 * p) : 0}%` }), el('em', {}, `${i}: ${p.toFixed(3)}`));
    bars.append(bar);
  });
  row(probs ? 'π(a | history)' : 'policy parameters', bars);
  row('log π(action)', step.logProb.toFixed(4));
  row('value', step.value.toFixed(4));
  row('reward', String(step.reward));
  row('return so far', so.toFixed(3));
  row('observation', el('code', {}, JSON.stringify(step.obs).slice(0, 400)));
}

/** Above this many marks a chart draws on a canvas: SVG keeps a DOM node per mark (and labels it for screen readers). */
const SVG_MAX_MARKS = 20_000;

async function makeView(name: string, container: HTMLElement, spec: TopLevelSpec, marks: number): Promise<vega.View> {
  views.get(name)?.finalize();
  const renderer = marks > SVG_MAX_MARKS ? 'canvas' : 'svg';
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer, container, hover: true });
  views.set(name, view);
  await view.runAsync();
  return view;
}

/** Builds the charts of the current episode (data is per episode; the scrubber moves only the `cur` signal). */
async function drawCharts(): Promise<void> {
  const ep = episode();
  const layers = byId('layers');
  layers.replaceChildren();
  for (const v of views.values()) v.finalize();
  views.clear();
  if (!ep) return;
  const T = ep.steps.length;
  const cur = [{ name: 'cur', value: stepIndex }];
  const sal = saliencyBars(ep);
  if (sal.length) {
    await makeView('saliency', byId('saliency'), {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      data: { name: 'cells', values: sal },
      params: cur,
      width: 560,
      height: 120,
      transform: [{ filter: 'datum.t == cur' }],
      mark: 'bar',
      encoding: {
        x: { field: 'j', type: 'quantitative', title: 'past step', scale: { domain: [-0.5, T - 0.5] }, axis: STEP_AXIS },
        y: { field: 's', type: 'quantitative', title: '‖∂ log π / ∂ obs‖' },
        tooltip: [{ field: 'j' }, { field: 's', format: '.4g' }],
      },
    }, sal.length);
  } else byId('saliency').textContent = 'not recorded';
  const first = ep.steps[0]?.memory ?? {};
  const layerIds = [...new Set(Object.keys(first).map((k) => k.replace(/\.[^.]+$/, '')))].sort();
  for (const layer of layerIds) {
    const box = el('div', { class: 'layer' });
    box.append(el('h2', {}, layer));
    const att = el('div');
    const mem = el('div');
    box.append(att, mem);
    layers.append(box);
    const cells = attentionCells(ep, layer);
    if (cells.length) {
      // Query rows within `span` steps of the current one: a long episode's band would be a few pixels wide.
      const span = Math.max(12, 2 * (first[`${layer}.attention`]?.shape[1] ?? 0));
      await makeView(`attention.${layer}`, att, {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title: `KV attention over the window (row = query step within ${span} of the current one, outlined)`,
        data: { name: 'cells', values: cells },
        params: cur,
        transform: [{ filter: `abs(datum.t - cur) <= ${span}` }],
        facet: { column: { field: 'head', type: 'ordinal', title: 'head' } },
        spec: {
          width: 220,
          height: 220,
          layer: [
            {
              mark: 'rect',
              encoding: {
                x: { field: 'key', type: 'ordinal', title: 'key step', axis: { labelOverlap: true } },
                y: { field: 't', type: 'ordinal', title: 'query step', axis: { labelOverlap: true } },
                color: { field: 'w', type: 'quantitative', title: 'weight', scale: { domain: [0, 1], scheme: 'viridis' } },
                tooltip: [{ field: 't' }, { field: 'key' }, { field: 'w', format: '.4f' }],
              },
            },
            {
              transform: [{ filter: 'datum.t == cur' }],
              mark: { type: 'rect', fill: null, stroke: '#ff3b30', strokeWidth: 1.5 },
              encoding: { x: { field: 'key', type: 'ordinal' }, y: { field: 't', type: 'ordinal' } },
            },
          ],
        },
      }, cells.length);
    }
    const series = memorySeries(ep, layer);
    if (series.length) {
      await makeView(`memory.${layer}`, mem, {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        data: { name: 'cells', values: series },
        params: cur,
        facet: { row: { field: 'quantity', type: 'nominal', title: null } },
        resolve: { scale: { y: 'independent' } },
        spec: {
          width: 520,
          height: 70,
          layer: [
            {
              mark: { type: 'line', point: T < 60 },
              encoding: {
                x: { field: 't', type: 'quantitative', title: 'step', axis: STEP_AXIS },
                y: { field: 'value', type: 'quantitative', title: null },
                color: { field: 'head', type: 'nominal', title: 'head' },
                tooltip: [{ field: 't' }, { field: 'head' }, { field: 'value', format: '.4f' }],
              },
            },
            { transform: [{ filter: 'datum.t == cur' }], mark: { type: 'rule', color: '#ff3b30' }, encoding: { x: { field: 't', type: 'quantitative' } } },
          ],
        },
      }, series.length);
    }
  }
}

async function setStep(t: number): Promise<void> {
  const ep = episode();
  if (!ep || ep.steps.length === 0) return;
  stepIndex = Math.max(0, Math.min(ep.steps.length - 1, Math.round(t)));
  byId<HTMLInputElement>('scrubber').value = String(stepIndex);
  byId('step-label').textContent = `step ${stepIndex} / ${ep.steps.length - 1}`;
  drawFrame(ep.steps[stepIndex]!);
  drawInfo(ep.steps, stepIndex);
  await Promise.all([...views.values()].map((v) => v.signal('cur', stepIndex).runAsync()));
}

async function setEpisode(i: number): Promise<void> {
  episodeIndex = Math.max(0, Math.min(episodes.length - 1, i));
  const select = byId<HTMLSelectElement>('episode');
  select.replaceChildren(...episodes.map((e, n) => el('option', { value: String(n) }, e.label)));
  select.value = String(episodeIndex);
  byId<HTMLInputElement>('scrubber').max = String(Math.max(0, (episode()?.steps.length ?? 1) - 1));
  stepIndex = 0;
  await drawCharts();
  await setStep(0);
}

async function runLive(opts: LiveRun): Promise<RecordedEpisode> {
  if (!agent) throw new Error('No agent: open the page with `hqlt view --run <run>`, or load weights.safetensors and trainer.json.');
  const status = byId('live-status');
  status.textContent = 'playing…';
  const ep = await playLive(agent.config, agent.weights, {
    seed: opts.seed,
    maxSteps: opts.maxSteps,
    deterministic: opts.deterministic ?? true,
    introspect: true,
    saliency: opts.saliency ?? true,
    onStep: (t) => {
      status.textContent = `playing… step ${t + 1}`;
    },
  });
  episodes.push({ label: `live (seed ${opts.seed}, return ${ep.return.toFixed(2)}, ${ep.steps.length} steps)`, episode: ep });
  status.textContent = `played ${ep.steps.length} steps on ${tf.getBackend()}`;
  await setEpisode(episodes.length - 1);
  return ep;
}

async function readFile(input: HTMLInputElement): Promise<Uint8Array | undefined> {
  const f = input.files?.[0];
  return f ? new Uint8Array(await f.arrayBuffer()) : undefined;
}

function wireControls(): void {
  const scrub = byId<HTMLInputElement>('scrubber');
  scrub.addEventListener('input', () => void setStep(Number(scrub.value)));
  byId('prev').addEventListener('click', () => void setStep(stepIndex - 1));
  byId('next').addEventListener('click', () => void setStep(stepIndex + 1));
  byId<HTMLSelectElement>('episode').addEventListener('change', (e) => void setEpisode(Number((e.target as HTMLSelectElement).value)));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowLeft') void setStep(stepIndex - 1);
    if (e.key === 'ArrowRight') void setStep(stepIndex + 1);
  });
  let timer: number | undefined;
  byId('play').addEventListener('click', () => {
    if (timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
      return;
    }
    timer = window.setInterval(() => {
      const last = (episode()?.steps.length ?? 1) - 1;
      if (stepIndex >= last) {
        clearInterval(timer);
        timer = undefined;
      } else void setStep(stepIndex + 1);
    }, 250);
  });
  const loadAgent = async () => {
    const weights = await readFile(byId<HTMLInputElement>('live-weights'));
    const config = await readFile(byId<HTMLInputElement>('live-config'));
    if (!weights || !config) return;
    agent = { config: agentConfigOf(JSON.parse(new TextDecoder().decode(config))), weights };
    byId('live-status').textContent = `agent: ${agent.config.core.type} on ${agent.config.env}`;
  };
  byId('live-weights').addEventListener('change', () => void loadAgent().catch(showError));
  byId('live-config').addEventListener('change', () => void loadAgent().catch(showError));
  byId('live-run').addEventListener('click', () => {
    const seed = Number(byId<HTMLInputElement>('live-seed').value);
    const maxSteps = Number(byId<HTMLInputElement>('live-steps').value);
    void runLive({ seed, maxSteps }).catch(showError);
  });
}

function showError(err: unknown): void {
  byId('live-status').textContent = `error: ${err instanceof Error ? err.message : String(err)}`;
}

async function main(): Promise<void> {
  buildLayout();
  wireControls();
  const backend = await initBackend();
  byId('backend').textContent = `tfjs ${backend}${backendNote ? ` (${backendNote})` : ''}`;
  if (episodes.length) await setEpisode(0);
}

window.hqltViewer = {
  ready: main(),
  backend: () => tf.getBackend(),
  backendNote: () => backendNote,
  episodes: () => episodes.map((e) => e.episode),
  current: () => ({ episode: episodeIndex, step: stepIndex }),
  setEpisode,
  setStep,
  views,
  runLive,
};
