import {
  CodecError,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type VectorCodec,
} from './vector-codec.js';
import { FLOAT32_MAX } from './f32.js';

/** float32 offset + float32 scale, little-endian. */
const HEADER_BYTES = 8;
const LEVELS = 255;
const SMALLEST_FLOAT32 = 2 ** -149;

const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);

/** Smallest float32 strictly greater than x (x a finite float32 < FLOAT32_MAX). */
function nextUpFloat32(x: number): number {
  if (x === 0) return SMALLEST_FLOAT32;
  scratchF32[0] = x;
  scratchI32[0] = scratchI32[0]! + (x > 0 ? 1 : -1);
  return scratchF32[0]!;
}

/** Largest float32 <= x (x a double within the float32 range). */
function roundDownToFloat32(x: number): number {
  const f = Math.fround(x);
  return f > x ? -nextUpFloat32(-f) : f;
}

/** Smallest float32 >= x (x a double within the float32 range). */
function roundUpToFloat32(x: number): number {
  const f = Math.fround(x);
  return f < x ? nextUpFloat32(f) : f;
}

interface Int8Header {
  offset: number;
  scale: number;
}

/**
 * offset = largest float32 <= min; scale = smallest float32 such that offset + 255 * scale >= max
 * (as evaluated by the decoder). Directed rounding keeps every element inside the grid, so codes
 * never clip. scale is 0 exactly when the vector is constant and float32-representable.
 */
function computeHeader(vector: ArrayLike<number>): Int8Header {
  const n = vector.length;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = vector[i]!;
    if (!(Math.abs(v) <= FLOAT32_MAX)) {
      if (!Number.isFinite(v)) throw nonFiniteInputError('int8', i, v);
      throw new CodecError(
        `int8: element ${i} (${v}) is outside the float32 range (|v| <= ${FLOAT32_MAX})`,
      );
    }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (n === 0) return { offset: 0, scale: 0 };
  const offset = roundDownToFloat32(min);
  if (max === offset) return { offset, scale: 0 };
  let scale = roundUpToFloat32((max - offset) / LEVELS);
  // The division above rounds in double, so it may land an ulp short; at most a few steps fix it.
  while (offset + LEVELS * scale < max) scale = nextUpFloat32(scale);
  return { offset, scale };
}

function encodedLength(dim: number): number {
  assertDim('int8', dim);
  return HEADER_BYTES + dim;
}

function encode(vector: ArrayLike<number>): Uint8Array {
  const { offset, scale } = computeHeader(vector);
  const n = vector.length;
  const out = new Uint8Array(HEADER_BYTES + n);
  const header = new DataView(out.buffer, 0, HEADER_BYTES);
  header.setFloat32(0, offset, true);
  header.setFloat32(4, scale, true);
  if (scale > 0) {
    const inverse = 1 / scale;
    // Uint8ClampedArray stores round half to even and clamp to [0, 255].
    const codes = new Uint8ClampedArray(out.buffer, HEADER_BYTES, n);
    for (let i = 0; i < n; i++) codes[i] = (vector[i]! - offset) * inverse;
  }
  return out;
}

function decode(bytes: Uint8Array, dim: number): Float64Array {
  assertByteLength('int8', bytes, dim, encodedLength(dim));
  const header = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const offset = header.getFloat32(0, true);
  const scale = header.getFloat32(4, true);
  if (!Number.isFinite(offset) || !Number.isFinite(scale) || scale < 0) {
    throw new CodecError(`int8: invalid header (offset ${offset}, scale ${scale})`);
  }
  // With a finite float32 header every offset + q * scale (q <= 255) is finite in double.
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) out[i] = offset + bytes[HEADER_BYTES + i]! * scale;
  return out;
}

/**
 * 0 if scale = 0 (constant float32-representable vector, decoded exactly), else
 *   scale * (1/2 + 2^-40) + 2^-50 * (|offset| + 255 * scale)
 * with offset/scale the float32 header values that encode() writes; scale <= ((max - min) +
 * |min| * 2^-23) / 255 * (1 + 2^-23).
 *
 * Derivation: offset <= min and offset + 255*scale >= max (up to one double rounding, <= 2^-53 *
 * (|offset| + 255*scale)), so t* = (v - offset) / scale lies in [0, 255] up to that slack. The
 * encoder's t = fl(fl(v - offset) * fl(1/scale)) has relative error <= 3 * 2^-53, so |t - t*| <
 * 2^-43, and the stored code q satisfies |q - t*| <= 1/2 + 2^-43, i.e. |offset + q*scale - v| <=
 * scale * (1/2 + 2^-43) (plus the coverage slack when q clips at 255). Decoding computes q*scale
 * exactly (24-bit * 8-bit significands) and rounds the sum once: <= 2^-53 * (|offset| + 255*scale).
 * The extra margin in the constants absorbs the rounding of evaluating the bound itself.
 */
function errorBound(vector: ArrayLike<number>): number {
  const { offset, scale } = computeHeader(vector);
  if (scale === 0) return 0;
  return scale * (0.5 + 2 ** -40) + 2 ** -50 * (Math.abs(offset) + LEVELS * scale);
}

/**
 * Per-vector affine 8-bit quantisation: an 8-byte header (float32 offset, float32 scale) followed
 * by one uint8 code per element; decode is offset + code * scale.
 */
export const int8Codec: VectorCodec = Object.freeze({
  name: 'int8',
  encodedLength,
  encode,
  decode,
  errorBound,
});
