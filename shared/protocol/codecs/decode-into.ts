import type { VectorCodec } from './vector-codec.js';

/**
 * Decodes the vector at `bytes[at ..]` into `out[outAt .. outAt + dim)`, with the codec's own
 * checks. Codecs that can write in place (no subarray, no intermediate array) do; the others
 * decode and copy.
 */
export function decodeInto(codec: VectorCodec, bytes: Uint8Array, at: number, dim: number, out: Float64Array, outAt: number): void {
  if (codec.decodeInto) codec.decodeInto(bytes, at, dim, out, outAt);
  else out.set(codec.decode(bytes.subarray(at, at + codec.encodedLength(dim)), dim), outAt);
}
