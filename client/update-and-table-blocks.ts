import { encodeClassBlock } from '../shared/protocol/class-block.js';
import type { CodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import type { VectorCodec } from '../shared/protocol/codecs/vector-codec.js';
import { unpackU32, type TableMessage } from '../shared/protocol/messages.js';
import type { PrototypeTable } from '../shared/learning/prototype-table.js';

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
 * Applies a table message to the table a client holds (version `heldVersion`): the changed
 * classes replace what it had, the removed ones go. Throws, changing nothing, when the message
 * does not fit (another codec, a base version the client does not hold, wrong vector bytes).
 * `heldMeans`, when given, keeps the decoded means exactly as they arrived (for `delta+` uplinks,
 * whose changes are taken against these very values).
 */
export function applyTableMessage(held: PrototypeTable, heldVersion: number, t: TableMessage, downlink: VectorCodec, heldMeans?: Map<number, Float64Array>): void {
  if (t.codec !== downlink.name) throw new Error(`table arrived in codec "${t.codec}", but the negotiated downlink codec is "${downlink.name}"`);
  if (t.fromVersion > heldVersion) {
    throw new Error(`table update from version ${t.fromVersion} cannot apply: this client holds version ${heldVersion}`);
  }
  const { classIds, counts, vectors } = t.classes;
  const dim = held.dim;
  const stride = downlink.encodedLength(dim);
  if (vectors.byteLength !== classIds.length * stride) {
    throw new Error(`table of ${classIds.length} classes carries ${vectors.byteLength} bytes of vectors, expected ${stride} each`);
  }
  const means = classIds.map((_, i) => downlink.decode(vectors.subarray(i * stride, (i + 1) * stride), dim));
  classIds.forEach((classId, i) => {
    held.setMean(classId, counts[i]!, means[i]!);
    heldMeans?.set(classId, means[i]!);
  });
  for (const id of unpackU32(t.removed)) {
    held.delete(id);
    heldMeans?.delete(id);
  }
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
