import { describe, expect, it } from 'vitest';
import { expectEveryFinitePatternDecodes, expectExactRoundTripsAndTiesToEven } from './support/sixteen-bit-formats.js';
import {
  CODECS,
  CODEC_NAMES,
  FLOAT32_MAX,
  fromFloat16Bits,
  getCodec,
  rpProjection,
  toFloat16Bits,
  type RegisteredCodecName,
  type VectorCodec,
} from '../shared/protocol/codecs/index.js';
import { expectCodecError } from './support/codec-errors.js';
import { maxAbsError, mulberry32 } from './support/vectors.js';


interface Case {
  label: string;
  vector: Float64Array | Float32Array;
}

const DIMS = [1, 7, 31, 32, 33, 64, 1600];
const SEEDS = [1, 2, 3, 42, 1234];

function makeCases(): Case[] {
  const cases: Case[] = [];
  for (const dim of DIMS) {
    for (const seed of SEEDS) {
      const rand = mulberry32(seed * 7919 + dim);
      const fill = (label: string, gen: (i: number) => number, f32 = false): void => {
        const v = f32 ? new Float32Array(dim) : new Float64Array(dim);
        for (let i = 0; i < dim; i++) v[i] = gen(i);
        cases.push({ label: `${label} dim=${dim} seed=${seed}${f32 ? ' (Float32Array)' : ''}`, vector: v });
      };
      for (const m of [1e-3, 1e-1, 1, 37.5, 1e3]) {
        fill(`uniform ±${m}`, () => (rand() * 2 - 1) * m);
        fill(`positive ${m}`, () => rand() * m);
        fill(`negative shifted ${m}`, () => -m - rand() * m * 0.01);
      }
      fill('log-uniform mixed sign 1e-3..1e3', () => (rand() < 0.5 ? -1 : 1) * 10 ** (rand() * 6 - 3));
      fill('gaussian-ish', () => (rand() + rand() + rand() - 1.5) * 2);
      const c = (rand() * 2 - 1) * 10 ** (rand() * 6 - 3);
      fill('constant', () => c);
      fill('constant (Float32Array)', () => c, true);
      fill('zeros', () => 0);
      const outlierAt = Math.floor(rand() * dim);
      const outlier = (rand() < 0.5 ? -1 : 1) * 1e3;
      fill('single outlier', (i) => (i === outlierAt ? outlier : (rand() * 2 - 1) * 1e-2));
      fill('uniform ±3 (Float32Array)', () => (rand() * 2 - 1) * 3, true);
    }
  }
  return cases;
}

const CASES = makeCases();

function stats(v: ArrayLike<number>): { min: number; max: number; maxAbs: number } {
  let min = Infinity;
  let max = -Infinity;
  let maxAbs = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    min = Math.min(min, x);
    max = Math.max(max, x);
    maxAbs = Math.max(maxAbs, Math.abs(x));
  }
  return { min, max, maxAbs };
}


/** Affine quantisation: a float32 header can cost up to an ulp of min on top of half a step. */
function affineLimit(v: ArrayLike<number>, levels: number, blockSize: number): number {
  const size = blockSize === 0 ? Math.max(v.length, 1) : blockSize;
  let limit = 0;
  for (let start = 0; start < v.length; start += size) {
    const s = stats(Array.prototype.slice.call(v, start, start + size) as number[]);
    limit = Math.max(limit, ((s.max - s.min) / levels) * (1 + 1e-6) + s.maxAbs * 2 ** -22);
  }
  return limit;
}

/** A float16 header rounds the offset down and the scale up by up to 2^-10 relative, above the subnormal step. */
function affineH16Limit(v: ArrayLike<number>, levels: number): number {
  const s = stats(v);
  return ((s.max - s.min) / levels) * (1 + 2 ** -9) + (s.maxAbs * 2 ** -9) / levels + 2 ** -23;
}

