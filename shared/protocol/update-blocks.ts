import { encodeClassBlock } from './class-block.js';
import type { CodecSpec } from './codecs/codec-spec.js';
import type { PrototypeTable } from '../learning/prototype-table.js';

/**
 * The class block of an update: every class of `stats`, its count, and the vector `vectorOf`
 * gives for it (the mean of the new examples for protofed), in the uplink codec.
 */
export function encodeUpdateClasses(stats: PrototypeTable, uplink: CodecSpec, vectorOf: (classId: number) => Float64Array): Uint8Array {
  const codec = uplink.codec;
  const classIds = stats.classIds();
  const stride = codec.encodedLength(stats.dim);
  const vectors = new Uint8Array(classIds.length * stride);
  classIds.forEach((classId, i) => vectors.set(codec.encode(vectorOf(classId)), i * stride));
  return encodeClassBlock(classIds, classIds.map((id) => stats.get(id)!.count), vectors, { deflate: uplink.deflate });
}

/**
 * share-embeddings: a block of rows, one entry per example (count 1), each embedding itself in
 * the uplink codec. `rows` must be sorted by class id.
 */
export function encodeEmbeddingRows(
  rows: readonly { classId: number; embeddings: Float32Array }[],
  dim: number,
  uplink: CodecSpec,
  reference: (classId: number) => Float64Array | undefined = () => undefined,
): Uint8Array {
  const codec = uplink.codec;
  const stride = codec.encodedLength(dim);
  const classIds: number[] = [];
  for (const r of rows) for (let k = 0; k < r.embeddings.length / dim; k++) classIds.push(r.classId);
  const vectors = new Uint8Array(classIds.length * stride);
  let at = 0;
  for (const r of rows) {
    const ref = reference(r.classId);
    for (let k = 0; k < r.embeddings.length / dim; k++) {
      const row = Float64Array.from(r.embeddings.subarray(k * dim, (k + 1) * dim));
      if (ref) for (let d = 0; d < dim; d++) row[d]! -= ref[d]!;
      vectors.set(codec.encode(row), at * stride);
      at++;
    }
  }
  return encodeClassBlock(classIds, classIds.map(() => 1), vectors, { deflate: uplink.deflate, rows: true });
}
