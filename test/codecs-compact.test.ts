import { describe, expect, it } from 'vitest';
import { expectEveryFinitePatternDecodes, expectExactRoundTripsAndTiesToEven } from './support/sixteen-bit-formats.js';
import {
  BFLOAT16_MAX,
  CODECS,
  CODEC_NAMES,
  FLOAT32_MAX,
  TOPK_MAX_DIM,
  describeCodec,
  fromBfloat16Bits,
  toBfloat16Bits,
  type VectorCodec,
} from '../shared/protocol/codecs/index.js';
import { expectCodecError } from './support/codec-errors.js';
import { maxAbsError, mulberry32 } from './support/vectors.js';



function roundTripError(codec: VectorCodec, v: ArrayLike<number>, from?: number, to?: number): number {
  return maxAbsError(codec.decode(codec.encode(v), v.length), v, from, to);
}


/** float32 (offset, scale) pairs at the front of an affine encoding. */
function affineHeaders(bytes: Uint8Array, blocks: number): Array<[number, number]> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: blocks }, (_, b) => [dv.getFloat32(8 * b, true), dv.getFloat32(8 * b + 4, true)]);
}

describe('bf16', () => {
  const codec = CODECS.bf16;
  const bitsOf = (x: number): number => {
    const b = codec.encode([x]);
    return b[0]! | (b[1]! << 8);
  };

  it('encodes known values exactly', () => {
    const known: Array<[number, number]> = [
      [1, 0x3f80],
      [-2, 0xc000],
      [0.1, 0x3dcd],
      [0, 0x0000],
      [-0, 0x8000],
      [Math.PI, 0x4049],
      [65504, 0x4780],
      [BFLOAT16_MAX, 0x7f7f],
      [-BFLOAT16_MAX, 0xff7f],
      [2 ** -126, 0x0080],
      [2 ** -133, 0x0001],
      [2 ** -126 - 2 ** -133, 0x007f],
      // Ties go to even.
      [1 + 2 ** -8, 0x3f80],
      [1 + 3 * 2 ** -8, 0x3f82],
      [2 ** -134, 0x0000],
      [3 * 2 ** -134, 0x0002],
      // Just above a midpoint: rounding through float32 first would land on the tie and go to 0x3F80.
      [1 + 2 ** -8 + 2 ** -30, 0x3f81],
      [1e-300, 0x0000],
      // Rounds up across a binade boundary.
      [2 - 2 ** -9, 0x4000],
    ];
    for (const [x, bits] of known) {
      expect(bitsOf(x), `bits of ${x}`).toBe(bits);
      expect(toBfloat16Bits(x), `toBfloat16Bits(${x})`).toBe(bits);
    }
    expect(Array.from(codec.encode([1, -2]))).toEqual([0x80, 0x3f, 0x00, 0xc0]);
    expect(BFLOAT16_MAX).toBe(3.3895313892515355e38);
    expect(fromBfloat16Bits(0x7f80)).toBe(Infinity);
    expect(fromBfloat16Bits(0xff80)).toBe(-Infinity);
    expect(Number.isNaN(fromBfloat16Bits(0x7fc0))).toBe(true);
    expectCodecError(() => fromBfloat16Bits(0x10000));
  });

  it('matches the top 16 bits of float32, rounded to nearest-even, for float32 input', () => {
    const rand = mulberry32(11);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let n = 0; n < 200_000; n++) {
      // Random finite float32 bit patterns, subnormals included; skip those above BFLOAT16_MAX.
      u[0] = Math.floor(rand() * 0x7f7f8000) | (rand() < 0.5 ? 0x80000000 : 0);
      if (Math.abs(f[0]!) > BFLOAT16_MAX) continue;
      const bits = u[0]!;
      const expected = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
      if (toBfloat16Bits(f[0]!) !== expected) {
        throw new Error(`0x${bits.toString(16)}: got 0x${toBfloat16Bits(f[0]!).toString(16)}`);
      }
    }
  });

  it('round-trips every finite bfloat16 exactly and rounds midpoints to even', () => {
    expectExactRoundTripsAndTiesToEven({ toBits: toBfloat16Bits, fromBits: fromBfloat16Bits, exponentMask: 0x7f80 });
  });

  it('decodes all finite bit patterns through the codec', () => {
    expectEveryFinitePatternDecodes(codec, 0x7f80, 0xff00);
  });

  it('throws instead of overflowing to Infinity', () => {
    for (const x of [BFLOAT16_MAX * (1 + 2 ** -20), 3.4e38, FLOAT32_MAX, -1e39, Number.MAX_VALUE]) {
      expectCodecError(() => codec.encode([0, x]), /element 1.*bfloat16 range/);
      expectCodecError(() => codec.errorBound([x]));
      expectCodecError(() => toBfloat16Bits(x));
    }
  });

  it('rejects non-finite decoded values', () => {
    expectCodecError(() => codec.decode(new Uint8Array([0x80, 0x3f, 0x80, 0x7f]), 2), /element 1/);
    expectCodecError(() => codec.decode(new Uint8Array([0xc0, 0xff]), 1));
  });

  it('honours the bound for subnormal and tiny magnitudes', () => {
    const v = [1e-39, -3e-40, 2 ** -126, 2 ** -135, -1e-45, 1e-300];
    const decoded = codec.decode(codec.encode(v), v.length);
    expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(codec.errorBound(v));
    expect(codec.errorBound(v)).toBeLessThanOrEqual(2 ** -134);
  });
});