/** The k-th largest |v_i| (1-based), or 0 when there are fewer than k elements. */
function kthLargestMagnitude(v: ArrayLike<number>, k: number): number {
  const mags = Array.from(v, Math.abs).sort((a, b) => b - a);
  return mags[k - 1] ?? 0;
}

function binaryLimit(v: ArrayLike<number>): number {
  if (v.length === 0) return 0;
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += Math.abs(v[i]!) / v.length;
  let worst = 0;
  for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(Math.abs(v[i]!) - mean));
  return (worst + mean * 2 ** -23) * (1 + 2 ** -40);
}

/**
 * A random projection's bound is essentially ‖v − RᵀR v‖₂ (the part of v outside R's row space,
 * which bounds every element's error) plus rounding slack well below 2e-6 ‖v‖₂.
 */
function rpLimit(m: number): (v: ArrayLike<number>) => number {
  return (v) => {
    const n = v.length;
    const r = rpProjection(n, m);
    const y = new Float64Array(m);
    for (let j = 0; j < m; j++) for (let i = 0; i < n; i++) y[j] = y[j]! + r[j * n + i]! * v[i]!;
    let residual = 0;
    let norm = 0;
    for (let i = 0; i < n; i++) {
      let p = 0;
      for (let j = 0; j < m; j++) p += r[j * n + i]! * y[j]!;
      residual += (v[i]! - p) ** 2;
      norm += v[i]! ** 2;
    }
    return Math.sqrt(residual) + 2e-6 * Math.sqrt(norm) + 2 ** -140;
  };
}

/**
 * The smallest dimension each codec accepts (a random projection to m coordinates needs dim >= m);
 * the generic tests below use only vectors at least this long and check that shorter ones fail.
 */
const MIN_DIM: Partial<Record<RegisteredCodecName, number>> = { 'rp-8': 8, 'rp-16': 16, 'rp-32': 32 };

/** `values` padded with zeros to the codec's minimum dimension. */
function padded(name: RegisteredCodecName, values: number[]): number[] {
  const min = MIN_DIM[name] ?? 0;
  return values.length >= min ? values : [...values, ...new Array<number>(min - values.length).fill(0)];
}

/** Upper limits that make each codec's errorBound meaningful (not just "some finite number"). */
const MEANINGFUL: Record<RegisteredCodecName, (v: ArrayLike<number>) => number> = {
  f64: () => 0,
  f32: (v) => stats(v).maxAbs * 2 ** -23,
  bf16: (v) => stats(v).maxAbs * 2 ** -7 + 2 ** -133,
  f16: (v) => stats(v).maxAbs * 2 ** -10 + 2 ** -24,
  int8: (v) => affineLimit(v, 255, 0),
  'int8-b32': (v) => affineLimit(v, 255, 32),
  int4: (v) => affineLimit(v, 15, 0),
  'int4-b32': (v) => affineLimit(v, 15, 32),
  'int8-h16': (v) => affineH16Limit(v, 255),
  'int4-h16': (v) => affineH16Limit(v, 15),
  binary: binaryLimit,
  'topk-16': (v) => kthLargestMagnitude(v, 17) + stats(v).maxAbs * 2 ** -23 + 2 ** -149,
  'topk-32': (v) => kthLargestMagnitude(v, 33) + stats(v).maxAbs * 2 ** -23 + 2 ** -149,
  'rp-8': rpLimit(8),
  'rp-16': rpLimit(16),
  'rp-32': rpLimit(32),
};

const ENCODED_LENGTH: Record<RegisteredCodecName, (dim: number) => number> = {
  f64: (d) => 8 * d,
  f32: (d) => 4 * d,
  bf16: (d) => 2 * d,
  f16: (d) => 2 * d,
  int8: (d) => 8 + d,
  'int8-b32': (d) => 8 * Math.ceil(d / 32) + d,
  int4: (d) => 8 + Math.ceil(d / 2),
  'int4-b32': (d) => 8 * Math.ceil(d / 32) + Math.ceil(d / 2),
  'int8-h16': (d) => 4 + d,
  'int4-h16': (d) => 4 + Math.ceil(d / 2),
  binary: (d) => 4 + Math.ceil(d / 8),
  'topk-16': () => 16 * 6,
  'topk-32': () => 32 * 6,
  'rp-8': () => 8 * 4,
  'rp-16': () => 16 * 4,
  'rp-32': () => 32 * 4,
};


