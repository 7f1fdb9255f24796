import {
  CodecError,
  HOST_IS_LITTLE_ENDIAN,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type VectorCodec,
} from './vector-codec.js';

const BYTES_PER_ELEMENT = 4;
/** Largest finite float32, 2^128 - 2^104. */
export const FLOAT32_MAX = 3.4028234663852886e38;
/** Half the spacing of float32 subnormals: the absolute rounding error bound below 2^-126. */
const HALF_MIN_SUBNORMAL = 2 ** -150;
const UNIT_ROUNDOFF = 2 ** -24;

function overflowError(index: number, value: number): CodecError {
  return new CodecError(
    `f32: element ${index} (${value}) is outside the float32 range (|v| <= ${FLOAT32_MAX})`,
  );
}

/** Rounds to float32 and throws when the result is not finite. */
function toFloat32(index: number, v: number): number {
  const f = Math.fround(v);
  if (!Number.isFinite(f)) {
    throw Number.isFinite(v) ? overflowError(index, v) : nonFiniteInputError('f32', index, v);
  }
  return f;
}

function encodedLength(dim: number): number {
  assertDim('f32', dim);
  return dim * BYTES_PER_ELEMENT;
}

function encode(vector: ArrayLike<number>): Uint8Array {
  const n = vector.length;
  const out = new Uint8Array(n * BYTES_PER_ELEMENT);
  if (HOST_IS_LITTLE_ENDIAN) {
    const view = new Float32Array(out.buffer, 0, n);
    for (let i = 0; i < n; i++) view[i] = toFloat32(i, vector[i]!);
  } else {
    const dv = new DataView(out.buffer);
    for (let i = 0; i < n; i++) dv.setFloat32(i * BYTES_PER_ELEMENT, toFloat32(i, vector[i]!), true);
  }
  return out;
}

function decode(bytes: Uint8Array, dim: number): Float64Array {
  assertByteLength('f32', bytes, dim, encodedLength(dim));
  const out = new Float64Array(dim);
  if (HOST_IS_LITTLE_ENDIAN && bytes.byteOffset % BYTES_PER_ELEMENT === 0) {
    const src = new Float32Array(bytes.buffer, bytes.byteOffset, dim);
    for (let i = 0; i < dim; i++) out[i] = src[i]!;
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < dim; i++) out[i] = dv.getFloat32(i * BYTES_PER_ELEMENT, true);
  }
  for (let i = 0; i < dim; i++) {
    if (!Number.isFinite(out[i]!)) {
      throw new CodecError(`f32: decoded element ${i} is ${String(out[i])}`);
    }
  }
  return out;
}

/**
 * max over i of: 0 if v_i = 0, else max(|v_i| * 2^-24, 2^-150).
 *
 * Round-to-nearest float32 has relative error <= 2^-24 (half an ulp of a 24-bit significand) in
 * the normal range; values that round to FLOAT32_MAX are within that too. Below 2^-126 the
 * subnormal spacing is 2^-149, so the absolute error is <= 2^-150. Zero is exact, and float32 ->
 * float64 widening on decode is exact.
 */
function errorBound(vector: ArrayLike<number>): number {
  let maxAbs = 0;
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i]!;
    toFloat32(i, v);
    const a = Math.abs(v);
    if (a > maxAbs) maxAbs = a;
  }
  return maxAbs === 0 ? 0 : Math.max(maxAbs * UNIT_ROUNDOFF, HALF_MIN_SUBNORMAL);
}

/** IEEE-754 binary32 codec: 4 bytes per element, round-to-nearest-even. */
export const f32Codec: VectorCodec = Object.freeze({
  name: 'f32',
  encodedLength,
  encode,
  decode,
  errorBound,
});
