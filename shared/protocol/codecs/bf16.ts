import { createTwoByteCodec, twoByteRangeError, type TwoByteFormat } from './two-byte-float.js';
import { CodecError, HOST_IS_LITTLE_ENDIAN, type VectorCodec } from './vector-codec.js';

/** Largest finite bfloat16 value, (2 - 2^-7) * 2^127 (bits 0x7F7F). */
export const BFLOAT16_MAX = (2 - 2 ** -7) * 2 ** 127;

/** Adding then subtracting 2^52 rounds a double in [0, 2^51) to an integer, ties to even. */
const ROUND_MAGIC = 2 ** 52;

// Scratch for reading the exponent bits of a double, and for widening bf16 bits to a float32.
const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);
const HIGH_WORD = HOST_IS_LITTLE_ENDIAN ? 1 : 0;
const widenF32 = new Float32Array(1);
const widenU32 = new Uint32Array(widenF32.buffer);

/**
 * ENCODE_SCALE[k] = 2^(133 - k). With k = max(0, e + 126) for |x| in [2^e, 2^(e+1)), |x| * 2^(133-k)
 * is the bfloat16 significand (implicit bit included) in units of its ulp: [128, 256) for normals
 * and [0, 128) for subnormals (k = 0, ulp 2^-133).
 */
const ENCODE_SCALE = new Float64Array(254);
for (let k = 0; k < ENCODE_SCALE.length; k++) ENCODE_SCALE[k] = 2 ** (133 - k);

/**
 * bfloat16 bits of x rounded to nearest-even, or -1 if x is NaN, infinite or |x| > BFLOAT16_MAX.
 * Rounds the double directly: going through float32 first would round twice.
 */
function roundToBfloat16Bits(x: number): number {
  const a = Math.abs(x);
  if (!(a <= BFLOAT16_MAX)) return -1;
  scratchF64[0] = x;
  const hi = scratchU32[HIGH_WORD]!;
  // Double biased exponent minus (1023 - 126): the bf16 biased exponent minus 1, for normals.
  const k0 = ((hi >>> 20) & 0x7ff) - 897;
  const k = k0 > 0 ? k0 : 0;
  const significand = a * ENCODE_SCALE[k]! + ROUND_MAGIC - ROUND_MAGIC;
  // (k << 7) + significand = ((k + 1) << 7) + (significand - 128) for normals; a rounding carry to
  // 256 (or to 128 from the subnormal range) correctly bumps the exponent field.
  return ((hi >>> 16) & 0x8000) | ((k << 7) + significand);
}

/**
 * The error bound is max over i of: 0 if v_i = 0, else max(|v_i| * 2^-8, 2^-134).
 *
 * bfloat16 has an 8-bit significand, so round-to-nearest has relative error <= 2^-8 for
 * |v| >= 2^-126 (normal range). Below that the subnormal spacing is 2^-133, so the absolute error
 * is <= 2^-134. |v| <= BFLOAT16_MAX is enforced, so nothing rounds to infinity. Decoding is exact.
 */
const BFLOAT16: TwoByteFormat = {
  name: 'bf16', formatName: 'bfloat16', max: BFLOAT16_MAX, round: roundToBfloat16Bits, value: bfloat16Value,
  significandBits: 8, floor: 2 ** -134,
};

/**
 * Rounds x to the nearest bfloat16 (ties to even, subnormals included) and returns its bit pattern,
 * the top 16 bits of the corresponding float32. Throws CodecError for NaN, ±Infinity or
 * |x| > BFLOAT16_MAX.
 *
 * @example
 * toBfloat16Bits(1); // 0x3f80
 * toBfloat16Bits(0.1); // 0x3dcd
 */
export function toBfloat16Bits(x: number): number {
  const bits = roundToBfloat16Bits(x);
  if (bits < 0) throw twoByteRangeError(BFLOAT16, 0, x);
  return bits;
}

/**
 * Exact value of bfloat16 bits (0..0xFFFF), including ±Infinity and NaN.
 *
 * @example
 * fromBfloat16Bits(0xc000); // -2
 */
export function fromBfloat16Bits(bits: number): number {
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffff) {
    throw new CodecError(`bf16: bit pattern must be an integer in [0, 0xFFFF], got ${String(bits)}`);
  }
  return bfloat16Value(bits);
}

/** The value of bfloat16 bits: the float32 with these as its top half. */
function bfloat16Value(bits: number): number {
  widenU32[0] = bits << 16;
  return widenF32[0]!;
}


/**
 * bfloat16 codec: 2 bytes per element (the top half of a float32), round-to-nearest-even,
 * |v| <= BFLOAT16_MAX. Same range as float32 with 8 significant bits, versus f16's 11 bits and
 * |v| <= 65504.
 */
export const bf16Codec: VectorCodec = createTwoByteCodec(BFLOAT16);
