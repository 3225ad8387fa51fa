/**
 * What the viewer draws besides charts: the envs' `rgb_array` frames (rendering changes no dynamics), frames'
 * round trip through the episodes file, and `hqlt view --serve`'s server.
 */
import { describe, expect, it } from 'vitest';
import { make, type Discrete, type Env, type RgbImage } from '../envs/index.js';
import { decodeFrame, enableRender, encodeFrame, renderOf } from '../training/viewer/episode.js';
import { serveHtml } from '../training/viewer/html.js';

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

  it('envs without one give their text render, and frames survive the episodes file', () => {
    const env = make('popgym-RepeatPreviousEasy-v0');
    enableRender(env);
    env.reset({ seed: 1 });
    expect(typeof renderOf(env).text).toBe('string');
    const tmaze = make('PassiveTMazeShort-v0');
    enableRender(tmaze);
    tmaze.reset({ seed: 1 });
    const img = tmaze.render() as RgbImage;
    const { frame } = renderOf(tmaze);
    expect(decodeFrame(frame!)).toEqual(img.data);
    expect(encodeFrame(img)).toEqual(frame);
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
