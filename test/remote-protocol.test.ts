/** The wire format of envs/remote/protocol.ts: framing, arrays, batching per space, and rejection of bad input. */
import { describe, expect, it } from 'vitest';
import seedrandom from 'seedrandom';
import { Box, Dict, Discrete, MultiBinary, MultiDiscrete, Tuple, type Space } from '../envs/spaces.js';
import {
  NDArray,
  ProtocolError,
  batchValues,
  decodeMessage,
  encodeMessage,
  unbatchValues,
} from '../envs/remote/protocol.js';
import { echoSpace } from './fixtures/remote-helpers.js';

const roundTrip = (h: Record<string, unknown>) => decodeMessage(encodeMessage({ type: 'x', ...h }));

describe('remote protocol framing', () => {
  it('carries typed arrays as raw frames with dtype and shape, and non-finite floats', () => {
    const frames = encodeMessage({ type: 'x', a: new NDArray('float32', [2, 2], Float32Array.from([1, 2, 3, 4])) });
    expect(frames).toHaveLength(2);
    expect(frames[1].length).toBe(16);
    expect(JSON.parse(frames[0].toString())).toEqual({ type: 'x', a: { $nd: 1, dtype: 'float32', shape: [2, 2] } });
    const back = roundTrip({
      a: Float64Array.from([1.5, -2]),
      b: BigInt64Array.from([5n, -7n]),
      c: { d: [Infinity, -Infinity, NaN, 3] },
      e: new Uint8Array([1, 2, 3]),
    });
    expect((back.a as NDArray).data).toEqual(Float64Array.from([1.5, -2]));
    expect((back.b as NDArray).at(1)).toBe(-7);
    expect(back.c).toEqual({ d: [Infinity, -Infinity, NaN, 3] });
    expect(back.e).toEqual(new NDArray('uint8', [3], new Uint8Array([1, 2, 3])));
  });

  it('rejects bad frames with a ProtocolError that says what is wrong', () => {
    const h = (o: unknown) => Buffer.from(JSON.stringify(o));
    const f32 = Buffer.from(new Float32Array(4).buffer);
    const bad: [Buffer[], RegExp][] = [
      [[], /empty message/],
      [[Buffer.from('{nope')], /not valid JSON/],
      [[h([1])], /JSON object with a string "type"/],
      [[h({ type: 'x', a: { $nd: 2, dtype: 'float32', shape: [4] } }), f32], /names no frame/],
      [[h({ type: 'x', a: { $nd: 1, dtype: 'float16', shape: [4] } }), f32], /unknown dtype "float16"/],
      [[h({ type: 'x', a: { $nd: 1, dtype: 'float32', shape: [5] } }), f32], /has 16 bytes but .* needs 20/],
      [[h({ type: 'x', a: { $nd: 1, dtype: 'float32', shape: [2.5] } }), f32], /bad shape/],
      [[h({ type: 'x', a: { $f: 'big' } })], /bad non-finite float/],
    ];
    for (const [frames, msg] of bad) expect(() => decodeMessage(frames)).toThrow(msg);
    expect(() => decodeMessage([h({ type: 'x' }), Buffer.alloc(100)], 50)).toThrow(/exceeds the limit of 50 bytes/);
    expect(() => decodeMessage([Buffer.from('{')])).toThrow(ProtocolError);
  });
});

describe('batching per space', () => {
  const spaces: Space[] = [
    new Discrete(4, -1),
    new Box(-1, 1, [2, 3]),
    new MultiDiscrete([2, 5]),
    new MultiBinary([3]),
    new Tuple([new Discrete(2), new Box(0, 1, [2])]),
    new Dict({ b: new MultiBinary(2), a: new Discrete(3) }),
    echoSpace(),
  ];
  for (const space of spaces)
    it(`round-trips batches of ${space}`, () => {
      const rng = seedrandom(String(space));
      const values = Array.from({ length: 5 }, () => space.sample(rng));
      const wire = roundTrip({ v: batchValues(space.toJSON(), values) }).v;
      const back = unbatchValues(space.toJSON(), wire, 5);
      expect(back).toEqual(values);
      back.forEach((x) => expect(space.contains(x)).toBe(true));
    });

  it('batches Box leaves as one [n, ...shape] array and converts other dtypes on the way in', () => {
    const box = new Box(0, 10, [2]).toJSON();
    const wire = batchValues(box, [Float32Array.from([1, 2]), Float32Array.from([3, 4])]) as NDArray;
    expect(wire.shape).toEqual([2, 2]);
    const fromF64 = new NDArray('float64', [2, 2], Float64Array.from([1, 2, 3, 4]));
    expect(unbatchValues(box, fromF64, 2)).toEqual([Float32Array.from([1, 2]), Float32Array.from([3, 4])]);
  });

  it('rejects values and batches that do not fit the space', () => {
    const box = new Box(0, 1, [3]).toJSON();
    expect(() => batchValues(box, [new Float32Array(2)], 'action')).toThrow(/action 0: expected a typed array of 3/);
    expect(() => batchValues(new Discrete(2).toJSON(), [0.5])).toThrow(/expected an integer/);
    expect(() => unbatchValues(box, new NDArray('float32', [2, 2], new Float32Array(4)), 2)).toThrow(
      /expected shape \[2, 3\], got \[2, 2\]/,
    );
    expect(() => unbatchValues(new Tuple([new Discrete(2)]).toJSON(), {}, 1)).toThrow(/list of 1 batches/);
  });
});
