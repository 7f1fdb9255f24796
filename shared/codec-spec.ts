import { CODEC_NAMES, CodecError, getCodec, type VectorCodec } from './codecs/index.js';

/** Lossless deflate of an update's or table's vectors, on top of any codec. */
export const DEFLATE_SUFFIX = '+deflate';

/** What a client offers in its hello: every codec, and deflate. */
export const CODEC_CAPABILITIES: readonly string[] = [...CODEC_NAMES, 'deflate'];

export interface CodecSpec {
  /** The spec as written, e.g. "int8+deflate". */
  spec: string;
  codec: VectorCodec;
  deflate: boolean;
}

/**
 * Reads a codec spec: a codec name, optionally followed by "+deflate". Throws CodecError naming
 * the known codecs for anything else.
 *
 * @example
 * parseCodecSpec('int4-b32+deflate'); // { codec: int4-b32, deflate: true }
 */
export function parseCodecSpec(spec: string): CodecSpec {
  const deflate = spec.endsWith(DEFLATE_SUFFIX);
  const name = deflate ? spec.slice(0, -DEFLATE_SUFFIX.length) : spec;
  return { spec, codec: getCodec(name), deflate };
}

/** Whether a string is a valid codec spec. */
export function isCodecSpec(spec: string): boolean {
  try {
    parseCodecSpec(spec);
    return true;
  } catch (err) {
    if (err instanceof CodecError) return false;
    throw err;
  }
}

/** The capabilities a peer must offer to use this spec. */
export function capabilitiesNeeded(spec: CodecSpec): string[] {
  return spec.deflate ? [spec.codec.name, 'deflate'] : [spec.codec.name];
}
