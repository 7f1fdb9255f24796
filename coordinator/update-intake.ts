import { EventEmitter } from 'node:events';
import { CodecError, type VectorCodec } from '../shared/codecs/vector-codec.js';
import type { UpdateMessage } from '../shared/protocol.js';
import { ProtocolError } from '../shared/protocol-validation.js';
import type { ClientSession } from './client-session.js';
import type { CoordinatorServer } from './coordinator-server.js';
import type { DecodedClassUpdate, FederationState } from './federation-state.js';

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

export interface UpdateIntakeEvents {
  /** A new (not duplicate) update was merged into the global table. */
  applied: [clientId: string, update: UpdateMessage, version: number];
}

/**
 * Takes every validated update from the server: decodes it, applies `(clientId, seq)` at most
 * once, and acks it (a resend is acked again, not re-applied). A bad update gets an `error`
 * message naming its seq and the reason, and leaves the state untouched.
 *
 * @example
 * const intake = new UpdateIntake(server, state, getCodec('int8'));
 * intake.on('applied', (clientId, update) => ...);
 */
export class UpdateIntake extends EventEmitter<UpdateIntakeEvents> {
  constructor(server: CoordinatorServer, private readonly state: FederationState, private readonly codec: VectorCodec) {
    super();
    server.on('update', (session, update) => this.take(session, update));
  }

  private take(session: ClientSession, update: UpdateMessage): void {
    const clientId = session.clientId!;
    let classes: DecodedClassUpdate[];
    try {
      classes = decodeUpdate(update, { clientId, codec: this.codec, dim: this.state.dim });
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      session.sendError(err.code, err.message, update.seq);
      return;
    }
    // The state lives in memory, so it is durable for this run once applied; then the ack goes out.
    const { applied, version } = this.state.applyUpdate(clientId, update.seq, classes);
    session.send('ack', { seq: update.seq, version, duplicate: !applied });
    if (applied) this.emit('applied', clientId, update, version);
  }
}
