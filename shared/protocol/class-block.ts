import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * The classes of an update or a table, in columns: ascending class ids, their counts, and the
 * encoded vectors back to back (each `stride` bytes, the negotiated codec's length for the dim).
 * `payloadBytes` is the size of the vectors as they travel (after deflate, when deflated).
 */
export interface ClassBlock {
  classIds: number[];
  counts: number[];
  vectors: Uint8Array;
  payloadBytes: number;
  /** One entry per example (ids ascend but may repeat) rather than one per class. */
  rows: boolean;
}

/** A class block that cannot be read; the reason names the first problem. */
export class ClassBlockError extends Error {}

/** A class block above a limit (classes, class ids, inflated bytes): the protocol's `limit` error. */
export class ClassBlockLimitError extends ClassBlockError {}

const FLAG_DEFLATED = 1;
/** Rows, not classes: one entry per example (share-embeddings), so ids may repeat (gap 0). */
const FLAG_ROWS = 2;
const KNOWN_FLAGS = FLAG_DEFLATED | FLAG_ROWS;

export interface ClassBlockLimits {
  maxClasses: number;
  maxClassId: number;
  maxCount: number;
  /** The largest vectors section after inflating (a bound against deflate bombs). */
  maxVectorBytes: number;
}

/**
 * The wire form of a class block:
 *
 *   u8 flags (bit 0: vectors deflated; bit 1: rows) · varint n · n varint id gaps · n varint counts · vectors
 *
 * Ids ascend strictly: the first gap is the id itself, each later one the (positive) difference
 * to the previous id. A block of rows (one entry per example, for share-embeddings) may repeat
 * an id (gap 0). Varints are unsigned LEB128. Vectors run to the end of the block, raw or
 * as one raw-deflate stream. For ten 64-d int8 classes this header is about 22 bytes beside 720.
 *
 * @example
 * const bytes = encodeClassBlock([3, 7], [10, 2], vectors, { deflate: false });
 */
export function encodeClassBlock(
  classIds: ArrayLike<number>,
  counts: ArrayLike<number>,
  vectors: Uint8Array,
  options: { deflate?: boolean; rows?: boolean } = {},
): Uint8Array {
  const n = classIds.length;
  if (counts.length !== n) throw new RangeError(`${n} class ids but ${counts.length} counts`);
  const body = options.deflate ? deflateRawSync(vectors) : vectors;
  const header = new Uint8Array(1 + 10 + n * 17);
  header[0] = (options.deflate ? FLAG_DEFLATED : 0) | (options.rows ? FLAG_ROWS : 0);
  let at = writeVarint(header, 1, n);
  let previous = -1;
  for (let i = 0; i < n; i++) {
    const id = classIds[i]!;
    if (!Number.isInteger(id) || id < previous || (id === previous && !options.rows)) {
      throw new RangeError(`class ids must ascend${options.rows ? '' : ' strictly'}: ${id} after ${previous}`);
    }
    at = writeVarint(header, at, i === 0 ? id : id - previous);
    previous = id;
  }
  for (let i = 0; i < n; i++) {
    const c = counts[i]!;
    if (!Number.isSafeInteger(c) || c < 1) throw new RangeError(`class ${classIds[i]}: count must be a positive integer, got ${c}`);
    at = writeVarint(header, at, c);
  }
  const out = new Uint8Array(at + body.byteLength);
  out.set(header.subarray(0, at), 0);
  out.set(body, at);
  return out;
}

/**
 * Reads a class block, checking ids, counts and limits (not the vectors: their length and
 * content belong to the codec the receiver negotiated). Throws ClassBlockError.
 */
export function decodeClassBlock(bytes: Uint8Array, limits: ClassBlockLimits): ClassBlock {
  if (bytes.byteLength < 2) throw new ClassBlockError(`a class block needs at least 2 bytes, got ${bytes.byteLength}`);
  const flags = bytes[0]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new ClassBlockError(`unknown class block flags 0x${flags.toString(16)}`);
  const reader = { bytes, at: 1 };
  const n = readVarint(reader, 'the class count');
  if (n > limits.maxClasses) throw new ClassBlockLimitError(`${n} classes exceed the limit of ${limits.maxClasses}`);
  if (n > bytes.byteLength) throw new ClassBlockError(`${n} classes cannot fit in ${bytes.byteLength} bytes`);
  // Plain arrays: for the ~10 classes of an update they are cheaper to make than typed arrays.
  const classIds: number[] = new Array<number>(n);
  let id = -1;
  for (let i = 0; i < n; i++) {
    const gap = readVarint(reader, 'a class id');
    if (i > 0 && gap === 0 && !(flags & FLAG_ROWS)) throw new ClassBlockError(`class ids must ascend strictly: class ${i} repeats id ${id}`);
    id = i === 0 ? gap : id + gap;
    if (id > limits.maxClassId) throw new ClassBlockLimitError(`class id ${id} exceeds the limit of ${limits.maxClassId}`);
    classIds[i] = id;
  }
  const counts: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const c = readVarint(reader, 'a class count');
    if (c < 1 || c > limits.maxCount) throw new ClassBlockError(`class ${classIds[i]}: count ${c} is outside 1..${limits.maxCount}`);
    counts[i] = c;
  }
  const section = bytes.subarray(reader.at);
  let vectors = section;
  if (flags & FLAG_DEFLATED) {
    try {
      vectors = new Uint8Array(inflateRawSync(section, { maxOutputLength: limits.maxVectorBytes }));
    } catch (err) {
      // A deflate bomb: the stream would inflate past the limit.
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ClassBlockLimitError(`the deflated vectors inflate to more than the limit of ${limits.maxVectorBytes} bytes`);
      }
      throw new ClassBlockError(`the deflated vectors do not inflate: ${(err as Error).message}`);
    }
  }
  return { classIds, counts, vectors, payloadBytes: section.byteLength, rows: (flags & FLAG_ROWS) !== 0 };
}

/** The vectors' share of an encoded block (what the codec produced, as sent). */
export function classBlockPayloadBytes(bytes: Uint8Array): number {
  const reader = { bytes, at: 1 };
  const n = readVarint(reader, 'the class count');
  for (let i = 0; i < 2 * n; i++) readVarint(reader, 'a class id or count');
  return bytes.byteLength - reader.at;
}

function writeVarint(out: Uint8Array, at: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

/**
 * Unsigned LEB128 up to 2^53 (arithmetic, not 32-bit shifts, so counts up to 2^48 survive).
 * `what` is a constant: the hot path builds no strings.
 */
function readVarint(r: { bytes: Uint8Array; at: number }, what: string): number {
  const first = r.bytes[r.at];
  if (first !== undefined && first < 0x80) {
    r.at++;
    return first;
  }
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (r.at >= r.bytes.byteLength) throw new ClassBlockError(`the block ends inside ${what}`);
    const b = r.bytes[r.at++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value;
    scale *= 0x80;
  }
  throw new ClassBlockError(`${what} is a varint longer than 8 bytes`);
}
