import { createTwoByteCodec, twoByteRangeError, type TwoByteFormat } from './two-byte-float.js';
import { CodecError, HOST_IS_LITTLE_ENDIAN, type VectorCodec } from './vector-codec.js';

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

/**
 * The error bound is max over i of: 0 if v_i = 0, else max(|v_i| * 2^-11, 2^-25).
 *
 * Half precision has an 11-bit significand, so round-to-nearest has relative error <= 2^-11 for
 * |v| >= 2^-14 (normal range). Below that the subnormal spacing is 2^-24, so the absolute error is
 * <= 2^-25. |v| <= 65504 is enforced, so nothing rounds to infinity. Decoding is exact.
 */
const FLOAT16: TwoByteFormat = {
  name: 'f16', formatName: 'float16', max: FLOAT16_MAX, round: roundToHalfBits, value: halfValue,
  significandBits: 11, floor: 2 ** -25,
};

/** Exact value of half-precision bits (0..0xFFFF), including ±Infinity and NaN. */
export function fromFloat16Bits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffff) {
    throw new CodecError(`f16: bit pattern must be an integer in [0, 0xFFFF], got ${String(bits)}`);
  }
  return halfValue(bits);
}

/** The value of half-precision bits, unchecked. */
function halfValue(bits: number): number {
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
  if (bits < 0) throw twoByteRangeError(FLOAT16, 0, x);
  return bits;
}

/** IEEE-754 binary16 codec: 2 bytes per element, round-to-nearest-even, |v| <= 65504. */
export const f16Codec: VectorCodec = createTwoByteCodec(FLOAT16);
