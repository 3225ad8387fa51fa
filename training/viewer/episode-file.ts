/**
 * Episodes files on disk, in either of two formats chosen by the file's extension, and gzipped when it ends in
 * `.gz` (frames are flat colours: gzip shrinks them ~100×):
 *
 * - `.json`: the `Recording` as JSON.
 * - `.safetensors`: the same recording in a safetensors container (readable by other safetensors tools).
 *   Every numeric leaf of the steps (observation, action, policy, value, reward, memory internals, saliency, ...)
 *   is stacked over an episode's steps into one tensor per path, e.g. `episodes.0.memory.layers.0.attention.data`:
 *   frames as U8 bytes, values that float32 holds exactly (all but rewards, in practice) as F32, other numbers as
 *   F64. The rest of the recording, with a placeholder at each stacked leaf, is JSON in the metadata. Reading
 *   gives back what reading the JSON file gives, value for value.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeFileAtomicSync } from '../../util/files.js';
import { decodeSafetensorsRaw, encodeSafetensors, type RawTensor, type StoredArray } from '../../util/safetensors.js';
import { base64ToBytes, bytesToBase64, checkRecording, type Recording } from './episode.js';

export interface RecordingFormat {
  format: 'json' | 'safetensors';
  gzip: boolean;
}

/** The format a path's extension names; a clear error for any other extension. */
export function recordingFormat(path: string): RecordingFormat {
  const gzip = path.toLowerCase().endsWith('.gz');
  const ext = extname(gzip ? path.slice(0, -3) : path).toLowerCase();
  if (ext === '.json' || ext === '.safetensors') return { format: ext === '.json' ? 'json' : 'safetensors', gzip };
  throw new Error(
    `${path}: an episodes file ends in .json or .safetensors (binary), either with .gz to compress it ` +
      `(episodes.safetensors.gz is the smallest); got ${extname(path) ? `'${extname(path)}'` : 'no extension'}.`,
  );
}

/** Writes a recording atomically, in the format of `path`'s extension. */
export function writeRecording(path: string, recording: Recording): void {
  const { format, gzip } = recordingFormat(path);
  const bytes = format === 'json' ? Buffer.from(JSON.stringify(recording)) : encodeRecording(recording);
  writeFileAtomicSync(path, gzip ? gzipSync(bytes) : bytes);
}

/** Reads and checks an episodes file of any of the formats. */
export function readRecording(path: string): Recording {
  const { format, gzip } = recordingFormat(path);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
    if (gzip) bytes = gunzipSync(bytes);
  } catch (err) {
    throw new Error(`Cannot read the episodes file ${path}: ${(err as Error).message}`);
  }
  return format === 'json' ? checkRecording(JSON.parse(bytes.toString('utf8')), path) : decodeRecording(bytes, path);
}

/** A stacked leaf: how its steps are stored, and the placeholder left in the JSON (its type tells the kind back). */
type Kind = 'number' | 'array' | 'bytes';
const PLACEHOLDER: Record<Kind, unknown> = { number: 0, array: [], bytes: '' };
type Path = (string | number)[];

/** One stacked path of one episode: the tensor holding it, and each step's length where they differ. */
interface Column {
  tensor: string;
  episode: number;
  path: Path;
  kind: Kind;
  sizes?: number[];
}

/** Frames' RGB bytes are base64 strings at `frame.rgb`: stored as the bytes. */
const isFrameBytes = (path: Path) => path.length === 2 && path[0] === 'frame' && path[1] === 'rgb';

function kindOf(x: unknown, path: Path): Kind | undefined {
  if (typeof x === 'number') return 'number';
  if (typeof x === 'string' && isFrameBytes(path)) return 'bytes';
  if (Array.isArray(x) && x.every((v) => typeof v === 'number')) return 'array';
  return undefined;
}

