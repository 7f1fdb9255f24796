/** Names of the supported prototype-vector codecs. */
export type CodecName =
  | 'f64'
  | 'f32'
  | 'bf16'
  | 'f16'
  | 'int8'
  | 'int8-b32'
  | 'int4'
  | 'int4-b32'
  | 'int8-h16'
  | 'int4-h16'
  | 'binary'
  | 'topk-16'
  | 'topk-32'
  | 'rp-8'
  | 'rp-16'
  | 'rp-32'
  /** Product quantisation with a trained codebook: stateful, made by createPqCodec, not in the registry. */
  | 'pq';

/**
 * Turns a prototype vector into bytes and back. All multi-byte values are little-endian.
 * Implementations are stateless and safe to share (a pq codec is fixed by its codebook).
 */
export interface VectorCodec {
  readonly name: CodecName;
  /** Exact byte length of encode(v) for a vector of this dimension. Throws CodecError for an invalid dim. */
  encodedLength(dim: number): number;
  /**
   * Encodes a vector (typically a Float64Array or Float32Array). Every element must be finite and
   * inside the codec's representable range, otherwise a CodecError is thrown.
   */
  encode(vector: ArrayLike<number>): Uint8Array;
  /**
   * Decodes `dim` elements. `bytes` may be a subarray at any byteOffset. Throws CodecError if
   * `bytes.length !== encodedLength(dim)` or a decoded value would not be finite.
   */
  decode(bytes: Uint8Array, dim: number): Float64Array;
  /**
   * decode() of the encodedLength(dim) bytes at `bytes[at ..]`, written into `out[outAt .. outAt + dim)`
   * instead of a new array (optional; see decode-into.ts). No subarray per vector: the merge's hot path.
   */
  decodeInto?(bytes: Uint8Array, at: number, dim: number, out: Float64Array, outAt: number): void;
  /** The checks of decode() alone, for the vector at `bytes[at ..]` (optional, with accumulateInto). */
  validate?(bytes: Uint8Array, at: number, dim: number): void;
  /**
   * Adds `weight` × decode() of the vector at `bytes[at ..]` to `sum[sumAt .. sumAt + dim)`, with
   * the same float operations as decoding and then adding (so the same bits), in one pass. Only
   * for bytes that passed validate().
   */
  accumulateInto?(bytes: Uint8Array, at: number, dim: number, weight: number, sum: Float64Array, sumAt: number): void;
  /**
   * Guaranteed upper bound on |decode(encode(v))[i] - v[i]|, maxed over all elements i.
   * Throws CodecError for vectors that encode() would reject.
   */
  errorBound(vector: ArrayLike<number>): number;
}

/** Raised for unencodable input, malformed bytes, bad dimensions and unknown codec names. */
export class CodecError extends Error {
  override name = 'CodecError';
}

/**
 * Whether typed-array views use little-endian byte order on this host (true on every mainstream
 * platform); codecs fall back to DataView when it is not. Internal to the codecs.
 */
export const HOST_IS_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws CodecError unless `dim` is a non-negative safe integer. Internal to the codecs. */
export function assertDim(codec: CodecName, dim: number): void {
  if (!Number.isSafeInteger(dim) || dim < 0) {
    throw new CodecError(`${codec}: dimension must be a non-negative integer, got ${String(dim)}`);
  }
}

/** Throws CodecError unless `bytes` has exactly `expected` bytes. Internal to the codecs. */
export function assertByteLength(codec: CodecName, bytes: Uint8Array, dim: number, expected: number): void {
  if (bytes.length !== expected) {
    throw new CodecError(
      `${codec}: expected ${expected} bytes for dimension ${dim}, got ${bytes.length}`,
    );
  }
}

/** Builds the CodecError for an element that is NaN or infinite. Internal to the codecs. */
export function nonFiniteInputError(codec: CodecName, index: number, value: number): CodecError {
  return new CodecError(`${codec}: element ${index} is ${String(value)}; only finite values can be encoded`);
}

/**
 * The error bound of a round-to-nearest float format: `max(max|v| · 2^-bits, floor)`, 0 for a zero
 * vector, after checking that every element is within ±`limit` (a CodecError names the first that
 * is not). `bits` is the significand precision; `floor` is half the smallest subnormal step.
 */
export function floatFormatErrorBound(
  codec: CodecName,
  vector: ArrayLike<number>,
  limit: number,
  bits: number,
  floor: number,
  rangeName: string,
): number {
  let maxAbs = 0;
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i]!;
    const a = Math.abs(v);
    if (!(a <= limit)) {
      if (!Number.isFinite(v)) throw nonFiniteInputError(codec, i, v);
      throw new CodecError(`${codec}: element ${i} (${v}) exceeds the ${rangeName} range (|v| <= ${limit})`);
    }
    if (a > maxAbs) maxAbs = a;
  }
  return maxAbs === 0 ? 0 : Math.max(maxAbs * 2 ** -bits, floor);
}
