/**
 * What the viewer page is given (`ViewerPayload`), and the chart rows it draws from an episode. Node-free and
 * tensor-free: the page bundles it, and tests check the rows against the recording.
 */
import type { RecordedEpisode, Recording } from './episode.js';

export interface ViewerPayload {
  title?: string;
  recording?: Recording;
  /** An exported agent for live mode: its run config (or `trainer.json`) and `weights.safetensors` in base64. */
  agent?: { config: unknown; weights: string };
  /** tfjs-backend-wasm's SIMD binary in base64 (the page has no server to fetch it from). */
  wasm?: string;
}

/** One heat-map cell: query step t attends to key step `key` with weight w. */
export interface AttentionCell {
  t: number;
  key: number;
  head: number;
  w: number;
}

/**
 * The `<layer>.attention` rows of every step as cells: slot i of the window is the step S − 1 − i back, and slots
 * before the episode's first step are left out.
 */
export function attentionCells(ep: RecordedEpisode, layer: string): AttentionCell[] {
  const cells: AttentionCell[] = [];
  ep.steps.forEach((step, t) => {
    const a = step.memory?.[`${layer}.attention`];
    if (!a) return;
    const [H, S] = a.shape as [number, number];
    for (let h = 0; h < H; h++)
      for (let i = 0; i < S; i++) {
        const key = t - (S - 1 - i);
        if (key >= 0) cells.push({ t, key, head: h, w: a.data[h * S + i]! });
      }
  });
  return cells;
}

export interface SeriesPoint {
  t: number;
  quantity: string;
  head: string;
  value: number;
}

/** Gates (mean of vector γ over its channels, or scalar α^FW/α^KV), β and ‖ΔW_FW‖ of a layer, per head over time. */
export function memorySeries(ep: RecordedEpisode, layer: string): SeriesPoint[] {
  const out: SeriesPoint[] = [];
  ep.steps.forEach((step, t) => {
    const get = (name: string) => step.memory?.[`${layer}.${name}`];
    const perHead = (quantity: string, name: string, column?: number) => {
      const x = get(name);
      if (!x) return;
      const H = x.shape[0]!;
      const width = x.data.length / H;
      for (let h = 0; h < H; h++) {
        const row = x.data.slice(h * width, (h + 1) * width);
        const value = column === undefined ? row.reduce((a, b) => a + b, 0) / width : row[column]!;
        out.push({ t, quantity, head: `h${h}`, value });
      }
    };
    perHead('γ (FW share, mean)', 'gate');
    perHead('α FW', 'alpha', 0);
    perHead('α KV', 'alpha', 1);
    perHead('β', 'beta');
    perHead('‖ΔW FW‖', 'fwUpdate');
  });
  return out;
}

/** Saliency rows: for step t, past step j's magnitude s. */
export function saliencyBars(ep: RecordedEpisode): { t: number; j: number; s: number }[] {
  return ep.steps.flatMap((step, t) => (step.saliency ?? []).map((s, j) => ({ t, j, s })));
}