describe('codec registry', () => {
  it('exposes every codec under its own name', () => {
    expect(CODEC_NAMES).toEqual([
      'f64', 'f32', 'bf16', 'f16', 'int8', 'int8-b32', 'int4', 'int4-b32', 'int8-h16', 'int4-h16', 'binary', 'topk-16', 'topk-32',
      'rp-8', 'rp-16', 'rp-32',
    ]);
    expect(Object.keys(CODECS).sort()).toEqual([...CODEC_NAMES].sort());
    for (const name of CODEC_NAMES) {
      expect(CODECS[name].name).toBe(name);
      expect(getCodec(name)).toBe(CODECS[name]);
    }
  });

  it('rejects unknown names with the list of known codecs', () => {
    expectCodecError(
      () => getCodec('int2'),
      /Unknown codec "int2".*f64, f32, bf16, f16, int8, int8-b32, int4, int4-b32, int8-h16, int4-h16, binary, topk-16, topk-32, rp-8, rp-16, rp-32$/,
    );
    // pq needs a trained codebook (createPqCodec), so it is not in the registry.
    expectCodecError(() => getCodec('pq'), /Unknown codec "pq"/);
    expectCodecError(() => getCodec('INT8'));
    expectCodecError(() => getCodec('toString'));
    expectCodecError(() => getCodec(''));
  });
});

