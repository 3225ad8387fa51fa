/**
 * The safetensors file format (https://huggingface.co/docs/safetensors), pure: bytes in, typed arrays out.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets:
 * [begin, end]}, "__metadata__"?: {string: string}}`, then the raw little-endian data; offsets are relative to
 * the start of the data. Weights are written as F32 and read from F32, F16, BF16 and F64 (converted to float32);
 * other data (the viewer's episodes files) can be written and read as stored in F32, F64 and U8.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from './files.js';

/** Element types this module can read. */
export const READABLE_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const;
export type SafetensorsDtype = (typeof READABLE_DTYPES)[number];

/** Element types `decodeSafetensorsRaw` reads without conversion, and `encodeSafetensors` writes, by array type. */
export const RAW_DTYPES = ['F32', 'F64', 'U8'] as const;
export type RawDtype = (typeof RAW_DTYPES)[number];
/** An array as stored: F32, F64 or U8. */
export type StoredArray = Float32Array | Float64Array | Uint8Array;

const BYTES: Record<SafetensorsDtype | RawDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, U8: 1 };
/** Headers past this size are refused as corrupt rather than parsed (the reference implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** A float32 tensor in row-major order. */
export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

/** A tensor of any stored type, e.g. frames as U8. */
export interface RawTensor {
  shape: number[];
  data: StoredArray;
}

export interface RawSafetensorsFile {
  tensors: Record<string, RawTensor & { dtype: RawDtype }>;
  metadata: Record<string, string>;
}

/** A tensor as read from a file: converted to float32, with the dtype it was stored in. */
export interface LoadedTensor extends FloatTensor {
  dtype: SafetensorsDtype;
}

export interface SafetensorsFile {
  tensors: Record<string, LoadedTensor>;
  metadata: Record<string, string>;
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function dtypeOf(data: StoredArray): RawDtype {
  return data instanceof Float32Array ? 'F32' : data instanceof Float64Array ? 'F64' : 'U8';
}

/**
 * Encodes tensors (names in sorted order; float32 arrays as F32, float64 as F64, bytes as U8) and optional string
 * metadata as a safetensors file.
 */
export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Buffer {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const { shape, data } = tensors[name];
    if (name === '__metadata__') throw new Error("A tensor cannot be named '__metadata__' (reserved by the format).");
    if (numel(shape) !== data.length) {
      throw new Error(`Tensor '${name}' has shape [${shape.join(', ')}] but ${data.length} values.`);
    }
    const dtype = dtypeOf(data);
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length * BYTES[dtype]] };
    offset += data.length * BYTES[dtype];
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const { data } = tensors[name];
    const view = new DataView(out.buffer, out.byteOffset + pos, data.byteLength);
    if (data instanceof Uint8Array) out.set(data, pos);
    else if (data instanceof Float64Array) for (let i = 0; i < data.length; i++) view.setFloat64(i * 8, data[i], true);
    else for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
    pos += data.byteLength;
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decodeData(dtype: SafetensorsDtype, view: DataView, count: number): Float32Array {
  const out = new Float32Array(count);
  const bf16 = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case 'F32':
        out[i] = view.getFloat32(i * 4, true);
        break;
      case 'F64':
        out[i] = view.getFloat64(i * 8, true);
        break;
      case 'F16':
        out[i] = halfToFloat(view.getUint16(i * 2, true));
        break;
      case 'BF16':
        // bfloat16 is the top half of a float32.
        bf16.setUint32(0, view.getUint16(i * 2, true) << 16);
        out[i] = bf16.getFloat32(0);
        break;
    }
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInts(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);
}

/** Decodes a safetensors file of float tensors; `source` (e.g. the path) prefixes error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): SafetensorsFile {
  return decodeWith(bytes, source, READABLE_DTYPES, (dt, view, count) => decodeData(dt, view, count));
}

/** Decodes a safetensors file of F32, F64 and U8 tensors, each kept in its own array type. */
export function decodeSafetensorsRaw(bytes: Uint8Array, source = 'safetensors data'): RawSafetensorsFile {
  return decodeWith(bytes, source, RAW_DTYPES, (dt, view, count) => {
    if (dt === 'U8') return new Uint8Array(view.buffer, view.byteOffset, count).slice();
    if (dt === 'F32') return decodeData('F32', view, count);
    const out = new Float64Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
    return out;
  });
}

/** Checks the header and reads every tensor of a `readable` dtype with `read`; anything else is an error. */
function decodeWith<D extends string, T>(
  bytes: Uint8Array,
  source: string,
  readable: readonly D[],
  read: (dtype: D, view: DataView, count: number) => T,
): { tensors: Record<string, { dtype: D; shape: number[]; data: T }>; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, too short for the 8-byte header length.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} is implausible: not a safetensors file?`);
  if (8 + headerLen > bytes.length) {
    fail(`truncated: the header says it is ${headerLen} bytes but only ${bytes.length - 8} follow.`);
  }
  let header: unknown;
  try {
    // TextDecoder rather than Buffer: decoding also runs in the browser (the viewer's live mode).
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (err) {
    fail(`the header is not valid JSON (${(err as Error).message}).`);
  }
  if (!isRecord(header)) return fail('the header must be a JSON object of tensors.');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, { dtype: D; shape: number[]; data: T }> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
        fail("'__metadata__' must be an object of string values.");
      }
      Object.assign(metadata, entry);
      continue;
    }
    if (!isRecord(entry)) return fail(`tensor '${name}': entry must be an object with dtype, shape, data_offsets.`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !(readable as readonly string[]).includes(dtype)) {
      fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)} (readable: ${readable.join(', ')}).`);
    }
    const dt = dtype as D;
    if (!isNonNegInts(shape)) return fail(`tensor '${name}': shape must be a list of non-negative integers.`);
    if (!isNonNegInts(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
      return fail(`tensor '${name}': data_offsets must be [begin, end] with 0 <= begin <= end.`);
    }
    const [begin, end] = offsets;
    const expected = numel(shape) * BYTES[dt as SafetensorsDtype | RawDtype];
    if (end - begin !== expected) {
      fail(`tensor '${name}': data_offsets span ${end - begin} bytes but ${dt} [${shape.join(', ')}] needs ${expected}.`);
    }
    if (end > dataLen) {
      fail(`truncated or corrupt: tensor '${name}' ends at data byte ${end} but the data section has ${dataLen}.`);
    }
    const tensorView = new DataView(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin);
    tensors[name] = { dtype: dt, shape, data: read(dt, tensorView, numel(shape)) };
  }
  return { tensors, metadata };
}

/** Reads and decodes a safetensors file. */
export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read safetensors file ${path}: ${(err as Error).message}`);
  }
  return decodeSafetensors(bytes, path);
}

/**
 * Writes tensors to `path` atomically: a temporary file next to it, then a rename, so a crash never
 * leaves a half-written file under the real name.
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, RawTensor>,
  metadata?: Record<string, string>,
): void {
  const bytes = encodeSafetensors(tensors, metadata);
  try {
    writeFileAtomicSync(path, bytes);
  } catch (err) {
    throw new Error(`Cannot write safetensors file ${path}: ${(err as Error).message}`);
  }
}
