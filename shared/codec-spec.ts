import { CODEC_NAMES, CodecError, getCodec, type VectorCodec } from './codecs/index.js';

/** Lossless deflate of an update's or table's vectors, on top of any codec. */
export const DEFLATE_SUFFIX = '+deflate';
/** Uplink only: encode each class's change against the global prototype the client holds. */
export const DELTA_PREFIX = 'delta+';

/** What a client offers in its hello: every codec, deflate and delta. */
export const CODEC_CAPABILITIES: readonly string[] = [...CODEC_NAMES, 'deflate', 'delta'];

export interface CodecSpec {
  /** The spec as written, e.g. "delta+int8+deflate". */
  spec: string;
  codec: VectorCodec;
  deflate: boolean;
  /**
   * Each vector is the class mean minus the prototype the sender holds for that class in the
   * global table of the update's `base` version (zero for a class it does not hold).
   */
  delta: boolean;
}

/**
 * Reads a codec spec: a codec name, optionally preceded by "delta+" and followed by "+deflate".
 * Throws CodecError naming the known codecs for anything else.
 *
 * @example
 * parseCodecSpec('delta+int4-b32+deflate'); // { codec: int4-b32, deflate: true, delta: true }
 */
export function parseCodecSpec(spec: string): CodecSpec {
  const delta = spec.startsWith(DELTA_PREFIX);
  const rest = delta ? spec.slice(DELTA_PREFIX.length) : spec;
  const deflate = rest.endsWith(DEFLATE_SUFFIX);
  const name = deflate ? rest.slice(0, -DEFLATE_SUFFIX.length) : rest;
  return { spec, codec: getCodec(name), deflate, delta };
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
  return [spec.codec.name, ...(spec.deflate ? ['deflate'] : []), ...(spec.delta ? ['delta'] : [])];
}