describe('int4', () => {
  const codec = CODECS.int4;

  it('uses 16 levels: 0..15 round-trips exactly with offset 0 and scale 1', () => {
    const v = Float64Array.from({ length: 16 }, (_, i) => i);
    const bytes = codec.encode(v);
    expect(bytes.length).toBe(8 + 8);
    expect(affineHeaders(bytes, 1)).toEqual([[0, 1]]);
    expect(Array.from(bytes.subarray(8))).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    expect(Array.from(codec.decode(bytes, 16))).toEqual(Array.from(v));
    expect(codec.errorBound(v)).toBeLessThanOrEqual(0.5 + 1e-9);
  });

  it('packs the even index into the low nibble and zero-pads odd dimensions', () => {
    const bytes = codec.encode([-3, 12, 7]);
    expect(affineHeaders(bytes, 1)).toEqual([[-3, 1]]);
    expect(Array.from(bytes.subarray(8))).toEqual([0xf0, 0x0a]);
    const bad = bytes.slice();
    bad[9] = 0x1a;
    expectCodecError(() => codec.decode(bad, 3), /padding nibble/);
  });

  it('maps min to code 0 and max to code 15 without clipping', () => {
    const rand = mulberry32(3);
    for (const m of [1e-3, 1, 1e3]) {
      const v = Float64Array.from({ length: 101 }, () => (rand() * 2 - 1) * m);
      const bytes = codec.encode(v);
      const codes = new Set<number>();
      for (let i = 0; i < v.length; i++) codes.add((bytes[8 + (i >> 1)]! >> ((i & 1) * 4)) & 15);
      expect(Math.min(...codes)).toBe(0);
      expect(Math.max(...codes)).toBe(15);
      const [[offset, scale]] = affineHeaders(bytes, 1) as [[number, number]];
      let min = Infinity;
      let max = -Infinity;
      for (const x of v) [min, max] = [Math.min(min, x), Math.max(max, x)];
      expect(offset).toBeLessThanOrEqual(min);
      expect(offset + 15 * scale).toBeGreaterThanOrEqual(max);
      expect(roundTripError(codec, v)).toBeLessThanOrEqual(codec.errorBound(v));
      expect(codec.errorBound(v)).toBeLessThanOrEqual(((max - min) / 30) * (1 + 1e-6));
    }
  });

  it('round-trips float32 constants exactly and rejects invalid headers', () => {
    for (const c of [0, -7.25, Math.fround(0.1)]) {
      const v = new Float64Array(9).fill(c);
      expect(Array.from(codec.decode(codec.encode(v), 9))).toEqual(Array.from(v));
      expect(codec.errorBound(v)).toBe(0);
    }
    const bytes = codec.encode([1, 2, 3]);
    const bad = bytes.slice();
    new DataView(bad.buffer).setFloat32(4, -1, true);
    expectCodecError(() => codec.decode(bad, 3), /header/);
    new DataView(bad.buffer).setFloat32(0, Number.NaN, true);
    expectCodecError(() => codec.decode(bad, 3), /header/);
  });
});

