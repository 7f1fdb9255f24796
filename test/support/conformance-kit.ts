import { encodeClassBlock } from '../../shared/protocol/class-block.js';
import { parseCodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import { createPqCodec, getCodec, type PqCodebook, type VectorCodec } from '../../shared/protocol/codecs/index.js';
import { packU32, type ClassBlock } from '../../shared/protocol/messages.js';

/**
 * The conformance kit's data model (docs/conformance/): recorded inputs in "typed JSON" and the
 * bytes protofed's own encoders make of them. Shared by the generator
 * (docs/conformance/generate.ts) and the test (test/conformance-kit.test.ts).
 *
 * Typed JSON: plain JSON values stand for themselves (strings, integers, booleans, floats, maps,
 * arrays); a binary field is one of
 * - `{"$u32": [..]}`: a u32[] list (4 bytes per entry, little-endian);
 * - `{"$classBlock": {...}}`: a class block (see ClassBlockMeaning);
 * - `{"$bin": "hex"}`: opaque bytes (a pq codebook).
 */
export type Typed = string | number | boolean | null | Typed[] | { [key: string]: Typed };

export interface ClassBlockMeaning {
  /** The codec spec the vectors are in, e.g. "int8", "delta+int8+deflate", "pq-2x4". */
  codec: string;
  dim: number;
  /** Flag bit 0 (0x01): the vectors section is one raw-deflate stream. */
  deflate: boolean;
  /** Flag bit 1 (0x02): rows, one entry per example (share-embeddings); ids may repeat. */
  rows: boolean;
  classIds: number[];
  counts: number[];
  /** What the sender encodes, one vector per entry (float64): class means, rows or head rows. */
  means: number[][];
  /** delta+ only: the prototype the sender holds for each entry (the vector sent is mean − reference, in float64). */
  reference?: number[][];
  /** What the receiver gets by decoding each vector with the codec (before adding back any reference). */
  decoded: number[][];
}

export interface CodecCase {
  name: string;
  /** A registered codec name, or pq-<S>x<C> with the kit's codebook. */
  codec: string;
  dim: number;
  /** The vector (float64) given to the encoder. */
  input: number[];
  /** The exact bytes an encoder must produce. */
  bytes: string;
  /** decode(bytes, dim), exactly. */
  decoded: number[];
  note?: string;
}

export interface MessageCase {
  name: string;
  direction: 'client-to-coordinator' | 'coordinator-to-client';
  /** The socket.io event name: the message type. */
  type: string;
  /** The protofed socket.io parser's first byte: 0xE0 + the event's index. */
  eventByte: string;
  /** The message, keys in protofed's order, binary fields in typed JSON. */
  meaning: { [key: string]: Typed };
  /** The msgpack bytes of the message (the event's one argument). */
  msgpack: string;
  /** The whole WebSocket binary frame payload: the event byte, then the msgpack bytes. */
  frame: string;
  /**
   * false when another correct encoder may make other bytes (a deflate stream): compare after
   * decoding. protofed's own encoder must still make exactly these.
   */
  canonical: boolean;
  note?: string;
}

export interface PacketCase {
  name: string;
  direction: 'client-to-coordinator' | 'coordinator-to-client';
  /** A socket.io packet sent generically (`0x00` + msgpack map), or an engine.io text frame. */
  kind: 'socket.io packet' | 'engine.io text frame';
  /** The packet (for socket.io packets: its map; `"$undefined"` marks msgpackr's undefined, ext type 0). */
  meaning: Typed;
  /** Binary frames: hex; text frames: the text. */
  frame: string;
  note?: string;
}

/** The event names in the order of their bytes (shared/protocol/socket-parser.ts). */
export const EVENT_ORDER = ['hello', 'update', 'report', 'welcome', 'refused', 'mission', 'ack', 'table', 'evaluate', 'error', 'shutdown', 'codebook', 'leave'] as const;

export function eventByte(type: string): number {
  const i = (EVENT_ORDER as readonly string[]).indexOf(type);
  if (i < 0) throw new Error(`no event byte for "${type}"`);
  return 0xe0 + i;
}

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
export const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));

/** The codec of a spec (without delta+ and +deflate), pq with the kit's codebook. */
export function codecOf(spec: string, codebook: PqCodebook | undefined): VectorCodec {
  const parsed = parseCodecSpec(spec);
  if (parsed.pq) {
    if (!codebook) throw new Error(`${spec} needs the kit's pq codebook`);
    return createPqCodec(codebook);
  }
  return parsed.codec;
}

/** The class block bytes of a meaning, made with protofed's codecs and class block encoder. */
export function encodeBlockMeaning(m: ClassBlockMeaning, codebook: PqCodebook | undefined): Uint8Array {
  const codec = codecOf(m.codec, codebook);
  const stride = codec.encodedLength(m.dim);
  const vectors = new Uint8Array(m.means.length * stride);
  m.means.forEach((mean, i) => {
    const v = Float64Array.from(mean);
    const ref = m.reference?.[i];
    if (ref) for (let d = 0; d < v.length; d++) v[d]! -= ref[d]!;
    vectors.set(codec.encode(v), i * stride);
  });
  return encodeClassBlock(m.classIds, m.counts, vectors, { deflate: m.deflate, rows: m.rows });
}

/** Decodes each vector of a received class block with the codec of its meaning. */
export function decodeBlockVectors(block: ClassBlock, codec: string, dim: number, codebook: PqCodebook | undefined): number[][] {
  const c = codecOf(codec, codebook);
  const stride = c.encodedLength(dim);
  if (block.vectors.byteLength !== block.classIds.length * stride) {
    throw new Error(`${block.vectors.byteLength} bytes of vectors for ${block.classIds.length} entries of ${stride}`);
  }
  return block.classIds.map((_, i) => [...c.decode(block.vectors.subarray(i * stride, (i + 1) * stride), dim)]);
}

/** Typed JSON to the object protofed's encoder takes (binary fields as Uint8Array). */
export function materialise(value: Typed, codebook: PqCodebook | undefined): unknown {
  if (Array.isArray(value)) return value.map((v) => materialise(v, codebook));
  if (value === null || typeof value !== 'object') return value;
  if ('$u32' in value) return packU32(value.$u32 as number[]);
  if ('$bin' in value) return unhex(value.$bin as string);
  if ('$classBlock' in value) return encodeBlockMeaning(value.$classBlock as unknown as ClassBlockMeaning, codebook);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = materialise(v, codebook);
  return out;
}

/** The kit's pq codebook as typed JSON and back. */
export function codebookFromJson(json: { dim: number; subspaces: number; centroids: number; table: number[] }): PqCodebook {
  return { dim: json.dim, subspaces: json.subspaces, centroids: json.centroids, table: Float32Array.from(json.table) };
}

/** getCodec, re-exported for the generator. */
export { getCodec };
