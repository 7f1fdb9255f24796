import {
  CodecError,
  HOST_IS_LITTLE_ENDIAN,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type CodecName,
  type VectorCodec,
} from './vector-codec.js';
import { FLOAT32_MAX } from './f32.js';
import { FLOAT16_MAX, fromFloat16Bits, toFloat16Bits } from './f16.js';

const SMALLEST_FLOAT32 = 2 ** -149;
const SMALLEST_FLOAT16 = 2 ** -24;
/** Adding then subtracting 2^52 rounds a double in [0, 2^51) to an integer, ties to even. */
const ROUND_MAGIC = 2 ** 52;

const scratchF32 = new Float32Array(1);
const scratchI32 = new Int32Array(scratchF32.buffer);
const scratchU8 = new Uint8Array(scratchF32.buffer);

/** A little-endian float32 at any byte offset, without a DataView per call (the merge's hot path). */
function readFloat32(bytes: Uint8Array, at: number): number {
  if (HOST_IS_LITTLE_ENDIAN) {
    scratchU8[0] = bytes[at]!;
    scratchU8[1] = bytes[at + 1]!;
    scratchU8[2] = bytes[at + 2]!;
    scratchU8[3] = bytes[at + 3]!;
  } else {
    scratchU8[3] = bytes[at]!;
    scratchU8[2] = bytes[at + 1]!;
    scratchU8[1] = bytes[at + 2]!;
    scratchU8[0] = bytes[at + 3]!;
  }
  return scratchF32[0]!;
}

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

/** Smallest float16 strictly greater than x (x a finite float16 < FLOAT16_MAX). */
function nextUpFloat16(x: number): number {
  if (x === 0) return SMALLEST_FLOAT16;
  const bits = toFloat16Bits(x);
  return fromFloat16Bits(x > 0 ? bits + 1 : bits - 1);
}

/**
 * How a header value (offset or scale) is stored: float32, or float16 for the `-h16` codecs,
 * whose 4-byte header brings 64-d int8 under 27% of float32 (68 of 256 bytes).
 */
interface HeaderFormat {
  /** Bytes per value. */
  size: 2 | 4;
  max: number;
  rangeName: string;
  roundDown(x: number): number;
  roundUp(x: number): number;
  nextUp(x: number): number;
  read(bytes: Uint8Array, at: number): number;
  write(out: Uint8Array, at: number, value: number): void;
}

const FLOAT32_HEADER: HeaderFormat = {
  size: 4, max: FLOAT32_MAX, rangeName: 'float32',
  roundDown: roundDownToFloat32, roundUp: roundUpToFloat32, nextUp: nextUpFloat32, read: readFloat32,
  write: (out, at, value) => new DataView(out.buffer, out.byteOffset).setFloat32(at, value, true),
};

const FLOAT16_HEADER: HeaderFormat = {
  size: 2, max: FLOAT16_MAX, rangeName: 'float16',
  roundDown: (x) => {
    const f = fromFloat16Bits(toFloat16Bits(x));
    return f > x ? -nextUpFloat16(-f) : f;
  },
  roundUp: (x) => {
    const f = fromFloat16Bits(toFloat16Bits(x));
    return f < x ? nextUpFloat16(f) : f;
  },
  nextUp: nextUpFloat16,
  read: (bytes, at) => fromFloat16Bits(bytes[at]! | (bytes[at + 1]! << 8)),
  write: (out, at, value) => {
    const bits = toFloat16Bits(value);
    out[at] = bits & 0xff;
    out[at + 1] = bits >>> 8;
  },
};

type AffineCodecName = Extract<CodecName, 'int8' | 'int8-b32' | 'int4' | 'int4-b32' | 'int8-h16' | 'int4-h16'>;

/**
 * Builds an affine quantisation codec: each block of `blockSize` elements (0 = the whole vector is
 * one block; the last block may be shorter) gets a float32 offset and float32 scale, and each
 * element a `bits`-bit code q, decoded as offset + q * scale.
 *
 * Layout: all block headers first (offset then scale, 8 bytes per block, in block order), then the
 * codes of the whole vector. 8-bit codes are one byte per element; 4-bit codes pack two elements
 * per byte, the even index in the low nibble, with a zero high nibble in the last byte for odd dim.
 * The per-vector codecs always carry one header, even for dim 0; block codecs carry ceil(dim / B).
 */