describe.each(CODEC_NAMES.map((name) => [name, CODECS[name]] as [RegisteredCodecName, VectorCodec]))(
  '%s codec',
  (name, codec) => {
    const minDim = MIN_DIM[name] ?? 0;

    it('round-trips random vectors within errorBound, and the bound is meaningful', () => {
      let checked = 0;
      for (const { label, vector } of CASES) {
        if (vector.length < minDim) {
          expectCodecError(() => codec.encode(vector), /smaller than/);
          expectCodecError(() => codec.errorBound(vector), /smaller than/);
          checked++;
          continue;
        }
        const bytes = codec.encode(vector);
        expect(bytes.length, label).toBe(codec.encodedLength(vector.length));
        const decoded = codec.decode(bytes, vector.length);
        expect(decoded).toBeInstanceOf(Float64Array);
        expect(decoded.length).toBe(vector.length);
        const bound = codec.errorBound(vector);
        const err = maxAbsError(decoded, vector);
        if (!(err <= bound)) throw new Error(`${label}: error ${err} > bound ${bound}`);
        const limit = MEANINGFUL[name](vector);
        if (!(bound <= limit)) throw new Error(`${label}: bound ${bound} > limit ${limit}`);
        checked++;
      }
      expect(checked).toBe(CASES.length);
    });

    it('has the documented encoded length', () => {
      for (const dim of [0, 1, 7, 31, 32, 33, 64, 1600]) {
        if (dim < minDim) {
          expectCodecError(() => codec.encodedLength(dim), /smaller than/);
          expectCodecError(() => codec.encode(new Float64Array(dim)), /smaller than/);
          continue;
        }
        expect(codec.encodedLength(dim)).toBe(ENCODED_LENGTH[name](dim));
        expect(codec.encode(new Float64Array(dim)).length).toBe(codec.encodedLength(dim));
      }
      expectCodecError(() => codec.encodedLength(-1));
      expectCodecError(() => codec.encodedLength(1.5));
      expectCodecError(() => codec.encodedLength(Number.NaN));
    });

    it('rejects NaN and ±Infinity input in encode and errorBound', () => {
      for (const bad of [Number.NaN, Infinity, -Infinity]) {
        const v = new Float64Array([1, 2, bad, 4]);
        expectCodecError(() => codec.encode(v), /element 2/);
        expectCodecError(() => codec.errorBound(v));
        expectCodecError(() => codec.encode(new Float32Array([0, bad])));
      }
    });

    it('rejects a wrong byte length on decode', () => {
      const v = padded(name, [1, -2, 3]);
      const bytes = codec.encode(v);
      // Packed and fixed-length layouts share a length across dims, so only try dims that differ.
      for (const dim of [0, 1, 2, 4, 5, 8, 9, 17, 33, 100]) {
        if (dim < minDim) {
          expectCodecError(() => codec.decode(bytes, dim), /smaller than/);
        } else if (codec.encodedLength(dim) !== bytes.length) {
          expectCodecError(() => codec.decode(bytes, dim), /expected \d+ bytes/);
        }
      }
      expectCodecError(() => codec.decode(bytes.subarray(0, bytes.length - 1), v.length), /expected \d+ bytes/);
      expectCodecError(() => codec.decode(bytes.subarray(1), v.length));
      expectCodecError(() => codec.decode(new Uint8Array(0), 1));
      expectCodecError(() => codec.decode(bytes, -1));
    });

    it('decodes from unaligned subarrays of a larger Buffer', () => {
      const rand = mulberry32(99);
      for (const dim of [1, 7, 64, 1600].filter((d) => d >= minDim)) {
        const v = new Float64Array(dim);
        for (let i = 0; i < dim; i++) v[i] = (rand() * 2 - 1) * 100;
        const bytes = codec.encode(v);
        const expected = codec.decode(bytes, dim);
        // Buffer.alloc starts its own ArrayBuffer, so byteOffset === offset (0 and 4/8: aligned paths).
        for (const offset of [0, 1, 2, 3, 4, 5, 6, 7, 8]) {
          const buf = Buffer.alloc(bytes.length + offset + 5, 0xab);
          buf.set(bytes, offset);
          const view = buf.subarray(offset, offset + bytes.length);
          expect(view.byteOffset).toBe(offset);
          const decoded = codec.decode(view, dim);
          expect(Array.from(decoded)).toEqual(Array.from(expected));
        }
      }
    });

    it('does not alias the input buffer', () => {
      const v = padded(name, [1, 2, 3]);
      const bytes = codec.encode(v);
      const decoded = codec.decode(bytes, v.length);
      const before = Array.from(decoded);
      bytes.fill(0);
      expect(Array.from(decoded)).toEqual(before);
    });

    it('handles the empty vector', () => {
      if (minDim > 0) {
        expectCodecError(() => codec.encode(new Float64Array(0)), /smaller than/);
        expectCodecError(() => codec.errorBound([]), /smaller than/);
        expectCodecError(() => codec.decode(new Uint8Array(0), 0), /smaller than/);
        return;
      }
      const bytes = codec.encode(new Float64Array(0));
      expect(codec.decode(bytes, 0).length).toBe(0);
      expect(codec.errorBound([])).toBe(0);
    });

    it('accepts plain arrays', () => {
      const v = padded(name, [0.5, -0.25, 3]);
      const decoded = codec.decode(codec.encode(v), v.length);
      expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(codec.errorBound(v));
    });
  },
);