describe('block-wise int8-b32 and int4-b32', () => {
  const pairs: Array<[string, VectorCodec, VectorCodec]> = [
    ['int8', CODECS.int8, CODECS['int8-b32']],
    ['int4', CODECS.int4, CODECS['int4-b32']],
  ];

  it.each(pairs)('%s: the block variant is strictly more accurate when the range varies', (_, perVector, blocked) => {
    const rand = mulberry32(21);
    for (const dim of [64, 128, 1600]) {
      // First half ~1e-3, second half ~1e3 (0.99e3..1.01e3), split on a block boundary.
      const half = dim / 2;
      const v = Float64Array.from({ length: dim }, (_, i) => (i < half ? rand() * 1e-3 : 1e3 * (0.99 + 0.02 * rand())));
      const coarse = roundTripError(perVector, v);
      const fine = roundTripError(blocked, v);
      expect(coarse).toBeLessThanOrEqual(perVector.errorBound(v));
      expect(fine).toBeLessThanOrEqual(blocked.errorBound(v));
      expect(fine).toBeLessThan(coarse / 10);
      expect(blocked.errorBound(v)).toBeLessThan(perVector.errorBound(v) / 10);
      // On the small half the per-vector codec erases everything; the blocks keep it.
      const coarseSmall = roundTripError(perVector, v, 0, half);
      const fineSmall = roundTripError(blocked, v, 0, half);
      expect(coarseSmall).toBeGreaterThan(1e-4);
      expect(fineSmall).toBeLessThan(1e-3 / 20);
    }
  });

  it.each(pairs)('%s: one block is byte-identical to the per-vector codec', (_, perVector, blocked) => {
    const rand = mulberry32(8);
    for (const dim of [1, 7, 31, 32]) {
      const v = Float64Array.from({ length: dim }, () => (rand() * 2 - 1) * 50);
      expect(Array.from(blocked.encode(v))).toEqual(Array.from(perVector.encode(v)));
    }
  });

  it.each(pairs)('%s: writes one header per block of 32, the last block shorter', (_, __, blocked) => {
    const dim = 70;
    const v = Float64Array.from({ length: dim }, (_, i) => (i < 32 ? i : i < 64 ? -1000 - i : 5));
    const bytes = blocked.encode(v);
    expect(bytes.length).toBe(blocked.encodedLength(dim));
    const headers = affineHeaders(bytes, 3);
    expect(headers[0]![0]).toBe(0);
    expect(headers[1]![0]).toBe(-1063);
    // The last block (64..69) is constant, so it gets scale 0 and decodes exactly.
    expect(headers[2]).toEqual([5, 0]);
    const decoded = blocked.decode(bytes, dim);
    expect(Array.from(decoded.subarray(64))).toEqual([5, 5, 5, 5, 5, 5]);
    expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(blocked.errorBound(v));
    const bad = bytes.slice();
    new DataView(bad.buffer).setFloat32(8 * 2, Infinity, true);
    expectCodecError(() => blocked.decode(bad, dim), /header for block 2/);
  });

  it('reports the element index across blocks', () => {
    const v = new Float64Array(100);
    v[77] = Number.NaN;
    expectCodecError(() => CODECS['int4-b32'].encode(v), /int4-b32: element 77/);
    v[77] = 1e39;
    expectCodecError(() => CODECS['int8-b32'].errorBound(v), /element 77.*float32 range/);
  });
});