function createAffineCodec(name: AffineCodecName, bits: 4 | 8, blockSize: number, format: HeaderFormat = FLOAT32_HEADER): VectorCodec {
  const levels = (1 << bits) - 1;
  /** offset + scale, per block. */
  const HEADER_BYTES = 2 * format.size;
  const read = format.read;
  // Shared by the functions below; safe because each call runs to completion synchronously.
  let headerOffset = 0;
  let headerScale = 0;

  const blockCount = (dim: number): number => (blockSize === 0 ? 1 : Math.ceil(dim / blockSize));
  const codeBytes = (dim: number): number => (bits === 8 ? dim : (dim + 1) >>> 1);

  /**
   * Sets headerOffset = largest header float (float32, or float16) <= min and headerScale =
   * smallest one such that offset + levels * scale >= max (as evaluated by the decoder) over
   * vector[start..end). Directed rounding keeps every element inside the grid, so codes never
   * clip. The scale is 0 exactly when the block is constant and representable.
   */
  function computeHeader(vector: ArrayLike<number>, start: number, end: number): void {
    let min = Infinity;
    let max = -Infinity;
    for (let i = start; i < end; i++) {
      const v = vector[i]!;
      if (!(Math.abs(v) <= format.max)) {
        if (!Number.isFinite(v)) throw nonFiniteInputError(name, i, v);
        throw new CodecError(
          `${name}: element ${i} (${v}) is outside the ${format.rangeName} range (|v| <= ${format.max})`,
        );
      }
      if (v < min) min = v;
      if (v > max) max = v;
    }
    headerScale = 0;
    if (start === end) {
      headerOffset = 0;
      return;
    }
    headerOffset = format.roundDown(min);
    if (max === headerOffset) return;
    let scale = format.roundUp((max - headerOffset) / levels);
    // The division above rounds in double, so it may land an ulp short; at most a few steps fix it.
    while (headerOffset + levels * scale < max) scale = format.nextUp(scale);
    headerScale = scale;
  }

  function encodedLength(dim: number): number {
    assertDim(name, dim);
    return HEADER_BYTES * blockCount(dim) + codeBytes(dim);
  }

  function encode(vector: ArrayLike<number>): Uint8Array {
    const n = vector.length;
    const blocks = blockCount(n);
    const codesAt = HEADER_BYTES * blocks;
    const out = new Uint8Array(codesAt + codeBytes(n));
    // Uint8ClampedArray stores round half to even and clamp to [0, 255].
    const codes8 = bits === 8 ? new Uint8ClampedArray(out.buffer, codesAt, n) : null;
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      const end = blockSize === 0 ? n : Math.min(n, start + blockSize);
      computeHeader(vector, start, end);
      format.write(out, b * HEADER_BYTES, headerOffset);
      format.write(out, b * HEADER_BYTES + format.size, headerScale);
      // Codes stay 0 for a zero scale, which decodes to the offset exactly.
      if (headerScale === 0) continue;
      const offset = headerOffset;
      const inverse = 1 / headerScale;
      if (codes8) {
        for (let i = start; i < end; i++) codes8[i] = (vector[i]! - offset) * inverse;
      } else {
        for (let i = start; i < end; i++) {
          // t is in [0, 15] up to ~2^-46; a tiny negative t rounds to (-)0, which `|` treats as 0.
          const q = (vector[i]! - offset) * inverse + ROUND_MAGIC - ROUND_MAGIC;
          out[codesAt + (i >>> 1)]! |= (q > 15 ? 15 : q) << ((i & 1) << 2);
        }
      }
    }
    return out;
  }

  function decode(bytes: Uint8Array, dim: number): Float64Array {
    assertByteLength(name, bytes, dim, encodedLength(dim));
    const out = new Float64Array(dim);
    decodeInto(bytes, 0, dim, out, 0);
    return out;
  }

  function validate(bytes: Uint8Array, at: number, dim: number): void {
    const length = encodedLength(dim);
    if (at < 0 || at + length > bytes.length) throw new CodecError(`${name}: expected ${length} bytes for dimension ${dim} at ${at}, got ${bytes.length - at}`);
    if (bits === 4 && dim % 2 === 1 && bytes[at + length - 1]! >>> 4 !== 0) {
      throw new CodecError(`${name}: the padding nibble after element ${dim - 1} must be zero`);
    }
    const blocks = blockCount(dim);
    for (let b = 0; b < blocks; b++) {
      const offset = read(bytes, at + b * HEADER_BYTES);
      const scale = read(bytes, at + b * HEADER_BYTES + format.size);
      if (!Number.isFinite(offset) || !Number.isFinite(scale) || scale < 0) {
        throw new CodecError(`${name}: invalid header for block ${b} (offset ${offset}, scale ${scale})`);
      }
    }
  }

  function decodeInto(bytes: Uint8Array, at: number, dim: number, out: Float64Array, outAt: number): void {
    validate(bytes, at, dim);
    if (outAt < 0 || outAt + dim > out.length) throw new RangeError(`${name}: no room for ${dim} values at ${outAt} in ${out.length}`);
    const blocks = blockCount(dim);
    const codesAt = at + HEADER_BYTES * blocks;
    for (let b = 0; b < blocks; b++) {
      const offset = read(bytes, at + b * HEADER_BYTES);
      const scale = read(bytes, at + b * HEADER_BYTES + format.size);
      const start = b * blockSize;
      const end = blockSize === 0 ? dim : Math.min(dim, start + blockSize);
      // With a finite float32 header every offset + q * scale (q <= 255) is finite in double.
      if (bits === 8) {
        for (let i = start; i < end; i++) out[outAt + i] = offset + bytes[codesAt + i]! * scale;
      } else {
        for (let i = start; i < end; i++) out[outAt + i] = offset + ((bytes[codesAt + (i >>> 1)]! >>> ((i & 1) << 2)) & 15) * scale;
      }
    }
  }

  function accumulateInto(bytes: Uint8Array, at: number, dim: number, weight: number, sum: Float64Array, sumAt: number): void {
    if (sumAt < 0 || sumAt + dim > sum.length) throw new RangeError(`${name}: no room for ${dim} values at ${sumAt} in ${sum.length}`);
    const blocks = blockCount(dim);
    const codesAt = at + HEADER_BYTES * blocks;
    for (let b = 0; b < blocks; b++) {
      const offset = read(bytes, at + b * HEADER_BYTES);
      const scale = read(bytes, at + b * HEADER_BYTES + format.size);
      const start = b * blockSize;
      const end = blockSize === 0 ? dim : Math.min(dim, start + blockSize);
      if (bits === 8) {
        for (let i = start; i < end; i++) sum[sumAt + i]! += weight * (offset + bytes[codesAt + i]! * scale);
      } else {
        for (let i = start; i < end; i++) sum[sumAt + i]! += weight * (offset + ((bytes[codesAt + (i >>> 1)]! >>> ((i & 1) << 2)) & 15) * scale);
      }
    }
  }

  /**
   * max over blocks of: 0 if scale = 0 (constant float32-representable block, decoded exactly),
   * else scale * (1/2 + 2^-40) + 2^-50 * (|offset| + L * scale), with L = 2^bits - 1 and
   * offset/scale the float32 header values that encode() writes for the block;
   * scale <= ((max - min) + |min| * 2^-23) / L * (1 + 2^-23) over the block.
   *
   * Derivation: offset <= min and offset + L*scale >= max (up to one double rounding, <= 2^-53 *
   * (|offset| + L*scale)), so t* = (v - offset) / scale lies in [0, L] up to that slack. The
   * encoder's t = fl(fl(v - offset) * fl(1/scale)) has relative error <= 3 * 2^-53, so |t - t*| <
   * 2^-43, and the stored code q satisfies |q - t*| <= 1/2 + 2^-43, i.e. |offset + q*scale - v| <=
   * scale * (1/2 + 2^-43) (plus the coverage slack when q clips at L). Decoding computes q*scale
   * exactly (24-bit * 8-bit significands) and rounds the sum once: <= 2^-53 * (|offset| + L*scale).
   * The extra margin in the constants absorbs the rounding of evaluating the bound itself.
   */
  function errorBound(vector: ArrayLike<number>): number {
    const n = vector.length;
    const blocks = blockCount(n);
    let bound = 0;
    for (let b = 0; b < blocks; b++) {
      const start = b * blockSize;
      computeHeader(vector, start, blockSize === 0 ? n : Math.min(n, start + blockSize));
      if (headerScale === 0) continue;
      const blockBound =
        headerScale * (0.5 + 2 ** -40) + 2 ** -50 * (Math.abs(headerOffset) + levels * headerScale);
      if (blockBound > bound) bound = blockBound;
    }
    return bound;
  }

  return Object.freeze({ name, encodedLength, encode, decode, decodeInto, validate, accumulateInto, errorBound });
}

