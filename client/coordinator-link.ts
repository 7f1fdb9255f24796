import { io, type Socket } from 'socket.io-client';
import { ByteMeter } from '../shared/protocol/byte-accounting.js';
import type { ChannelEnd } from '../shared/protocol/in-memory-channel.js';
import {
  COORDINATOR_MESSAGE_TYPES, PROTOCOL_LIMITS, PROTOCOL_VERSION, payloadBytes,
  type ClientMessageType, type ClientToCoordinator, type CoordinatorMessageType, type CoordinatorToClient, type Outgoing, type SocketEvents,
} from '../shared/protocol/messages.js';
import { protofedParser } from '../shared/protocol/socket-parser.js';
import { validateCoordinatorMessage } from '../shared/protocol/validation.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';

export type IncomingHandler = <K extends CoordinatorMessageType>(type: K, message: CoordinatorToClient[K]) => void;

/** What a client node needs from its connection to the coordinator, whatever carries it. */
export interface CoordinatorLink {
  readonly meter: ByteMeter;
  send<K extends ClientMessageType>(type: K, body: Outgoing<ClientToCoordinator[K]>): void;
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
 * What every link does the same way: it encodes and counts what it sends, and validates and
 * counts what it receives, before the client node sees it. Subclasses only carry frames.
 */
abstract class ValidatingLink implements CoordinatorLink {
  readonly meter = new ByteMeter();
  private messageHandler: IncomingHandler = () => {};
  private invalidHandler: (type: string, reason: string) => void = () => {};
  protected giveUpHandler: (reason: string) => void = () => {};

  abstract onConnect(handler: () => void): void;
  abstract close(): void;
  protected abstract transmit(type: ClientMessageType, frame: Uint8Array): void;

  onMessage(handler: IncomingHandler): void {
    this.messageHandler = handler;
  }

  onInvalid(handler: (type: string, reason: string) => void): void {
    this.invalidHandler = handler;
  }

  onGiveUp(handler: (reason: string) => void): void {
    this.giveUpHandler = handler;
  }

  send<K extends ClientMessageType>(type: K, body: Outgoing<ClientToCoordinator[K]>): void {
    const message = { v: PROTOCOL_VERSION, ...body };
    const frame = encodeMessage(message);
    if (frame.byteLength > PROTOCOL_LIMITS.maxMessageBytes) {
      throw new RangeError(`a ${type} message of ${frame.byteLength} bytes exceeds the protocol limit of ${PROTOCOL_LIMITS.maxMessageBytes}`);
    }
    this.meter.count('up', type, payloadBytes(message), frame.byteLength);
    this.transmit(type, frame);
  }

  protected receive(type: string, frame: unknown): void {
    if (!(COORDINATOR_MESSAGE_TYPES as readonly string[]).includes(type)) {
      this.invalidHandler(type, 'unknown message type');
      return;
    }
    const known = type as CoordinatorMessageType;
    let message: CoordinatorToClient[CoordinatorMessageType];
    try {
      message = validateCoordinatorMessage[known](decodeMessage(frame));
    } catch (err) {
      this.invalidHandler(type, (err as Error).message);
      return;
    }
    this.meter.count('down', type, payloadBytes(message), (frame as Uint8Array).byteLength);
    this.messageHandler(known, message as never);
  }
}

/**
 * A socket.io connection to a coordinator that reconnects on its own.
 *
 * @example
 * const link = new SocketCoordinatorLink('http://127.0.0.1:4000');
 * link.onConnect(() => link.send('hello', { ... }));
 */
export class SocketCoordinatorLink extends ValidatingLink {
  private readonly socket: Socket<SocketEvents<CoordinatorToClient>, SocketEvents<ClientToCoordinator>>;
  private lostAt: number | undefined;

