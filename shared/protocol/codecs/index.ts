import { int4B32Codec, int4Codec, int4H16Codec, int8B32Codec, int8Codec, int8H16Codec } from './affine.js';
import { bf16Codec } from './bf16.js';
import { binaryCodec } from './binary.js';
import { f16Codec } from './f16.js';
import { f32Codec } from './f32.js';
import { f64Codec } from './f64.js';
import { rp16Codec, rp32Codec, rp8Codec } from './rp.js';
import { topk16Codec, topk32Codec } from './topk.js';
import { CodecError, assertDim, type CodecName, type VectorCodec } from './vector-codec.js';

export { CodecError, type CodecName, type VectorCodec } from './vector-codec.js';
export { int4B32Codec, int4Codec, int4H16Codec, int8B32Codec, int8Codec, int8H16Codec } from './affine.js';
export { bf16Codec, fromBfloat16Bits, toBfloat16Bits, BFLOAT16_MAX } from './bf16.js';
export { binaryCodec } from './binary.js';
export { f16Codec, fromFloat16Bits, toFloat16Bits, FLOAT16_MAX } from './f16.js';
export { f32Codec, FLOAT32_MAX } from './f32.js';
export { f64Codec } from './f64.js';
export { topk16Codec, topk32Codec, TOPK_MAX_DIM } from './topk.js';
export { rp8Codec, rp16Codec, rp32Codec, rpProjection, RP_MAX_DIM, RP_SEED } from './rp.js';
export {
  createPqCodec,
  decodePqCodebook,
  encodePqCodebook,
  pqCodebookBytes,
  pqMeanSquaredError,
  trainPqCodebook,
  PQ_DEFAULT_ITERATIONS,
  PQ_MAX_CENTROIDS,
  type PqCodebook,
  type PqTrainOptions,
} from './pq.js';

/**
 * Names of the stateless codecs in the registry: every CodecName except 'pq', whose codec depends
 * on a trained codebook (createPqCodec).
 */
export type RegisteredCodecName = Exclude<CodecName, 'pq'>;

/**
 * All registered codec names: floating-point formats from most to least precise, then the
 * quantisers, then the random projections (which need dim >= m).
 */
export const CODEC_NAMES: readonly RegisteredCodecName[] = Object.freeze([
  'f64',
  'f32',
  'bf16',
  'f16',
  'int8',
  'int8-b32',
  'int4',
  'int4-b32',
  'int8-h16',
  'int4-h16',
  'binary',
  'topk-16',
  'topk-32',
  'rp-8',
  'rp-16',
  'rp-32',
] as const);

/** Codec implementations keyed by name. */
export const CODECS: Readonly<Record<RegisteredCodecName, VectorCodec>> = Object.freeze({
  f64: f64Codec,
  f32: f32Codec,
  bf16: bf16Codec,
  f16: f16Codec,
  int8: int8Codec,
  'int8-b32': int8B32Codec,
  int4: int4Codec,
  'int4-b32': int4B32Codec,
  'int8-h16': int8H16Codec,
  'int4-h16': int4H16Codec,
  binary: binaryCodec,
  'topk-16': topk16Codec,
  'topk-32': topk32Codec,
  'rp-8': rp8Codec,
  'rp-16': rp16Codec,
  'rp-32': rp32Codec,
});

/** Whether `name` is a registered codec name (never 'pq'). */
export function isCodecName(name: string): name is RegisteredCodecName {
  return Object.hasOwn(CODECS, name);
}

/**
 * Looks up a codec by name; throws CodecError listing the known codecs for an unknown name.
 *
 * @example
 * const codec = getCodec('int4-b32');
 * const decoded = codec.decode(codec.encode(vector), vector.length);
 */
export function getCodec(name: string): VectorCodec {
  if (!isCodecName(name)) {
    throw new CodecError(`Unknown codec "${name}"; known codecs: ${CODEC_NAMES.join(', ')}`);
  }
  return CODECS[name];
}

/** What a codec keeps, for help text and reports. */
export interface CodecInfo {
  readonly name: RegisteredCodecName;
  /** One line: the format and its byte layout. */
  readonly summary: string;
  /** Whether decode(encode(v)) === v for every finite v (only f64). */
  readonly lossless: boolean;
  /** encodedLength(dim) * 8 / dim, headers and padding included. Throws CodecError for dim < 1. */
  bitsPerElement(dim: number): number;
}

const SUMMARIES: Record<RegisteredCodecName, string> = {
  f64: 'IEEE binary64, 8 bytes per element, lossless',
  f32: 'IEEE binary32, 4 bytes per element',
  bf16: 'bfloat16 (float32 range, 8-bit significand), 2 bytes per element',
  f16: 'IEEE binary16 (|v| <= 65504), 2 bytes per element',
  int8: 'affine 8-bit: float32 offset and scale per vector, then 1 byte per element',
  'int8-b32': 'affine 8-bit: float32 offset and scale per block of 32, then 1 byte per element',
  int4: 'affine 4-bit: float32 offset and scale per vector, then 2 elements per byte',
  'int4-b32': 'affine 4-bit: float32 offset and scale per block of 32, then 2 elements per byte',
  'int8-h16': 'affine 8-bit: float16 offset and scale per vector (|v| <= 65504), then 1 byte per element',
  'int4-h16': 'affine 4-bit: float16 offset and scale per vector (|v| <= 65504), then 2 elements per byte',
  binary: 'signs: float32 mean |v|, then 1 bit per element',
  'topk-16': 'the 16 largest-magnitude elements as (u16 index, float32 value); the rest are 0',
  'topk-32': 'the 32 largest-magnitude elements as (u16 index, float32 value); the rest are 0',
  'rp-8': 'random projection: 8 float32 coefficients R·v (seeded orthonormal R, never sent), dim >= 8',
  'rp-16': 'random projection: 16 float32 coefficients R·v (seeded orthonormal R, never sent), dim >= 16',
  'rp-32': 'random projection: 32 float32 coefficients R·v (seeded orthonormal R, never sent), dim >= 32',
};

/**
 * Describes a codec by name; throws CodecError for an unknown name.
 *
 * @example
 * describeCodec('int4').bitsPerElement(64); // 5: (8 + 32) bytes * 8 / 64
 */
export function describeCodec(name: string): CodecInfo {
  const codec = getCodec(name);
  // getCodec throws for anything but a registered name.
  const registered = codec.name as RegisteredCodecName;
  return Object.freeze({
    name: registered,
    summary: SUMMARIES[registered],
    lossless: codec.name === 'f64',
    bitsPerElement(dim: number): number {
      assertDim(codec.name, dim);
      if (dim === 0) throw new CodecError(`${codec.name}: bitsPerElement needs a dimension >= 1`);
      return (codec.encodedLength(dim) * 8) / dim;
    },
  });
}
