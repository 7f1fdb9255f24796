import type { VectorCodec } from '../shared/protocol/codecs/vector-codec.js';
import { unpackU32, type TableMessage } from '../shared/protocol/messages.js';
import type { PrototypeTable } from '../shared/learning/prototype-table.js';

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