describe('binary', () => {
  const codec = CODECS.binary;

  it('writes the float32 mean |v| then sign bits, LSB first', () => {
    const v = [1, -2, 3, -0, 0, -5, 6, 7, -8];
    const bytes = codec.encode(v);
    expect(bytes.length).toBe(4 + 2);
    expect(new DataView(bytes.buffer).getFloat32(0, true)).toBe(Math.fround(32 / 9));
    expect(Array.from(bytes.subarray(4))).toEqual([0b11011101, 0b00000000]);
    const s = Math.fround(32 / 9);
    expect(Array.from(codec.decode(bytes, 9))).toEqual([s, -s, s, s, s, -s, s, s, -s]);
  });

  it('is exact on ±c vectors up to float32 rounding of c', () => {
    const rand = mulberry32(4);
    for (const c of [1, 0.5, Math.fround(0.3), 0.1, 123.456, 1e-3, 1e3]) {
      for (const dim of [1, 7, 64, 1600]) {
        const v = Float64Array.from({ length: dim }, () => (rand() < 0.5 ? -c : c));
        const err = roundTripError(codec, v);
        const bound = codec.errorBound(v);
        expect(err).toBeLessThanOrEqual(bound);
        expect(bound).toBeLessThanOrEqual(c * 2 ** -23);
        if (Math.fround(c) === c && dim <= 64) {
          expect(err).toBe(0);
          expect(bound).toBe(0);
        }
      }
    }
  });

  it('errorBound is the measured error of the worst element, and the scale minimises L2 error', () => {
    const rand = mulberry32(5);
    const v = Float64Array.from({ length: 333 }, () => (rand() * 2 - 1) * 10);
    const decoded = codec.decode(codec.encode(v), v.length);
    const err = maxAbsError(decoded, v);
    expect(codec.errorBound(v)).toBeGreaterThanOrEqual(err);
    expect(codec.errorBound(v)).toBeLessThanOrEqual(err * (1 + 2 ** -49));
    const scale = Math.abs(decoded[0]!);
    const l2 = (c: number): number => v.reduce((sum, x) => sum + (x - (x >= 0 ? c : -c)) ** 2, 0);
    expect(l2(scale)).toBeLessThan(l2(scale * 1.001));
    expect(l2(scale)).toBeLessThan(l2(scale * 0.999));
  });

  it('rejects invalid headers and nonzero padding bits', () => {
    const bytes = codec.encode([1, -2, 3]);
    const bad = bytes.slice();
    bad[4] = bad[4]! | 0x08;
    expectCodecError(() => codec.decode(bad, 3), /padding bits/);
    const neg = bytes.slice();
    new DataView(neg.buffer).setFloat32(0, -1, true);
    expectCodecError(() => codec.decode(neg, 3), /header/);
    new DataView(neg.buffer).setFloat32(0, Infinity, true);
    expectCodecError(() => codec.decode(neg, 3), /header/);
    expectCodecError(() => codec.encode([1e39]), /float32 range/);
  });
});

