import {
  CodecError,
  assertByteLength,
  assertDim,
  floatFormatErrorBound,
  nonFiniteInputError,
  type CodecName,
  type VectorCodec,
} from './vector-codec.js';

/** A 16-bit floating-point format (IEEE binary16 or bfloat16), as a codec needs it. */
export interface TwoByteFormat {
  name: Extract<CodecName, 'f16' | 'bf16'>;
  /** For messages: "float16", "bfloat16". */
  formatName: string;
  /** Largest finite value. */
  max: number;
  /** Bits of x rounded to nearest-even, or -1 if x is NaN, infinite or beyond ±max. */
  round(x: number): number;
  /** Exact value of bits 0..0xFFFF (±Infinity or NaN when the exponent field is all ones); unchecked. */
  value(bits: number): number;
  /** Significand precision, and half the smallest subnormal step: the error bound's parameters. */
  significandBits: number;
  floor: number;
}

/** The CodecError for an element that the format cannot hold. */
export function twoByteRangeError(f: TwoByteFormat, index: number, value: number): CodecError {
  if (!Number.isFinite(value)) return nonFiniteInputError(f.name, index, value);
  return new CodecError(`${f.name}: element ${index} (${value}) exceeds the ${f.formatName} range (|v| <= ${f.max})`);
}

/**
 * A codec of 2 bytes per element, little-endian, rounding to nearest-even; |v| beyond the format's
 * range is refused. Decoding is exact, so the error bound is max(|v| · 2^-bits, floor).
 */
export function createTwoByteCodec(f: TwoByteFormat): VectorCodec {
  const encodedLength = (dim: number): number => {
    assertDim(f.name, dim);
    return dim * 2;
  };
  return Object.freeze({
    name: f.name,
    encodedLength,
    encode(vector: ArrayLike<number>): Uint8Array {
      const n = vector.length;
      const out = new Uint8Array(n * 2);
      for (let i = 0; i < n; i++) {
        const bits = f.round(vector[i]!);
        if (bits < 0) throw twoByteRangeError(f, i, vector[i]!);
        out[2 * i] = bits & 0xff;
        out[2 * i + 1] = bits >>> 8;
      }
      return out;
    },
    decode(bytes: Uint8Array, dim: number): Float64Array {
      assertByteLength(f.name, bytes, dim, encodedLength(dim));
      const out = new Float64Array(dim);
      for (let i = 0; i < dim; i++) {
        const bits = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
        const v = f.value(bits);
        if (!Number.isFinite(v)) throw new CodecError(`${f.name}: decoded element ${i} is not finite (bits 0x${bits.toString(16)})`);
        out[i] = v;
      }
      return out;
    },
    errorBound(vector: ArrayLike<number>): number {
      return floatFormatErrorBound(f.name, vector, f.max, f.significandBits, f.floor, f.formatName);
    },
  });
}
