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
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) this.data.set(rgb, (y * this.width + x) * 3);
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
  const r = new Raster(cols * scale, rows * scale, [0, 0, 0]);
  for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) r.fillRect(col * scale, row * scale, scale, scale, colour(col, row));
  return r.image();
}
