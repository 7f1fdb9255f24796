import {
  CodecError,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type CodecName,
  type VectorCodec,
} from './vector-codec.js';
import { FLOAT32_MAX } from './f32.js';

/** u16 index + float32 value, little-endian. */
const SLOT_BYTES = 6;
/** Marks an unused slot; never a valid index because dim <= 65535. */
const EMPTY_INDEX = 0xffff;
/** Largest supported dimension: indices must fit in a u16 below EMPTY_INDEX. */
export const TOPK_MAX_DIM = 0xffff;

type TopKCodecName = Extract<CodecName, 'topk-16' | 'topk-32'>;

/**
 * Builds a codec that keeps the k largest-magnitude elements (ties to the lower index) as k slots
 * of (u16 index, float32 value), indices ascending; every other element decodes to 0. The length
 * is always 6k bytes: when dim < k, slots dim..k-1 hold index 0xFFFF and value 0.
 */
function createTopKCodec(name: TopKCodecName, k: number): VectorCodec {
  // The kept elements, ordered by magnitude descending then index ascending. Shared by the
  // functions below; safe because each call runs to completion synchronously.
  const keptMag = new Float64Array(k);
  const keptIdx = new Int32Array(k);
  let keptCount = 0;

  function assertSupportedDim(dim: number): void {
    if (dim > TOPK_MAX_DIM) {
      throw new CodecError(`${name}: dimension ${dim} exceeds the maximum of ${TOPK_MAX_DIM}`);
    }
  }

  /** Fills keptMag/keptIdx/keptCount and returns the largest dropped magnitude (0 if none). */
  function select(vector: ArrayLike<number>): number {
    const n = vector.length;
    assertSupportedDim(n);
    keptCount = 0;
    let dropped = 0;
    for (let i = 0; i < n; i++) {
      const v = vector[i]!;
      const a = Math.abs(v);
      if (!(a <= FLOAT32_MAX)) {
        if (!Number.isFinite(v)) throw nonFiniteInputError(name, i, v);
        throw new CodecError(
          `${name}: element ${i} (${v}) is outside the float32 range (|v| <= ${FLOAT32_MAX})`,
        );
      }
      let j: number;
      if (keptCount < k) {
        j = keptCount++;
      } else {
        // Indices arrive ascending, so an equal magnitude loses to the one already kept.
        const weakest = keptMag[k - 1]!;
        if (!(a > weakest)) {
          if (a > dropped) dropped = a;
          continue;
        }
        if (weakest > dropped) dropped = weakest;
        j = k - 1;
      }
      while (j > 0 && keptMag[j - 1]! < a) {
        keptMag[j] = keptMag[j - 1]!;
        keptIdx[j] = keptIdx[j - 1]!;
        j--;
      }
      keptMag[j] = a;
      keptIdx[j] = i;
    }
    return dropped;
  }

  function encodedLength(dim: number): number {
    assertDim(name, dim);
    assertSupportedDim(dim);
    return k * SLOT_BYTES;
  }

  function encode(vector: ArrayLike<number>): Uint8Array {
    select(vector);
    const indices = keptIdx.subarray(0, keptCount).sort();
    const out = new Uint8Array(k * SLOT_BYTES);
    const dv = new DataView(out.buffer);
    for (let s = 0; s < k; s++) {
      if (s < keptCount) {
        const i = indices[s]!;
        dv.setUint16(s * SLOT_BYTES, i, true);
        dv.setFloat32(s * SLOT_BYTES + 2, vector[i]!, true);
      } else {
        dv.setUint16(s * SLOT_BYTES, EMPTY_INDEX, true);
      }
    }
    return out;
  }

  /**
   * Accepts only the canonical layout: for dim <= k, slot s < dim holds index s and the rest are
   * empty (index 0xFFFF, value bits 0); for dim > k, all k indices are strictly ascending and < dim.
   * This rejects most bytes decoded with the wrong dim, which the fixed length cannot catch.
   */
  function decode(bytes: Uint8Array, dim: number): Float64Array {
    assertByteLength(name, bytes, dim, encodedLength(dim));
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float64Array(dim);
    const used = dim < k ? dim : k;
    let previous = -1;
    for (let s = 0; s < k; s++) {
      const index = dv.getUint16(s * SLOT_BYTES, true);
      if (s >= used) {
        if (index !== EMPTY_INDEX || dv.getUint32(s * SLOT_BYTES + 2, true) !== 0) {
          throw new CodecError(
            `${name}: slot ${s} holds index ${index}, expected an empty slot (0xFFFF, 0) for dimension ${dim}`,
          );
        }
        continue;
      }
      if (dim <= k ? index !== s : index <= previous || index >= dim) {
        throw new CodecError(
          `${name}: slot ${s} holds index ${index}, expected ${
            dim <= k ? `index ${s}` : `ascending indices below ${dim}`
          } for dimension ${dim}`,
        );
      }
      const value = dv.getFloat32(s * SLOT_BYTES + 2, true);
      if (!Number.isFinite(value)) {
        throw new CodecError(`${name}: decoded element ${index} is ${String(value)}`);
      }
      out[index] = value;
      previous = index;
    }
    return out;
  }

  /**
   * max(d, r): d is the largest magnitude among dropped elements (0 when dim <= k), which decode
   * to 0, so d is exactly their worst error; r = 0 if v = 0, else max(max_i |v_i| * 2^-24, 2^-150)
   * bounds the round-to-nearest float32 error of the kept values (as for f32).
   */
  function errorBound(vector: ArrayLike<number>): number {
    const dropped = select(vector);
    const maxAbs = keptCount === 0 ? 0 : keptMag[0]!;
    const rounding = maxAbs === 0 ? 0 : Math.max(maxAbs * 2 ** -24, 2 ** -150);
    return dropped > rounding ? dropped : rounding;
  }

  return Object.freeze({ name, encodedLength, encode, decode, errorBound });
}

/** Keeps the 16 largest-magnitude elements as (u16 index, float32 value): 96 bytes, dim <= 65535. */
export const topk16Codec: VectorCodec = createTopKCodec('topk-16', 16);

/** Keeps the 32 largest-magnitude elements as (u16 index, float32 value): 192 bytes, dim <= 65535. */
export const topk32Codec: VectorCodec = createTopKCodec('topk-32', 32);