describe('f64', () => {
  const codec = CODECS.f64;

  it('is bit-exact, including -0, subnormals and extremes', () => {
    const rand = mulberry32(7);
    const v = new Float64Array(1600);
    for (let i = 0; i < v.length; i++) v[i] = (rand() * 2 - 1) * 10 ** (rand() * 600 - 300);
    v.set([-0, 0, Number.MIN_VALUE, -Number.MAX_VALUE, Number.MAX_VALUE, 0.1, 1 / 3], 0);
    const decoded = codec.decode(codec.encode(v), v.length);
    expect(new Uint8Array(decoded.buffer)).toEqual(new Uint8Array(v.buffer));
    expect(Object.is(decoded[0], -0)).toBe(true);
    expect(codec.errorBound(v)).toBe(0);
  });

  it('writes little-endian binary64', () => {
    expect(Array.from(codec.encode([1]))).toEqual([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  });

  it('rejects non-finite decoded values', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setFloat64(8, Number.NaN, true);
    expectCodecError(() => codec.decode(bytes, 2), /decoded element 1/);
  });
});

describe('f32', () => {
  const codec = CODECS.f32;

  it('writes little-endian binary32 and is exact for float32 input', () => {
    expect(Array.from(codec.encode([1]))).toEqual([0, 0, 0x80, 0x3f]);
    const v = new Float32Array([0.1, -3.5, 1e-40, FLOAT32_MAX]);
    expect(Array.from(codec.decode(codec.encode(v), 4))).toEqual(Array.from(v));
  });

  it('rejects values beyond the float32 range', () => {
    expectCodecError(() => codec.encode([1, 1e39]), /float32 range/);
    expectCodecError(() => codec.encode([-1e39]), /float32 range/);
    expectCodecError(() => codec.errorBound([3.5e38]));
    expect(() => codec.encode([FLOAT32_MAX, -FLOAT32_MAX])).not.toThrow();
  });

  it('honours the bound for tiny and subnormal magnitudes', () => {
    const v = [1e-40, -3e-45, 1e-38, 2 ** -126, 1.0000001e-30];
    const decoded = codec.decode(codec.encode(v), v.length);
    expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(codec.errorBound(v));
  });

  it('rejects non-finite decoded values', () => {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat32(4, Infinity, true);
    expectCodecError(() => codec.decode(bytes, 2), /decoded element 1/);
  });
});

describe('f16', () => {
  const codec = CODECS.f16;
  const bitsOf = (x: number): number => {
    const b = codec.encode([x]);
    return b[0]! | (b[1]! << 8);
  };

  it('encodes known values exactly', () => {
    const known: Array<[number, number]> = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [-65504, 0xfbff],
      [2 ** -24, 0x0001],
      [0.1, 0x2e66],
      [0, 0x0000],
      [-0, 0x8000],
      [2 ** -14, 0x0400],
      [2 ** -14 - 2 ** -24, 0x03ff],
      [0.5, 0x3800],
      [1 / 3, 0x3555],
      [1 + 2 ** -10, 0x3c01],
      // Ties go to even: 1 + 2^-11 lies halfway between 0x3C00 and 0x3C01.
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [2 ** -25, 0x0000],
      [3 * 2 ** -25, 0x0002],
      [2 ** -25 + 2 ** -40, 0x0001],
      [1e-30, 0x0000],
      // Rounds up across a binade boundary.
      [2 - 2 ** -12, 0x4000],
    ];
    for (const [x, bits] of known) {
      expect(bitsOf(x), `bits of ${x}`).toBe(bits);
      expect(toFloat16Bits(x), `toFloat16Bits(${x})`).toBe(bits);
    }
    expect(Array.from(codec.encode([1]))).toEqual([0x00, 0x3c]);
    expect(fromFloat16Bits(0x7c00)).toBe(Infinity);
    expect(fromFloat16Bits(0xfc00)).toBe(-Infinity);
    expect(Number.isNaN(fromFloat16Bits(0x7e00))).toBe(true);
  });

  it('round-trips every finite half exactly and rounds midpoints to even', () => {
    expectExactRoundTripsAndTiesToEven({ toBits: toFloat16Bits, fromBits: fromFloat16Bits, exponentMask: 0x7c00 });
  });

  it('decodes all finite bit patterns through the codec', () => {
    expectEveryFinitePatternDecodes(codec, 0x7c00, 0xf800);
  });

  it('throws instead of overflowing to Infinity', () => {
    for (const x of [65505, 65519, 65520, 1e5, -70000, FLOAT32_MAX]) {
      expectCodecError(() => codec.encode([0, x]), /element 1.*float16 range/);
      expectCodecError(() => codec.errorBound([x]));
      expectCodecError(() => toFloat16Bits(x));
    }
  });

  it('rejects non-finite decoded values', () => {
    expectCodecError(() => codec.decode(new Uint8Array([0, 0x3c, 0x00, 0x7c]), 2), /element 1/);
    expectCodecError(() => codec.decode(new Uint8Array([0x00, 0xfe]), 1));
  });

  it('honours the bound for subnormal magnitudes', () => {
    const v = [3e-8, -5e-6, 6.1e-5, 2 ** -26, -1e-9];
    const decoded = codec.decode(codec.encode(v), v.length);
    expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(codec.errorBound(v));
    expect(codec.errorBound(v)).toBeLessThanOrEqual(2 ** -25);
  });
});

