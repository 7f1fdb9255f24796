import { encodeClassBlock } from '../../shared/protocol/class-block.js';
import type { CodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import { packU32, type CoordinatorToClient, type Outgoing } from '../../shared/protocol/messages.js';
import type { ClientLink } from './client-links.js';
import type { DownlinkHistory } from './downlink-history.js';
import type { FederationState } from './federation-state.js';

/**
 * The table message that brings a client from `fromVersion` to the current version: the classes
 * changed since then, each encoded from the current statistics, and the classes removed. It
 * depends only on the state and `fromVersion`, so clients at the same version share it. With a
 * history, what the clients will hold is recorded (for `delta+` uplinks).
 */
export function tableMessage(state: FederationState, fromVersion: number, downlink: CodecSpec, history?: DownlinkHistory): Outgoing<CoordinatorToClient['table']> {
  const { changed, removed } = state.changedSince(fromVersion);
  const codec = downlink.codec;
  const stride = codec.encodedLength(state.dim);
  const vectors = new Uint8Array(changed.length * stride);
  changed.forEach((classId, i) => {
    const bytes = codec.encode(state.global.prototype(classId)!);
    vectors.set(bytes, i * stride);
    history?.record(classId, state.classChangedAt(classId)!, bytes, codec);
  });
  for (const classId of removed) history?.recordRemoval(classId, state.classRemovedAt(classId)!);
  return {
    version: state.version,
    fromVersion,
    codec: codec.name,
    classes: encodeClassBlock(changed, changed.map((id) => state.global.get(id)!.count), vectors, { deflate: downlink.deflate }),
    removed: packU32(removed),
  };
}

/**
 * Sends clients the table messages that bring them to the current version. Clients that hold the
 * same version get the same message object, built once per (from, to) pair: links that encode a
 * message once per object (the population's) encode it once.
 *
 * @example
 * const tables = new TableSender(state, downlink, history);
 * tables.send(link);   // nothing when the client is current
 */
export class TableSender {
  private cache = { version: -1, byFrom: new Map<number, Outgoing<CoordinatorToClient['table']>>() };

  constructor(private readonly state: FederationState, private readonly downlink: CodecSpec, private readonly history?: DownlinkHistory) {}

  /** Sends only the classes changed since the version the client holds; nothing when it is current. */
  send(link: ClientLink): void {
    const { state } = this;
    if (link.heldVersion >= state.version) return;
    link.send('table', this.from(link.heldVersion));
    link.heldVersion = state.version;
  }

  private from(fromVersion: number): Outgoing<CoordinatorToClient['table']> {
    if (this.cache.version !== this.state.version) this.cache = { version: this.state.version, byFrom: new Map() };
    let message = this.cache.byFrom.get(fromVersion);
    if (!message) this.cache.byFrom.set(fromVersion, (message = tableMessage(this.state, fromVersion, this.downlink, this.history)));
    return message;
  }
}
