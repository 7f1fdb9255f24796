import { f16Codec } from './f16.js';
import { f32Codec } from './f32.js';
import { f64Codec } from './f64.js';
import { int8Codec } from './int8.js';
import { CodecError, type CodecName, type VectorCodec } from './vector-codec.js';

export { CodecError, type CodecName, type VectorCodec } from './vector-codec.js';
export { f16Codec, fromFloat16Bits, toFloat16Bits, FLOAT16_MAX } from './f16.js';
export { f32Codec, FLOAT32_MAX } from './f32.js';
export { f64Codec } from './f64.js';
export { int8Codec } from './int8.js';

/** All codec names, from most to least precise. */
export const CODEC_NAMES: readonly CodecName[] = Object.freeze(['f64', 'f32', 'f16', 'int8']);

/** Codec implementations keyed by name. */
export const CODECS: Record<CodecName, VectorCodec> = Object.freeze({
  f64: f64Codec,
  f32: f32Codec,
  f16: f16Codec,
  int8: int8Codec,
});

/** Whether `name` is a known codec name. */
export function isCodecName(name: string): name is CodecName {
  return Object.hasOwn(CODECS, name);
}

/** Looks up a codec by name; throws CodecError listing the known codecs for an unknown name. */
export function getCodec(name: string): VectorCodec {
  if (!isCodecName(name)) {
    throw new CodecError(`Unknown codec "${name}"; known codecs: ${CODEC_NAMES.join(', ')}`);
  }
  return CODECS[name];
}
