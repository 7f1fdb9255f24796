import {
  CodecError,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type VectorCodec,
} from './vector-codec.js';
import { FLOAT32_MAX } from './f32.js';

/** float32 scale, little-endian. */
const HEADER_BYTES = 4;

function rangeError(index: number, value: number): CodecError {
  if (!Number.isFinite(value)) return nonFiniteInputError('binary', index, value);
  return new CodecError(
    `binary: element ${index} (${value}) is outside the float32 range (|v| <= ${FLOAT32_MAX})`,
  );
}

/**
 * float32 nearest to mean |v_i| (0 for the empty vector). Among vectors ±c with the signs of v,
 * c = mean |v_i| minimises the L2 error.
 */
function computeScale(vector: ArrayLike<number>): number {
  const n = vector.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(vector[i]!);
    if (!(a <= FLOAT32_MAX)) throw rangeError(i, vector[i]!);
    sum += a;
  }
  // mean <= max |v_i| (up to rounding) <= FLOAT32_MAX, so the float32 is finite.
  return n === 0 ? 0 : Math.fround(sum / n);
}

function encodedLength(dim: number): number {
  assertDim('binary', dim);
  return HEADER_BYTES + ((dim + 7) >>> 3);
}

function encode(vector: ArrayLike<number>): Uint8Array {
  const scale = computeScale(vector);
  const n = vector.length;
  const out = new Uint8Array(HEADER_BYTES + ((n + 7) >>> 3));
  new DataView(out.buffer).setFloat32(0, scale, true);
  for (let i = 0; i < n; i++) {
    // -0 >= 0, so negative zero counts as non-negative like +0.
    if (vector[i]! >= 0) out[HEADER_BYTES + (i >>> 3)]! |= 1 << (i & 7);
  }
  return out;
}

function decode(bytes: Uint8Array, dim: number): Float64Array {
  assertByteLength('binary', bytes, dim, encodedLength(dim));
  const scale = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES).getFloat32(0, true);
  if (!Number.isFinite(scale) || scale < 0) {
    throw new CodecError(`binary: invalid header (scale ${scale})`);
  }
  if (dim % 8 !== 0 && bytes[bytes.length - 1]! >>> (dim % 8) !== 0) {
    throw new CodecError(`binary: the padding bits after element ${dim - 1} must be zero`);
  }
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) {
    out[i] = (bytes[HEADER_BYTES + (i >>> 3)]! >>> (i & 7)) & 1 ? scale : -scale;
  }
  return out;
}

/**
 * max over i of | |v_i| - s | * (1 + 2^-50), with s = fl32(mean |v_i|) the float32 scale that
 * encode() writes.
 *
 * Decoding gives sign(v_i) * s exactly, so the error of element i is exactly | |v_i| - s |; the
 * factor absorbs the double rounding of that subtraction. Since |s - mean| <= mean * 2^-24 (plus
 * the double rounding of the mean), this is max_i | |v_i| - mean | + mean * 2^-24 up to ~2^-50
 * relative. It is 0 for a ±c vector with c a float32, and large when magnitudes vary: this codec
 * keeps only the sign pattern and the average magnitude.
 */
function errorBound(vector: ArrayLike<number>): number {
  const scale = computeScale(vector);
  let worst = 0;
  for (let i = 0; i < vector.length; i++) {
    const e = Math.abs(Math.abs(vector[i]!) - scale);
    if (e > worst) worst = e;
  }
  return worst * (1 + 2 ** -50);
}

/**
 * Sign quantisation: a float32 scale (mean |v_i|) followed by one bit per element, 1 for v_i >= 0,
 * bit i in byte i >> 3, least significant bit first; decode is ±scale. 4 + ceil(dim / 8) bytes.
 */
export const binaryCodec: VectorCodec = Object.freeze({
  name: 'binary',
  encodedLength,
  encode,
  decode,
  errorBound,
});
