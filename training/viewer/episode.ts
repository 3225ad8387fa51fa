/**
 * The episodes file of `hqlt record` (JSON), read by `hqlt view` and the viewer page, and `EpisodeBuilder`, which
 * turns an agent's steps into it. Node-free: the page bundles this module for its live mode, so recorded and live
 * episodes are built by the same code.
 */
import { Discrete, MultiDiscrete, type Space } from '../../envs/spaces.js';
import type { Env, RgbImage } from '../../envs/env.js';
import type { ActResult, RecurrentAgent } from '../../agents/agent.js';
import type { CoreConfig } from '../../memory/core.js';
import { disposeState } from '../../memory/state.js';

export const RECORDING_FORMAT = 'hqlt-episodes';
export const RECORDING_VERSION = 1;

/** An env frame: RGB bytes (row-major [height, width, 3]) in base64. */
export interface Frame {
  width: number;
  height: number;
  rgb: string;
}

/** A tensor of one stream (batch axis dropped), row-major. */
export interface StoredTensor {
  shape: number[];
  data: number[];
}

export interface RecordedStep {
  /** The observation as JSON (typed arrays as arrays). */
  obs: unknown;
  /** The env's `rgb_array` render of the state the observation shows, where the env has one. */
  frame?: Frame;
  /** Otherwise its `ansi` render. */
  text?: string;
  action: unknown;
  /** The policy's parameters: action probabilities for discrete actions (see `Recording.policy`). */
  policy: number[];
  logProb: number;
  value: number;
  reward: number;
  /** Memory internals by name, e.g. `layers.0.attention` [H, S] (see `memory/core.ts` `Introspection`). */
  memory?: Record<string, StoredTensor>;
  /** ‖∂ log π(a_t) / ∂ obs_j‖ for j = 0..t (the saliency of each past observation for this step's action). */
  saliency?: number[];
}

export interface RecordedEpisode {
  /** The vector-env stream that played it (0 for live episodes). */
  stream: number;
  return: number;
  steps: RecordedStep[];
}

export interface Recording {
  format: typeof RECORDING_FORMAT;
  version: typeof RECORDING_VERSION;
  env: string;
  envKwargs: Record<string, unknown>;
  core: CoreConfig;
  seed: number;
  deterministic: boolean;
  /** What `RecordedStep.policy` holds. */
  policy: PolicyKind;
  episodes: RecordedEpisode[];
}

export type PolicyKind = 'probabilities' | 'parameters';

/** 'probabilities' when the policy's host parameters are action probabilities (discrete action spaces). */
export function policyKind(actionSpace: Space): PolicyKind {
  return actionSpace instanceof Discrete || actionSpace instanceof MultiDiscrete ? 'probabilities' : 'parameters';
}

/** Checks that parsed JSON is an episodes file; returns it typed. */
export function checkRecording(json: unknown, source: string): Recording {
  const r = json as Partial<Recording> | null;
  if (!r || r.format !== RECORDING_FORMAT) throw new Error(`${source} is not an episodes file of \`hqlt record\`.`);
  if (r.version !== RECORDING_VERSION) throw new Error(`${source} has version ${r.version}; this viewer reads ${RECORDING_VERSION}.`);
  if (!Array.isArray(r.episodes)) throw new Error(`${source} has no episodes.`);
  return r as Recording;
}

/** Chooses `rgb_array` rendering where the env has it (else `ansi`); rendering never changes the env's dynamics. */
export function enableRender(env: Env): void {
  const inner = env.unwrapped;
  inner.renderMode = inner.metadata.renderModes.includes('rgb_array') ? 'rgb_array' : 'ansi';
}

/** The env's current render as a frame or text. */
export function renderOf(env: Env): Pick<RecordedStep, 'frame' | 'text'> {
  const r = env.render();
  if (typeof r === 'string') return { text: r };
  return r ? { frame: encodeFrame(r) } : {};
}

export function encodeFrame(img: RgbImage): Frame {
  return { width: img.width, height: img.height, rgb: bytesToBase64(img.data) };
}

