import { encodeClassBlock } from '../shared/class-block.js';
import type { CodecSpec } from '../shared/codec-spec.js';
import { packU32, type CoordinatorToClient, type Outgoing } from '../shared/protocol.js';
import type { FederationState } from './federation-state.js';

/**
 * The table message that brings a client from `fromVersion` to the current version: the classes
 * changed since then, each encoded from the current statistics, and the classes removed. It
 * depends only on the state and `fromVersion`, so clients at the same version share it.
 */
export function tableMessage(state: FederationState, fromVersion: number, downlink: CodecSpec): Outgoing<CoordinatorToClient['table']> {
  const { changed, removed } = state.changedSince(fromVersion);
  const codec = downlink.codec;
  const stride = codec.encodedLength(state.dim);
  const vectors = new Uint8Array(changed.length * stride);
  changed.forEach((classId, i) => vectors.set(codec.encode(state.global.prototype(classId)!), i * stride));
  return {
    version: state.version,
    fromVersion,
    codec: codec.name,
    classes: encodeClassBlock(changed, changed.map((id) => state.global.get(id)!.count), vectors, { deflate: downlink.deflate }),
    removed: packU32(removed),
  };
}
