/**
 * What the viewer draws besides charts: the envs' `rgb_array` frames (rendering changes no dynamics), frames'
 * round trip through the episodes file, and `hqlt view --serve`'s server.
 */
import { describe, expect, it } from 'vitest';
import { Discrete, Env, make, registeredIds, type ResetResult, type RgbImage, type StepResult } from '../envs/index.js';
import { decodeFrame, enableRender, encodeFrame, renderOf, type RecordedStep, type Recording } from '../training/viewer/episode.js';
import { decodeRecording, encodeRecording } from '../training/viewer/episode-file.js';
import { serveHtml } from '../training/viewer/html.js';
import { makeRng } from '../util/random.js';

/** Plays `steps` fixed actions (three steps each way in turn); returns the observations and the frames. */
function play(id: string, render: boolean, steps: number) {
  const env: Env = make(id);
  if (render) enableRender(env);
  const obs: unknown[] = [env.reset({ seed: 5 }).obs];
  const frames: (RgbImage | string | undefined)[] = [render ? env.render() : undefined];
  for (let t = 0; t < steps; t++) {
    const r = env.step(Math.floor(t / 3) % (env.actionSpace as Discrete).n);
    obs.push(r.obs);
    frames.push(render ? env.render() : undefined);
    if (r.terminated || r.truncated) break;
  }
  env.close();
  return { obs, frames };
}

describe('rgb_array renders', () => {
  it.each([
    ['PassiveTMaze-v0', 11 * 16, 3 * 16],
    ['popgym-LabyrinthEscapeEasy-v0', 0, 0],
    ['popgym-PositionOnlyCartPoleEasy-v0', 240, 120],
    ['PassiveVisualMatchShort-v0', 88, 56],
  ])('%s draws RGB frames and rendering changes nothing', (id, width, height) => {
    const drawn = play(id, true, 24);
    expect(drawn.obs).toEqual(play(id, false, 24).obs);
    for (const f of drawn.frames) {
      const img = f as RgbImage;
      expect(img.data).toBeInstanceOf(Uint8Array);
      expect(img.data.length).toBe(img.width * img.height * 3);
      if (width) expect([img.width, img.height]).toEqual([width, height]);
    }
    // The picture changes as the agent moves (or the pole falls).
    const bytes = drawn.frames.map((f) => Buffer.from((f as RgbImage).data).toString('base64'));
    expect(new Set(bytes).size).toBeGreaterThan(1);
  });

  it('every env that lists rgb_array draws [H, W, 3] bytes of one size through a whole episode, and records them', () => {
    const ids = registeredIds().filter((id) => make(id).unwrapped.metadata.renderModes.includes('rgb_array'));
    expect(ids.filter((id) => id.startsWith('popgym-')).length).toBeGreaterThanOrEqual(9 * 4 + 2 * 4); // the games and pendulums too
    for (const id of ids) {
      const env = make(id);
      enableRender(env); // what `hqlt record` does
      const rng = makeRng(id);
      env.reset({ seed: 3 });
      const first = renderOf(env).frame!;
      expect(first, id).toBeDefined();
      const frames = new Set<string>([first.rgb]);
      // Frames after every step, the last (terminal) one included.
      for (let t = 0, over = false; t < 1100 && !over; t++) {
        const r = env.step(env.actionSpace.sample(rng));
        over = r.terminated || r.truncated;
        const { frame } = renderOf(env);
        expect([frame?.width, frame?.height], `${id} at step ${t}`).toEqual([first.width, first.height]);
        expect(decodeFrame(frame!).length).toBe(first.width * first.height * 3);
        frames.add(frame!.rgb);
      }
      expect(frames.size, `${id}'s picture never changes`).toBeGreaterThan(1);
      env.close();
    }
  });

  it('envs without rgb_array give their text render, and frames survive the episodes file', () => {
    class TextOnly extends Env<number, number> {
      readonly observationSpace = new Discrete(2);
      readonly actionSpace = new Discrete(2);
      override readonly metadata = { renderModes: ['ansi'] };
      protected resetEnv(): ResetResult<number> {
        return { obs: 0, info: {} };
      }
      protected stepEnv(): StepResult<number> {
        return { obs: 0, reward: 0, terminated: true, truncated: false, info: {} };
      }
      override render(): string | undefined {
        return this.renderMode === 'ansi' ? 'text' : undefined;
      }
    }
    const env = new TextOnly();
    enableRender(env);
    expect(renderOf(env)).toEqual({ text: 'text' });
    const tmaze = make('PassiveTMazeShort-v0');
    enableRender(tmaze);
    tmaze.reset({ seed: 1 });
    const img = tmaze.render() as RgbImage;
    const { frame } = renderOf(tmaze);
    expect(decodeFrame(frame!)).toEqual(img.data);
    expect(encodeFrame(img)).toEqual(frame);
  });

  it('the card games draw the state their text shows', () => {
    const env = make('popgym-RepeatPreviousEasy-v0', { renderMode: 'rgb_array' });
    env.reset({ seed: 1 });
    for (let t = 0; t < 5; t++) env.step(0);
    const img = env.render() as RgbImage;
    expect([img.width, img.height]).toEqual([4 * 16, 16]); // k = 4 cards in a row
    // The oldest card of the window, the answer, is highlighted; the others are plain card faces.
    const pixel = (x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    expect(pixel(2, 2)).toEqual([255, 215, 60]);
    expect(pixel(16 + 2, 2)).toEqual([250, 250, 240]);
    env.unwrapped.renderMode = 'ansi';
    expect(env.render()).toMatch(/^RepeatPrevious k=4 {2}dealt 6\/52/);
  });
});

describe('binary episodes files', () => {
  it('give back the JSON form of any steps: ragged, mixed, non-float32 and non-numeric values', () => {
    const step = (t: number): RecordedStep => ({
      obs: t % 2 ? [1, 0.5] : 3, // an array at some steps, a number at others
      ...(t === 1 ? { text: 'no frame' } : { frame: encodeFrame({ width: 2, height: 1, data: Uint8Array.of(t, 2, 3, 4, 5, 255) }) }),
      action: { move: t, say: 'hi', nested: [[t], [0.1]] },
      policy: [],
      logProb: NaN, // JSON writes null
      value: Math.fround(0.3),
      reward: 1 / 3, // float32 can't hold it
      ...(t === 0 ? {} : { saliency: Array.from({ length: t + 1 }, (_, j) => j / 4) }),
      memory: { 'layers.0.beta': { shape: [1], data: [t] } },
    });
    const recording = {
      format: 'hqlt-episodes',
      version: 1,
      env: 'x',
      envKwargs: { a: [1, 2] },
      core: { type: 'gru', dim: 4 },
      seed: 1,
      deterministic: true,
      policy: 'probabilities',
      episodes: [{ stream: 0, return: 1, steps: [0, 1, 2, 3].map(step) }, { stream: 1, return: 0, steps: [] }],
    } as unknown as Recording;
    const bytes = encodeRecording(recording);
    expect(decodeRecording(bytes, 'test')).toEqual(JSON.parse(JSON.stringify(recording)));
    expect(() => decodeRecording(bytes.subarray(0, bytes.length - 1), 'cut.safetensors')).toThrow(/cut\.safetensors: truncated or corrupt/);
  });
});

describe('hqlt view --serve', () => {
  it('serves the page on 127.0.0.1', async () => {
    const { url, server } = await serveHtml('<!doctype html><p>hi</p>', 0);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const res = await fetch(url);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(await res.text()).toBe('<!doctype html><p>hi</p>');
      expect((await fetch(`${url}other`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
