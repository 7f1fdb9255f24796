import {
  CodecError,
  HOST_IS_LITTLE_ENDIAN,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type VectorCodec,
  floatFormatErrorBound,
} from './vector-codec.js';

const BYTES_PER_ELEMENT = 2;
/** Largest finite IEEE binary16 value. */
export const FLOAT16_MAX = 65504;

/** Adding then subtracting 2^52 rounds a double in [0, 2^51) to an integer, ties to even. */
const ROUND_MAGIC = 2 ** 52;

// Scratch for reading the sign and exponent bits of a double without allocating.
const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);
const HIGH_WORD = HOST_IS_LITTLE_ENDIAN ? 1 : 0;

/**
 * ENCODE_SCALE[k] = 2^(24 - k). With k = max(0, e + 14) for |x| in [2^e, 2^(e+1)), |x| * 2^(24-k)
 * is the half's significand (implicit bit included) in units of its ulp: [1024, 2048) for normals
 * and [0, 1024) for subnormals (k = 0, ulp 2^-24).
 */
const ENCODE_SCALE = new Float64Array(30);
for (let k = 0; k < ENCODE_SCALE.length; k++) ENCODE_SCALE[k] = 2 ** (24 - k);

/** DECODE_SCALE[exp] = 2^(max(exp, 1) - 25): the ulp of a half with that exponent field. */
const DECODE_SCALE = new Float64Array(31);
for (let exp = 0; exp < DECODE_SCALE.length; exp++) DECODE_SCALE[exp] = 2 ** (Math.max(exp, 1) - 25);

/** Half-precision bits of x rounded to nearest-even, or -1 if x is NaN, infinite or |x| > 65504. */
function roundToHalfBits(x: number): number {
  const a = Math.abs(x);
  if (!(a <= FLOAT16_MAX)) return -1;
  scratchF64[0] = x;
  const hi = scratchU32[HIGH_WORD]!;
  // Double biased exponent minus (1023 - 14): the half's biased exponent minus 1, for normals.
  const k0 = ((hi >>> 20) & 0x7ff) - 1009;
  const k = k0 > 0 ? k0 : 0;
  const significand = a * ENCODE_SCALE[k]! + ROUND_MAGIC - ROUND_MAGIC;
  // (k << 10) + significand = ((k + 1) << 10) + (significand - 1024) for normals; a rounding carry
  // to 2048 (or to 1024 from the subnormal range) correctly bumps the exponent field.
  return ((hi >>> 16) & 0x8000) | ((k << 10) + significand);
}

/** Exact value of half-precision bits (0..0xFFFF), including ±Infinity and NaN. */
export function fromFloat16Bits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffff) {
    throw new CodecError(`f16: bit pattern must be an integer in [0, 0xFFFF], got ${String(bits)}`);
  }
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  let mag: number;
  if (exp === 0x1f) mag = mant === 0 ? Infinity : NaN;
  else mag = (exp === 0 ? mant : mant + 1024) * DECODE_SCALE[exp]!;
  return bits & 0x8000 ? -mag : mag;
}

/**
 * Rounds x to the nearest IEEE binary16 value (ties to even, subnormals included) and returns its
 * bit pattern. Throws CodecError for NaN, ±Infinity or |x| > 65504.
 */
export function toFloat16Bits(x: number): number {
  const bits = roundToHalfBits(x);
  if (bits < 0) throw rangeError(0, x);
  return bits;
}

function rangeError(index: number, value: number): CodecError {
  if (!Number.isFinite(value)) return nonFiniteInputError('f16', index, value);
  return new CodecError(
    `f16: element ${index} (${value}) exceeds the float16 range (|v| <= ${FLOAT16_MAX})`,
  );
}

function encodedLength(dim: number): number {
  assertDim('f16', dim);
  return dim * BYTES_PER_ELEMENT;
}

function encode(vector: ArrayLike<number>): Uint8Array {
  const n = vector.length;
  const out = new Uint8Array(n * BYTES_PER_ELEMENT);
  for (let i = 0; i < n; i++) {
    const bits = roundToHalfBits(vector[i]!);
    if (bits < 0) throw rangeError(i, vector[i]!);
    out[2 * i] = bits & 0xff;
    out[2 * i + 1] = bits >>> 8;
  }
  return out;
}

function decode(bytes: Uint8Array, dim: number): Float64Array {
  assertByteLength('f16', bytes, dim, encodedLength(dim));
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) {
    const bits = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    const exp = (bits >>> 10) & 0x1f;
    if (exp === 0x1f) {
      throw new CodecError(`f16: decoded element ${i} is not finite (bits 0x${bits.toString(16)})`);
    }
    const mant = bits & 0x3ff;
    const mag = (exp === 0 ? mant : mant + 1024) * DECODE_SCALE[exp]!;
    out[i] = bits & 0x8000 ? -mag : mag;
  }
  return out;
}

/**
 * max over i of: 0 if v_i = 0, else max(|v_i| * 2^-11, 2^-25).
 *
 * Half precision has an 11-bit significand, so round-to-nearest has relative error <= 2^-11 for
 * |v| >= 2^-14 (normal range). Below that the subnormal spacing is 2^-24, so the absolute error is
 * <= 2^-25. |v| <= 65504 is enforced, so nothing rounds to infinity. Decoding is exact.
 */
function errorBound(vector: ArrayLike<number>): number {
  return floatFormatErrorBound('f16', vector, FLOAT16_MAX, 11, 2 ** -25, 'float16');
}

/** IEEE-754 binary16 codec: 2 bytes per element, round-to-nearest-even, |v| <= 65504. */
export const f16Codec: VectorCodec = Object.freeze({
  name: 'f16',
  encodedLength,
  encode,
  decode,
  errorBound,
});