export function decodeFrame(frame: Frame): Uint8Array {
  return base64ToBytes(frame.rgb);
}

/** Base64 without Node's Buffer (the page runs this too). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  // `apply` on 4 KiB chunks: spreading a typed array, or larger chunks, is tens of times slower in V8.
  for (let i = 0; i < bytes.length; i += 0x1000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x1000) as unknown as number[]);
  return btoa(binary);
}

export function base64ToBytes(b64: string): Uint8Array {
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Typed arrays (at any depth) as plain arrays, so a value survives JSON. */
export function toJson(x: unknown): unknown {
  if (ArrayBuffer.isView(x)) return Array.from(x as unknown as ArrayLike<number>);
  if (Array.isArray(x)) return x.map(toJson);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toJson(v)]));
  return x;
}

/**
 * Which steps get a saliency: all, none, or the listed ones (negative indices count from the end: −1 is the last).
 * Each costs a backward pass over the episode up to that step.
 */
export type SaliencySteps = boolean | number[];

/**
 * Collects one stream's episode from `act` results: `add` before the env step, `reward` after it, `finish` at the
 * end (which computes the saliency of the steps asked for).
 */
export class EpisodeBuilder {
  private readonly steps: RecordedStep[] = [];
  private readonly features: Float32Array[] = [];
  private readonly actions: Float32Array[] = [];

  constructor(private readonly agent: RecurrentAgent) {}

  get length(): number {
    return this.steps.length;
  }

  /** Stream `b` of an `act` result, with the observation it acted on and the env's render. */
  add(act: ActResult, b: number, obs: unknown, render: Pick<RecordedStep, 'frame' | 'text'>): void {
    const d = this.agent.distribution;
    const F = this.agent.encoder.dim;
    const P = act.policy.length / act.values.length;
    const step: RecordedStep = {
      obs: toJson(obs),
      ...render,
      action: toJson(act.actions[b]),
      policy: Array.from(act.policy.subarray(b * P, (b + 1) * P)),
      logProb: act.logProbs[b],
      value: act.values[b],
      reward: 0,
    };
    if (act.introspection) {
      step.memory = {};
      for (const [key, t] of Object.entries(act.introspection)) {
        const size = t.data.length / t.shape[0];
        step.memory[key] = { shape: t.shape.slice(1), data: Array.from(t.data.subarray(b * size, (b + 1) * size)) };
      }
    }
    this.steps.push(step);
    this.features.push(act.features.slice(b * F, (b + 1) * F));
    this.actions.push(act.actionData.slice(b * d.actionDim, (b + 1) * d.actionDim));
  }

  /** Sets the reward of the latest step. */
  reward(r: number): void {
    const last = this.steps[this.steps.length - 1];
    if (last) last.reward = r;
  }

  /** The episode, with the saliency over its past of the steps `saliency` names. */
  async finish(stream: number, saliency: SaliencySteps): Promise<RecordedEpisode> {
    const L = this.steps.length;
    const chosen =
      saliency === true ? this.steps.map((_, t) => t) : saliency === false ? [] : [...new Set(saliency.map((t) => (t < 0 ? L + t : t)))];
    const steps = chosen.filter((t) => t >= 0 && t < L).sort((a, b) => a - b);
    if (steps.length) {
      const F = this.agent.encoder.dim;
      const A = this.agent.distribution.actionDim;
      const features = new Float32Array(L * F);
      const actions = new Float32Array(L * A);
      this.features.forEach((f, t) => features.set(f, t * F));
      this.actions.forEach((a, t) => actions.set(a, t * A));
      const episodeStart = new Float32Array(L);
      episodeStart[0] = 1;
      const batch = { batch: 1, length: L, features, actions, episodeStart };
      const state = this.agent.initialState(1);
      try {
        for (const t of steps) {
          const s = await this.agent.saliency(batch, state, t);
          this.steps[t]!.saliency = Array.from(s.subarray(0, t + 1));
        }
      } finally {
        disposeState(state);
      }
    }
    return { stream, return: this.steps.reduce((a, s) => a + s.reward, 0), steps: this.steps };
  }
}
