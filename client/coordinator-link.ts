import { io, type Socket } from 'socket.io-client';
import { ByteMeter } from '../shared/byte-accounting.js';
import {
  COORDINATOR_MESSAGE_TYPES, PROTOCOL_LIMITS, PROTOCOL_VERSION, payloadBytes,
  type ClientMessageType, type ClientToCoordinator, type CoordinatorMessageType, type CoordinatorToClient, type SocketEvents,
} from '../shared/protocol.js';
import { validateCoordinatorMessage } from '../shared/protocol-validation.js';
import { decodeMessage, encodeMessage } from '../shared/wire-format.js';

export type IncomingHandler = <K extends CoordinatorMessageType>(type: K, message: CoordinatorToClient[K]) => void;

/** What a client node needs from its connection to the coordinator, whatever carries it. */
export interface CoordinatorLink {
  readonly meter: ByteMeter;
  send<K extends ClientMessageType>(type: K, body: Omit<ClientToCoordinator[K], 'v'>): void;
  /** Called on every (re)connection, before any message of that connection arrives. */
  onConnect(handler: () => void): void;
  onMessage(handler: IncomingHandler): void;
  /** A coordinator message that fails validation; the link drops it. */
  onInvalid(handler: (type: string, reason: string) => void): void;
  /** The link stopped trying to reach the coordinator. */
  onGiveUp(handler: (reason: string) => void): void;
  close(): void;
}

/**
 * A socket.io connection to a coordinator that reconnects on its own. Every message is
 * validated before the client sees it, and every byte is counted.
 *
 * @example
 * const link = new SocketCoordinatorLink('http://127.0.0.1:4000');
 * link.onConnect(() => link.send('hello', { ... }));
 */
export class SocketCoordinatorLink implements CoordinatorLink {
  readonly meter = new ByteMeter();
  private readonly socket: Socket<SocketEvents<CoordinatorToClient>, SocketEvents<ClientToCoordinator>>;
  private messageHandler: IncomingHandler = () => {};
  private invalidHandler: (type: string, reason: string) => void = () => {};

  private failedHandler: (reason: string) => void = () => {};

  constructor(url: string, options: { reconnectionAttempts?: number } = {}) {
    this.socket = io(url, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 2000,
      reconnectionAttempts: options.reconnectionAttempts ?? 30,
      autoConnect: false,
    });
    this.socket.io.on('reconnect_failed', () => this.failedHandler(`cannot reach the coordinator at ${url} after ${options.reconnectionAttempts ?? 30} attempts`));
    for (const type of COORDINATOR_MESSAGE_TYPES) {
      this.socket.on(type, (frame: Uint8Array) => this.receive(type, frame));
    }
  }

  onConnect(handler: () => void): void {
    this.socket.on('connect', handler);
    if (!this.socket.connected && !this.socket.active) this.socket.connect();
  }

  onMessage(handler: IncomingHandler): void {
    this.messageHandler = handler;
  }

  onInvalid(handler: (type: string, reason: string) => void): void {
    this.invalidHandler = handler;
  }

  onGiveUp(handler: (reason: string) => void): void {
    this.failedHandler = handler;
  }

  send<K extends ClientMessageType>(type: K, body: Omit<ClientToCoordinator[K], 'v'>): void {
    const message = { v: PROTOCOL_VERSION, ...body };
    const frame = encodeMessage(message);
    if (frame.byteLength > PROTOCOL_LIMITS.maxMessageBytes) {
      throw new RangeError(`a ${type} message of ${frame.byteLength} bytes exceeds the protocol limit of ${PROTOCOL_LIMITS.maxMessageBytes}`);
    }
    this.meter.count('up', type, payloadBytes(message), frame.byteLength);
    (this.socket.emit as (ev: string, f: Uint8Array) => void)(type, frame);
  }

  close(): void {
    this.socket.disconnect();
  }

  private receive(type: CoordinatorMessageType, frame: unknown): void {
    let message: CoordinatorToClient[CoordinatorMessageType];
    try {
      message = validateCoordinatorMessage[type](decodeMessage(frame));
    } catch (err) {
      this.invalidHandler(type, (err as Error).message);
      return;
    }
    this.meter.count('down', type, payloadBytes(message), (frame as Uint8Array).byteLength);
    this.messageHandler(type, message as never);
  }
}