  /**
   * Reconnects with exponential backoff (from `firstDelayMs`, doubling up to `maxDelayMs`, each
   * delay jittered by ±50%) until `giveUpAfterMs` have passed without a connection, saying what it
   * does through `log`.
   */
  constructor(url: string, options: { ca?: string | undefined; clientCertificate?: { cert: string; key: string } | undefined; firstDelayMs?: number; maxDelayMs?: number; giveUpAfterMs?: number; log?: (line: string) => void } = {}) {
    super();
    const giveUpAfterMs = options.giveUpAfterMs ?? 60_000;
    const log = options.log ?? (() => {});
    this.socket = io(url, {
      transports: ['websocket'],
      parser: protofedParser,
      reconnection: true,
      reconnectionDelay: options.firstDelayMs ?? 200,
      reconnectionDelayMax: options.maxDelayMs ?? 2000,
      randomizationFactor: 0.5,
      autoConnect: false,
      // The coordinator's certificate authority, for a coordinator with its own certificate (https).
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...options.clientCertificate,
    });
    this.socket.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') return;
      this.lostAt = Date.now();
      log(`lost the coordinator at ${url} (${reason}); reconnecting with backoff, for up to ${Math.round(giveUpAfterMs / 1000)} s`);
    });
    this.socket.io.on('reconnect_attempt', (attempt) => {
      const waited = Date.now() - (this.lostAt ?? Date.now());
      if (waited > giveUpAfterMs) {
        this.socket.disconnect();
        this.giveUpHandler(`cannot reach the coordinator at ${url}: gave up after ${Math.round(waited / 1000)} s and ${attempt - 1} attempts`);
        return;
      }
      log(`reconnecting to ${url}: attempt ${attempt}, ${Math.round(waited / 1000)} s since the connection was lost`);
    });
    this.socket.io.on('reconnect', (attempt) => log(`reconnected to ${url} after ${attempt} attempt(s)`));
    this.socket.on('connect_error', (err) => {
      // The first connection has no 'disconnect' before it: time the give-up from the first failure.
      this.lostAt ??= Date.now();
      if (!this.socket.active) this.giveUpHandler(`cannot reach the coordinator at ${url}: ${err.message}`);
    });
    this.socket.onAny((type: string, frame: unknown) => this.receive(type, frame));
  }

  onConnect(handler: () => void): void {
    this.socket.on('connect', handler);
    if (!this.socket.connected && !this.socket.active) this.socket.connect();
  }

  close(): void {
    this.socket.disconnect();
  }

  protected transmit(type: ClientMessageType, frame: Uint8Array): void {
    // Nothing is buffered while offline (socket.io would replay it before our hello): the protocol
    // recovers instead, by resending unacknowledged updates and repeating lost requests.
    if (!this.socket.connected) return;
    (this.socket.emit as (ev: string, f: Uint8Array) => void)(type, frame);
  }
}

/**
 * A virtual client's link: an in-memory channel to a coordinator in the same process, carrying
 * the same encoded frames as a socket. A dropped channel is dialled again, as socket.io reconnects.
 *
 * @example
 * const link = new InMemoryCoordinatorLink(() => hub.dial());
 */
export class InMemoryCoordinatorLink extends ValidatingLink {
  private end: ChannelEnd | undefined;
  private readonly connectHandlers: (() => void)[] = [];
  private closed = false;

  constructor(private readonly dial: () => ChannelEnd) {
    super();
  }

  onConnect(handler: () => void): void {
    this.connectHandlers.push(handler);
    if (!this.end) this.connect();
  }

  close(): void {
    this.closed = true;
    this.end?.close('io client disconnect');
  }

  protected transmit(type: ClientMessageType, frame: Uint8Array): void {
    this.end?.send(type, frame);
  }

  private connect(): void {
    const end = this.dial();
    this.end = end;
    end.onMessage((type, frame) => this.receive(type, frame));
    end.onClose((reason) => {
      // Only a transport fault is reconnected; the coordinator's own disconnect is final.
      if (!this.closed && this.end === end && reason === 'transport close') setTimeout(() => this.connect(), 10);
    });
    setImmediate(() => {
      for (const h of this.connectHandlers) h();
    });
  }
}