describe('int8', () => {
  const codec = CODECS.int8;

  it('stores a float32 offset <= min and scale covering max in an 8-byte header', () => {
    const v = new Float64Array([0.1, 0.7, -0.3, 2.5]);
    const bytes = codec.encode(v);
    const header = new DataView(bytes.buffer, bytes.byteOffset, 8);
    const offset = header.getFloat32(0, true);
    const scale = header.getFloat32(4, true);
    expect(offset).toBeLessThanOrEqual(-0.3);
    expect(offset).toBeCloseTo(-0.3, 6);
    expect(scale).toBeCloseTo(2.8 / 255, 8);
    expect(offset + 255 * scale).toBeGreaterThanOrEqual(2.5);
    expect(bytes[8 + 2]).toBe(0);
    expect(bytes[8 + 3]).toBe(255);
  });

  it('round-trips float32-representable constant vectors exactly with scale 0', () => {
    for (const c of [0, 1, -2.5, 1000, Math.fround(0.1), -Math.fround(1e-3)]) {
      const v = new Float64Array(64).fill(c);
      const bytes = codec.encode(v);
      expect(new DataView(bytes.buffer).getFloat32(4, true)).toBe(0);
      expect(Array.from(codec.decode(bytes, 64))).toEqual(Array.from(v));
      expect(codec.errorBound(v)).toBe(0);
    }
  });

  it('keeps non-float32 constants within a tiny bound', () => {
    for (const c of [0.1, -1e-3, 123.456]) {
      const v = new Float64Array(16).fill(c);
      const decoded = codec.decode(codec.encode(v), 16);
      const bound = codec.errorBound(v);
      expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(bound);
      expect(bound).toBeLessThanOrEqual(Math.abs(c) * 2 ** -30);
    }
  });

  it('keeps small spreads around a large offset accurate', () => {
    const rand = mulberry32(5);
    const v = new Float64Array(1600);
    for (let i = 0; i < v.length; i++) v[i] = 1000 + rand() * 1e-3;
    const decoded = codec.decode(codec.encode(v), v.length);
    const bound = codec.errorBound(v);
    expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(bound);
    expect(bound).toBeLessThan(1e-3 / 255);
  });

  it('handles extreme float32-range vectors', () => {
    const v = [-FLOAT32_MAX, FLOAT32_MAX, 0, 1e38, -1e-45];
    const decoded = codec.decode(codec.encode(v), v.length);
    expect(decoded.every(Number.isFinite)).toBe(true);
    expect(maxAbsError(decoded, v)).toBeLessThanOrEqual(codec.errorBound(v));
    expectCodecError(() => codec.encode([1e39]), /float32 range/);
  });

  it('rejects an invalid header', () => {
    const bytes = codec.encode([1, 2, 3]);
    const bad = (mutate: (dv: DataView) => void): Uint8Array => {
      const copy = bytes.slice();
      mutate(new DataView(copy.buffer));
      return copy;
    };
    expectCodecError(() => codec.decode(bad((dv) => dv.setFloat32(0, Number.NaN, true)), 3), /header/);
    expectCodecError(() => codec.decode(bad((dv) => dv.setFloat32(4, Infinity, true)), 3), /header/);
    expectCodecError(() => codec.decode(bad((dv) => dv.setFloat32(4, -1, true)), 3), /header/);
  });
});
