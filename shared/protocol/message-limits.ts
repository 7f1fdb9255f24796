import { PROTOCOL_LIMITS } from './messages.js';

/** What bounds the messages a run's clients may send. */
export interface RunShape {
  /** Width of a table row (the embedding dim, or one more for a linear head). */
  tableDim: number;
  /** Bytes of one encoded vector of `tableDim` in the uplink codec. */
  uplinkStride: number;
  /** Classes in the dataset: an update or a report names at most these. */
  classes: number;
  /** Entries an update may hold beyond one per class (share-embeddings sends one row per example). */
  maxEntries?: number | undefined;
}

/** Room for a message's map, field names and scalars around its binary fields. */
const ENVELOPE_BYTES = 1024;
/** The most a class block entry takes besides its vector: a 5-byte id gap and an 8-byte count (LEB128). */
const ENTRY_HEADER_BYTES = 13;

/**
 * The largest message a client of this run can need to send: an update with every class (or
 * every row), or a report on every class; never above PROTOCOL_LIMITS.maxMessageBytes. Anything
 * larger is refused by the transport before it is held in memory.
 *
 * @example
 * runMessageLimit({ tableDim: 64, uplinkStride: 72, classes: 1987 }); // 169,930
 */
export function runMessageLimit(shape: RunShape): number {
  const entries = Math.max(shape.classes, shape.maxEntries ?? 0);
  const update = ENVELOPE_BYTES + 11 + entries * (ENTRY_HEADER_BYTES + shape.uplinkStride);
  const report = ENVELOPE_BYTES + 3 * 4 * shape.classes;
  return Math.min(PROTOCOL_LIMITS.maxMessageBytes, Math.max(PROTOCOL_LIMITS.maxHelloBytes, update, report));
}
