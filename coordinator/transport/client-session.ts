import { controlBytesOf, type ByteMeter } from '../../shared/protocol/byte-accounting.js';
import {
  PROTOCOL_VERSION, payloadBytes,
  type CoordinatorMessageType, type CoordinatorToClient, type ErrorCode, type Outgoing,
} from '../../shared/protocol/messages.js';
import { encodeMessage } from '../../shared/protocol/wire-format.js';
import type { ClientConnection } from './client-connection.js';

/**
 * One connected client, as the coordinator sees it: the connection, the client's id once it has
 * said hello, and the meter that counts every byte sent to and received from it.
 */
export class ClientSession {
  clientId: string | undefined;
  /** The global table version this client holds, as far as the coordinator has sent it. */
  heldVersion = 0;
  /** Set at hello, when the client's id (and so its meter) is known. */
  meter: ByteMeter | undefined;
  /** When its last message arrived (ms since the epoch). */
  lastSeen: number | undefined;
  /** Refused: whatever it sends until the connection closes is ignored. */
  refused = false;

  constructor(readonly connection: ClientConnection) {}

  /**
   * Encodes and sends one message, stamping the protocol version.
   *
   * @example
   * session.send('ack', { seq: 3, version: 12, duplicate: false });
   */
  send<K extends CoordinatorMessageType>(type: K, body: Outgoing<CoordinatorToClient[K]>): void {
    const message = { v: PROTOCOL_VERSION, ...body };
    const frame = encodeMessage(message);
    this.meter?.countWithControl('down', type, payloadBytes(message), frame.byteLength, 'mission-control', controlBytesOf(type, message, frame.byteLength));
    this.connection.emit(type, frame);
  }

  sendError(code: ErrorCode, reason: string, seq?: number): void {
    this.send('error', seq === undefined ? { code, reason } : { code, reason, seq });
  }

  get connected(): boolean {
    return this.connection.connected;
  }
}
