import { CodecError, type VectorCodec } from '../shared/codecs/vector-codec.js';
import type { UpdateMessage } from '../shared/protocol.js';
import { ProtocolError } from '../shared/protocol-validation.js';
import type { DecodedClassUpdate } from './federation-state.js';

/**
 * Decodes and checks an update's vectors against the negotiated codec and dimension.
 * Either every class is valid and decoded, or a ProtocolError names the first bad one and
 * nothing is applied.
 */
export function decodeUpdate(update: UpdateMessage, expected: { clientId: string; codec: VectorCodec; dim: number }): DecodedClassUpdate[] {
  if (update.clientId !== expected.clientId) {
    throw new ProtocolError('invalid', `update names client "${update.clientId}" but this connection said hello as "${expected.clientId}"`);
  }
  if (update.codec !== expected.codec.name) {
    throw new ProtocolError('invalid', `update uses codec "${update.codec}" but the negotiated uplink codec is "${expected.codec.name}"`);
  }
  const wantBytes = expected.codec.encodedLength(expected.dim);
  return update.classes.map((c, i) => {
    if (c.vector.byteLength !== wantBytes) {
      throw new ProtocolError(
        'invalid',
        `classes[${i}] (class ${c.classId}): vector of ${c.vector.byteLength} bytes, expected ${wantBytes} (${expected.dim}-d ${expected.codec.name})`,
      );
    }
    try {
      return { classId: c.classId, count: c.count, mean: expected.codec.decode(c.vector, expected.dim) };
    } catch (err) {
      if (err instanceof CodecError) throw new ProtocolError('invalid', `classes[${i}] (class ${c.classId}): ${err.message}`);
      throw err;
    }
  });
}
