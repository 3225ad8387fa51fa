import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../memory/backend.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../util/safetensors.js';
import { RecurrentMixer } from '../memory/recurrent.js';
import { exportWeights, importWeights, weightsToTensors } from '../memory/weights.js';
import { makeRng } from '../util/random.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'hqlt-st-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw file from a header object and data bytes, for hand-made bad files. */
function rawFile(header: unknown, data = new Uint8Array(0)): Buffer {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

describe('safetensors format', () => {
  it('reads a file written by an independent python writer (F32, F16, BF16, F64, scalar, metadata)', () => {
    const f = readSafetensors(join(FIXTURES, 'handmade.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt', made_by: 'make_fixtures.py' });
    expect(f.tensors['a.f32']).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(Array.from(f.tensors['a.f32'].data)).toEqual([0, 0.25, 0.5, 0.75, 1, 1.25]);
    expect(f.tensors['b.f16'].dtype).toBe('F16');
    const half = Array.from(f.tensors['b.f16'].data);
    expect(half.slice(0, 3)).toEqual([1.5, -2.25, 65504]);
    expect(half[3]).toBeCloseTo(5.96e-8, 9); // the nearest float16 subnormal to 6e-8
    expect(f.tensors['c.f64'].shape).toEqual([2, 1]);
    expect(f.tensors['c.f64'].data[0]).toBeCloseTo(1e-3, 9);
    expect(f.tensors['c.f64'].data[1]).toBe(-7);
    const bf = Array.from(f.tensors['d.bf16'].data);
    expect(bf.slice(0, 2)).toEqual([3, -0.5]);
    expect(Math.abs(bf[2] / 1e10 - 1)).toBeLessThan(1 / 128); // bf16 keeps 8 bits of mantissa
    expect(f.tensors['e.scalar']).toMatchObject({ shape: [] });
    expect(f.tensors['e.scalar'].data[0]).toBe(42);
  });

  it('round-trips through encode/decode with 8-byte-aligned data and metadata', () => {
    const tensors = { w: { shape: [2, 2], data: new Float32Array([1, -2, 3.5, 1e-30]) }, b: { shape: [0], data: new Float32Array(0) } };
    const bytes = encodeSafetensors(tensors, { note: 'x' });
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ note: 'x' });
    expect(back.tensors.w.shape).toEqual([2, 2]);
    expect(Array.from(back.tensors.w.data)).toEqual(Array.from(tensors.w.data));
    expect(back.tensors.b.shape).toEqual([0]);
  });

  it('writes atomically (no temp file left behind) and rejects inconsistent tensors', () => {
    const path = join(dir, 'atomic.safetensors');
    writeSafetensors(path, { x: { shape: [3], data: new Float32Array([1, 2, 3]) } });
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(Array.from(readSafetensors(path).tensors.x.data)).toEqual([1, 2, 3]);
    expect(() => encodeSafetensors({ x: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(/shape \[2, 2\] but 3 values/);
  });

  it.each([
    ['a truncated length', Buffer.from([1, 2, 3]), /truncated.*too short/],
    ['a truncated header', rawFile({}).subarray(0, 9), /truncated: the header says it is 2 bytes/],
    ['bad header JSON', Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{x:')]), /not valid JSON/],
    ['a huge header length', Buffer.from([255, 255, 255, 255, 255, 255, 0, 0, 0]), /implausible/],
    ['a non-object header', rawFile([1, 2]), /must be a JSON object/],
    ['an unsupported dtype', rawFile({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /unsupported dtype "I64"/],
    ['offsets past the end', rawFile({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)), /tensor 't' ends at data byte 8 but the data section has 4/],
    ['offsets that disagree with the shape', rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /span 8 bytes but F32 \[3\] needs 12/],
    ['a bad shape', rawFile({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /shape must be a list of non-negative integers/],
    ['bad metadata', rawFile({ __metadata__: { n: 1 } }), /__metadata__' must be an object of string values/],
  ])('rejects %s with a clear error', (_, bytes, message) => {
    expect(() => decodeSafetensors(bytes, 'bad.safetensors')).toThrow(message);
  });

  it('names the file when it cannot be read', () => {
    expect(() => readSafetensors(join(dir, 'nope.safetensors'))).toThrow(/Cannot read safetensors file .*nope\.safetensors/);
  });
});

describe('weight export and import', () => {
  const make = (seed: number, dim = 3) => new RecurrentMixer('gru', dim, makeRng(seed));

  it('round-trips exactly, in the PyTorch [out, in] layout', async () => {
    const a = make(1);
    const b = make(2);
    const path = join(dir, 'gru.safetensors');
    await exportWeights(a, path, { kind: 'gru' });
    const file = readSafetensors(path);
    expect(file.metadata).toEqual({ kind: 'gru' });
    expect(file.tensors.weight_ih_l0.shape).toEqual([9, 3]);
    expect(file.tensors.bias_hh_l0.shape).toEqual([9]);
    const before = await weightsToTensors(b);
    expect(before.weight_ih_l0.data).not.toEqual(file.tensors.weight_ih_l0.data);
    importWeights(b, path);
    const [wa, wb] = [await weightsToTensors(a), await weightsToTensors(b)];
    for (const name of Object.keys(wa)) expect(wb[name].data).toEqual(wa[name].data);
    // [out, in] on disk: row r of weight_ih_l0 is column r of the [in, out] variable.
    const variable = a.namedWeights()[0].variable.arraySync() as number[][];
    expect(file.tensors.weight_ih_l0.data[1 * 3 + 2]).toBe(variable[2][1]);
    a.dispose();
    b.dispose();
  });

  it('reports missing, unexpected and mis-shaped weights, and changes nothing', async () => {
    const a = make(1);
    const path = join(dir, 'bad-names.safetensors');
    const good = await weightsToTensors(a);
    const { bias_hh_l0: _dropped, ...rest } = good;
    writeSafetensors(path, { ...rest, extra: { shape: [1], data: new Float32Array(1) }, weight_hh_l0: { shape: [3, 9], data: new Float32Array(27) } });
    expect(() => importWeights(a, path)).toThrow(
      /bad-names\.safetensors does not match the model's weights \(4 expected\): missing: bias_hh_l0; unexpected: extra; 'weight_hh_l0' has shape \[3, 9\], expected \[9, 3\]/,
    );
    const after = await weightsToTensors(a);
    for (const name of Object.keys(good)) expect(after[name].data).toEqual(good[name].data);
    a.dispose();
  });

  it('rejects a file of a non-float dtype, naming it', () => {
    const a = make(1);
    expect(() => importWeights(a, join(FIXTURES, 'int32.safetensors'))).toThrow(/int32\.safetensors: tensor 'ids' has unsupported dtype "I32"/);
    a.dispose();
  });

  it('rejects a truncated weights file', async () => {
    const a = make(1);
    const path = join(dir, 'trunc.safetensors');
    await exportWeights(a, path);
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 10));
    expect(() => importWeights(a, path)).toThrow(/truncated or corrupt/);
    a.dispose();
  });
});
