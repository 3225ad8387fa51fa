/** Tiny raster helpers for `rgb_array` renders (plain bytes, no canvas: envs run in Node, workers and browsers). */
import type { RgbImage } from './env.js';

export type Rgb = readonly [number, number, number];

/** An RGB byte image to paint into. */
export class Raster {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb,
  ) {
    this.data = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  /** Fills the pixels [x0, x0 + w) × [y0, y0 + h), clipped to the image. */
  fillRect(x0: number, y0: number, w: number, h: number, rgb: Rgb): void {
    const xa = Math.max(0, Math.round(x0));
    const ya = Math.max(0, Math.round(y0));
    const xb = Math.min(this.width, Math.round(x0 + w));
    const yb = Math.min(this.height, Math.round(y0 + h));
    const [r, g, b] = rgb;
    const d = this.data;
    // Byte writes, not `set` per pixel: recordings paint every frame of an episode, and `set` is ~50× slower here.
    for (let y = ya; y < yb; y++)
      for (let i = (y * this.width + xa) * 3, end = (y * this.width + xb) * 3; i < end; i += 3) {
        d[i] = r;
        d[i + 1] = g;
        d[i + 2] = b;
      }
  }

  /** A line of square dots `thickness` wide from (x0, y0) to (x1, y1). */
  line(x0: number, y0: number, x1: number, y1: number, thickness: number, rgb: Rgb): void {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      this.fillRect(x - thickness / 2, y - thickness / 2, thickness, thickness, rgb);
    }
  }

  image(): RgbImage {
    return { width: this.width, height: this.height, data: this.data };
  }
}

/** A grid of `cols` × `rows` squares of `scale` pixels, each coloured by `colour(col, row)` (row 0 on top). */
export function paintCells(cols: number, rows: number, scale: number, colour: (col: number, row: number) => Rgb): RgbImage {
  const grid = Array.from({ length: rows }, (_, row) => Array.from({ length: cols }, (_, col) => ({ fill: colour(col, row) })));
  return paintBoard(grid, { scale, gap: 0 });
}

/** One square of a board picture: its colour and an optional mark in `ink` (black by default). */
export interface Square {
  fill: Rgb;
  /** Characters of `GLYPHS` ('\n' starts a line), drawn centred at the largest whole scale that fits. */
  mark?: string;
  ink?: Rgb;
}

/**
 * Rows of squares (row 0 on top, rows as long as the first) as an image: `scale` pixels a square, `gap` pixels of
 * `background` between squares (so cards read as tiles).
 */
export function paintBoard(rows: readonly (readonly Square[])[], opts: { scale?: number; gap?: number; background?: Rgb } = {}): RgbImage {
  const { scale = 16, gap = 1, background = [90, 90, 90] } = opts;
  const cols = rows[0]?.length ?? 0;
  const r = new Raster(cols * scale, rows.length * scale, background);
  rows.forEach((row, y) =>
    row.forEach((sq, x) => {
      r.fillRect(x * scale + gap, y * scale + gap, scale - 2 * gap, scale - 2 * gap, sq.fill);
      if (sq.mark) drawMark(r, sq.mark, x * scale + gap, y * scale + gap, scale - 2 * gap, sq.ink ?? [0, 0, 0]);
    }),
  );
  return r.image();
}

/**
 * A pixel font for marks: digits, card ranks and suits, and a few symbols, as rows of '#' (on) and '.' (off). Glyphs
 * of a line are 1 pixel apart, lines 1 pixel apart.
 */
const GLYPHS: Readonly<Record<string, readonly string[]>> = {
  '0': ['###', '#.#', '#.#', '#.#', '###'],
  '1': ['.#.', '##.', '.#.', '.#.', '###'],
  '2': ['###', '..#', '###', '#..', '###'],
  '3': ['###', '..#', '.##', '..#', '###'],
  '4': ['#.#', '#.#', '###', '..#', '..#'],
  '5': ['###', '#..', '###', '..#', '###'],
  '6': ['###', '#..', '###', '#.#', '###'],
  '7': ['###', '..#', '.#.', '.#.', '.#.'],
  '8': ['###', '#.#', '###', '#.#', '###'],
  '9': ['###', '#.#', '###', '..#', '###'],
  A: ['.#.', '#.#', '###', '#.#', '#.#'],
  J: ['..#', '..#', '..#', '#.#', '.#.'],
  Q: ['.#.', '#.#', '#.#', '##.', '.##'],
  K: ['#.#', '##.', '#..', '##.', '#.#'],
  '?': ['##.', '..#', '.#.', '...', '.#.'],
  '*': ['#.#', '.#.', '###', '.#.', '#.#'],
  '■': ['#####', '#####', '#####', '#####', '#####'],
  '♠': ['..#..', '.###.', '#####', '..#..', '.###.'],
  '♦': ['..#..', '.###.', '#####', '.###.', '..#..'],
  '♣': ['.###.', '.###.', '#####', '#####', '..#..'],
  '♥': ['.#.#.', '#####', '#####', '.###.', '..#..'],
};
const GLYPH_HEIGHT = 5;

/** Draws `mark` centred in the `size`-pixel square at (x0, y0). */
function drawMark(r: Raster, mark: string, x0: number, y0: number, size: number, ink: Rgb): void {
  const lines = mark.split('\n').map((line) =>
    [...line].map((ch) => {
      const g = GLYPHS[ch];
      if (!g) throw new Error(`paintBoard: no glyph for ${JSON.stringify(ch)} in mark ${JSON.stringify(mark)}; marks use ${Object.keys(GLYPHS).join(' ')}.`);
      return g;
    }),
  );
  const widthOf = (glyphs: readonly (readonly string[])[]) => glyphs.reduce((w, g) => w + g[0]!.length + 1, -1);
  const w = Math.max(...lines.map(widthOf));
  const h = lines.length * (GLYPH_HEIGHT + 1) - 1;
  // The largest whole scale that leaves a pixel of margin; marks too big for the square are drawn at 1 and clipped.
  const s = Math.max(1, Math.floor(Math.min((size - 2) / w, (size - 2) / h)));
  let y = y0 + Math.floor((size - h * s) / 2);
  for (const glyphs of lines) {
    let x = x0 + Math.floor((size - widthOf(glyphs) * s) / 2);
    for (const g of glyphs) {
      g.forEach((row, gy) => [...row].forEach((c, gx) => c === '#' && r.fillRect(x + gx * s, y + gy * s, s, s, ink)));
      x += (g[0]!.length + 1) * s;
    }
    y += (GLYPH_HEIGHT + 1) * s;
  }
}