describe.each([
  ['topk-16', 16],
  ['topk-32', 32],
] as const)('%s', (name, k) => {
  const codec = CODECS[name];

  function slots(bytes: Uint8Array): Array<[number, number]> {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from({ length: k }, (_, s) => [dv.getUint16(6 * s, true), dv.getFloat32(6 * s + 2, true)]);
  }

  /** Indices of the k largest |v_i|, ties to the lower index, ascending. */
  function referenceTopK(v: ArrayLike<number>): number[] {
    const order = Array.from(v, (_, i) => i).sort((a, b) => Math.abs(v[b]!) - Math.abs(v[a]!) || a - b);
    return order.slice(0, k).sort((a, b) => a - b);
  }

  it('keeps exactly the top-k indices, ascending, and zeroes the rest', () => {
    const rand = mulberry32(k);
    for (const dim of [k + 1, 64, 100, 1600]) {
      for (let trial = 0; trial < 20; trial++) {
        const v = Float64Array.from({ length: dim }, () => (rand() * 2 - 1) * 10 ** (rand() * 6 - 3));
        const bytes = codec.encode(v);
        const kept = referenceTopK(v);
        expect(slots(bytes).map(([i]) => i)).toEqual(kept);
        const decoded = codec.decode(bytes, dim);
        const keptSet = new Set(kept);
        for (let i = 0; i < dim; i++) {
          if (decoded[i] !== (keptSet.has(i) ? Math.fround(v[i]!) : 0)) throw new Error(`element ${i}`);
        }
      }
    }
  });

  it('breaks magnitude ties towards the lower index', () => {
    const v = Float64Array.from({ length: 200 }, (_, i) => (i % 2 ? -1 : 1));
    v[150] = 2;
    v[190] = -2;
    const bytes = codec.encode(v);
    const expected = [...Array.from({ length: k - 2 }, (_, i) => i), 150, 190];
    expect(slots(bytes).map(([i]) => i)).toEqual(expected);
    // Ascending magnitudes make every element displace the weakest kept one.
    const rising = Float64Array.from({ length: 500 }, (_, i) => Math.floor(i / 3));
    expect(slots(codec.encode(rising)).map(([i]) => i)).toEqual(referenceTopK(rising));
  });

  it('stores every element when dim <= k, padding with (0xFFFF, 0)', () => {
    const v = new Float32Array([0.5, -3, 0, 1e-40, 7]);
    const bytes = codec.encode(v);
    const all = slots(bytes);
    expect(all.slice(0, 5)).toEqual([[0, 0.5], [1, -3], [2, 0], [3, Math.fround(1e-40)], [4, 7]]);
    for (const [i, x] of all.slice(5)) expect([i, x]).toEqual([0xffff, 0]);
    expect(Array.from(bytes.subarray(6 * 5))).toEqual(Array.from({ length: 6 * (k - 5) }, (_, j) => (j % 6 < 2 ? 0xff : 0)));
    expect(Array.from(codec.decode(bytes, 5))).toEqual(Array.from(v));
    expect(codec.errorBound(v)).toBeLessThanOrEqual(7 * 2 ** -24);
    const full = Float64Array.from({ length: k }, (_, i) => i - 3.5);
    expect(Array.from(codec.decode(codec.encode(full), k))).toEqual(Array.from(full));
  });

  it('bounds the error by the largest dropped magnitude, which is attained', () => {
    const rand = mulberry32(77);
    const v = Float32Array.from({ length: 64 }, () => (rand() * 2 - 1) * 100);
    const dropped = Array.from(v, Math.abs).sort((a, b) => b - a)[k]!;
    expect(codec.errorBound(v)).toBe(dropped);
    expect(roundTripError(codec, v)).toBe(dropped);
  });

  it('supports dimensions up to 65535', () => {
    expect(TOPK_MAX_DIM).toBe(65535);
    const v = new Float64Array(TOPK_MAX_DIM);
    v[TOPK_MAX_DIM - 1] = -4;
    v[12345] = 2;
    const decoded = codec.decode(codec.encode(v), TOPK_MAX_DIM);
    expect(decoded[TOPK_MAX_DIM - 1]).toBe(-4);
    expect(decoded[12345]).toBe(2);
    expectCodecError(() => codec.encodedLength(TOPK_MAX_DIM + 1), /exceeds the maximum/);
    expectCodecError(() => codec.encode(new Float64Array(TOPK_MAX_DIM + 1)), /exceeds the maximum/);
    expectCodecError(() => codec.decode(codec.encode([1]), TOPK_MAX_DIM + 1), /exceeds the maximum/);
  });

  it('rejects non-canonical slots and most wrong dimensions', () => {
    const rand = mulberry32(9);
    const v = Float64Array.from({ length: 100 }, () => rand() - 0.5);
    const bytes = codec.encode(v);
    const mutate = (fn: (dv: DataView) => void): Uint8Array => {
      const copy = bytes.slice();
      fn(new DataView(copy.buffer));
      return copy;
    };
    const firstTwo = slots(bytes).slice(0, 2).map(([i]) => i);
    expectCodecError(() => codec.decode(mutate((dv) => dv.setUint16(6, firstTwo[0]!, true)), 100), /ascending/);
    expectCodecError(() => codec.decode(mutate((dv) => dv.setUint16(6 * (k - 1), 100, true)), 100), /below 100/);
    expectCodecError(() => codec.decode(mutate((dv) => dv.setFloat32(2, Number.NaN, true)), 100), /decoded element/);
    // A 100-d encoding read as 50-d has indices >= 50 (with overwhelming probability for k >= 16).
    expectCodecError(() => codec.decode(bytes, 50));

    const small = codec.encode([1, 2, 3]);
    expectCodecError(() => codec.decode(small, 2), /expected an empty slot/);
    expectCodecError(() => codec.decode(small, 4), /expected index 3/);
    const filled = small.slice();
    new DataView(filled.buffer).setFloat32(6 * 3 + 2, 1, true);
    expectCodecError(() => codec.decode(filled, 3), /empty slot/);
  });
});

describe('describeCodec', () => {
  it('reports bits per element for a 64-d vector', () => {
    const bits = Object.fromEntries(CODEC_NAMES.map((n) => [n, describeCodec(n).bitsPerElement(64)]));
    expect(bits).toEqual({
      f64: 64,
      f32: 32,
      bf16: 16,
      f16: 16,
      int8: 9,
      'int8-b32': 10,
      int4: 5,
      'int4-b32': 6,
      'int8-h16': 8.5,
      'int4-h16': 4.5,
      binary: 1.5,
      'topk-16': 12,
      'topk-32': 24,
      'rp-8': 4,
      'rp-16': 8,
      'rp-32': 16,
    });
    for (const name of CODEC_NAMES) {
      const info = describeCodec(name);
      expect(info.name).toBe(name);
      expect(info.summary.length).toBeGreaterThan(0);
      expect(info.lossless).toBe(name === 'f64');
    }
    expectCodecError(() => describeCodec('f8'), /Unknown codec/);
    expectCodecError(() => describeCodec('int4').bitsPerElement(0));
    expectCodecError(() => describeCodec('int4').bitsPerElement(-2));
  });
});
