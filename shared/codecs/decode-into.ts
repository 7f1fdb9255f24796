import type { VectorCodec } from './vector-codec.js';

/**
 * Decodes one vector into `out[offset .. offset + dim)`, with the codec's own checks. Codecs that
 * can write in place (no intermediate array) do; the others decode and copy.
 */
export function decodeInto(codec: VectorCodec, bytes: Uint8Array, dim: number, out: Float64Array, offset: number): void {
  if (codec.decodeInto) codec.decodeInto(bytes, dim, out, offset);
  else out.set(codec.decode(bytes, dim), offset);
}