/**
 * Per-vector affine 8-bit quantisation: an 8-byte header (float32 offset, float32 scale) followed
 * by one uint8 code per element; decode is offset + code * scale. 8 + dim bytes.
 */
export const int8Codec: VectorCodec = createAffineCodec('int8', 8, 0);

/**
 * Block-wise affine 8-bit quantisation: one float32 offset/scale header per block of 32 elements
 * (all headers first), then one uint8 code per element. 8 * ceil(dim / 32) + dim bytes. Much more
 * accurate than int8 when the range varies across the vector.
 */
export const int8B32Codec: VectorCodec = createAffineCodec('int8-b32', 8, 32);

/**
 * Per-vector affine 4-bit quantisation (16 levels): an 8-byte header (float32 offset, float32
 * scale), then ceil(dim / 2) bytes of packed codes, even index in the low nibble. 8 + ceil(dim / 2)
 * bytes.
 */
export const int4Codec: VectorCodec = createAffineCodec('int4', 4, 0);

/**
 * Block-wise affine 4-bit quantisation: one float32 offset/scale header per block of 32 elements
 * (all headers first), then ceil(dim / 2) bytes of packed codes, even index in the low nibble.
 * 8 * ceil(dim / 32) + ceil(dim / 2) bytes.
 */
export const int4B32Codec: VectorCodec = createAffineCodec('int4-b32', 4, 32);

/**
 * int8 with a float16 offset and scale (4 bytes) instead of float32: 4 + dim bytes, 68 for 64-d
 * (26.6% of float32). Elements must be within the float16 range (|v| <= 65504).
 */
export const int8H16Codec: VectorCodec = createAffineCodec('int8-h16', 8, 0, FLOAT16_HEADER);

/** int4 with a float16 offset and scale: 4 + ceil(dim / 2) bytes, 36 for 64-d (14.1% of float32). */
export const int4H16Codec: VectorCodec = createAffineCodec('int4-h16', 4, 0, FLOAT16_HEADER);