/** The recording as a safetensors file (see the module comment). */
export function encodeRecording(recording: Recording): Buffer {
  // From its JSON form, so that the file holds exactly what the JSON file would (NaN as null, no undefined keys).
  const skeleton = JSON.parse(JSON.stringify(recording)) as Recording;
  const columns: Column[] = [];
  const tensors: Record<string, RawTensor> = {};
  skeleton.episodes.forEach((episode, e) => {
    const stacks = new Map<string, { kind: Kind; path: Path; parts: (number[] | Uint8Array)[] }>();
    const strip = (x: unknown, path: Path): unknown => {
      const kind = kindOf(x, path);
      if (kind) {
        const key = `${kind} ${JSON.stringify(path)}`;
        if (!stacks.has(key)) stacks.set(key, { kind, path, parts: [] });
        stacks.get(key)!.parts.push(kind === 'number' ? [x as number] : kind === 'bytes' ? base64ToBytes(x as string) : (x as number[]));
        return PLACEHOLDER[kind];
      }
      if (Array.isArray(x)) return x.map((v, i) => strip(v, [...path, i]));
      if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, strip(v, [...path, k])]));
      return x;
    };
    episode.steps = episode.steps.map((step) => strip(step, []) as typeof step);
    for (const { kind, path, parts } of stacks.values()) {
      const sizes = parts.map((p) => p.length);
      const flat = parts.flatMap((p) => Array.from(p));
      const data: StoredArray =
        kind === 'bytes' ? Uint8Array.from(flat) : flat.every((v) => Math.fround(v) === v) ? Float32Array.from(flat) : Float64Array.from(flat);
      let tensor = `episodes.${e}.${path.join('.')}`;
      if (tensor in tensors) tensor += `.${kind}`; // the same path holding numbers at some steps and arrays at others
      const regular = kind === 'number' || sizes.every((n) => n === sizes[0]);
      tensors[tensor] = { shape: kind === 'number' ? [parts.length] : regular ? [parts.length, sizes[0]!] : [flat.length], data };
      columns.push({ tensor, episode: e, path, kind, ...(regular ? {} : { sizes }) });
    }
  });
  return encodeSafetensors(tensors, { format: recording.format, recording: JSON.stringify(skeleton), columns: JSON.stringify(columns) });
}

/** Reads a recording back from `encodeRecording`'s bytes; `source` names the file in errors. */
export function decodeRecording(bytes: Uint8Array, source: string): Recording {
  const { tensors, metadata } = decodeSafetensorsRaw(bytes, source);
  if (metadata.recording === undefined || metadata.columns === undefined)
    throw new Error(`${source} is a safetensors file but not an episodes file of \`hqlt record\` (its metadata has no recording).`);
  const recording = checkRecording(JSON.parse(metadata.recording), source);
  for (const column of JSON.parse(metadata.columns) as Column[]) {
    const t = tensors[column.tensor];
    if (!t) throw new Error(`${source}: tensor '${column.tensor}' is missing; the file is damaged, record it again.`);
    const steps = recording.episodes[column.episode]?.steps ?? [];
    const key = column.path[column.path.length - 1]!;
    let offset = 0;
    let k = 0;
    for (const step of steps) {
      const parent = column.path.slice(0, -1).reduce<unknown>((x, p) => (x as Record<string | number, unknown> | undefined)?.[p], step) as
        | Record<string | number, unknown>
        | undefined;
      // Every leaf of a stacked kind was stripped, so a placeholder of this column's kind is one of its steps.
      if (!parent || !isPlaceholder(parent[key], column.kind)) continue;
      const n = column.kind === 'number' ? 1 : (column.sizes?.[k] ?? t.shape[1]!);
      const part = t.data.subarray(offset, offset + n);
      parent[key] = column.kind === 'number' ? part[0] : column.kind === 'bytes' ? bytesToBase64(part as Uint8Array) : Array.from(part);
      offset += n;
      k++;
    }
  }
  return recording;
}

function isPlaceholder(x: unknown, kind: Kind): boolean {
  return kind === 'array' ? Array.isArray(x) && x.length === 0 : x === PLACEHOLDER[kind];
}
