import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Server } from 'socket.io';
import { ByteMeter } from '../../shared/protocol/byte-accounting.js';
import type { ClientKeys } from '../../shared/protocol/client-keys.js';
import { capabilitiesNeeded, codebookHash, parseCodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import {
  CLIENT_MESSAGE_TYPES, PROTOCOL_LIMITS, PROTOCOL_VERSION, payloadBytes, type StrategyName,
  type ClientMessageType, type ClientToCoordinator, type HeadTrainingOptions, type HelloMessage, type SocketEvents, type CoordinatorToClient,
} from '../../shared/protocol/messages.js';
import { ProtocolError, validateClientMessage } from '../../shared/protocol/validation.js';
import { MISFRAMED_EVENT, UNKNOWN_EVENT, protofedCoordinatorParser } from '../../shared/protocol/socket-parser.js';
import { MalformedMessageError, decodeMessage, encodeMessage } from '../../shared/protocol/wire-format.js';
import { socketConnection, type ClientConnection } from './client-connection.js';
import { ClientSession } from './client-session.js';
import { ConnectionGate, type ConnectionLimits } from './connection-gate.js';
import type { ClientLinksEvents } from '../federation/client-links.js';

export interface CoordinatorServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** One secret per client id: who may join, and how each proves it is itself. */
  keys: ClientKeys;
  dim: number;
  modelHash: string;
  uplinkCodec: string;
  downlinkCodec: string;
  strategy?: StrategyName;
  /** The seq to resume from for a client that says hello. */
  lastAppliedSeq(clientId: string): number;
  /** The run's id: a client that names another run in its hello is refused. */
  runId: string;
  /** Whether a client left the run (its statistics unlearned): it may not rejoin. */
  hasLeft?: (clientId: string) => boolean;
  /** The global table version now (a client cannot hold a later one). */
  tableVersion(): number;
  /** How long a new connection has to say a valid hello (default 10 s). */
  helloTimeoutMs?: number;
  /**
   * The largest message a client of this run may send after its hello (it follows from the run:
   * dimension, classes and codec; see runMessageLimit). Default PROTOCOL_LIMITS.maxMessageBytes.
   */
  maxMessageBytes?: number;
  /** How many connections may wait for their hello, in all and per address. */
  connectionLimits?: ConnectionLimits;
  /** fedavg-head: the clients' local training, sent in the welcome. */
  headTraining?: HeadTrainingOptions | undefined;
  /** The run's pq codebook, sent after the welcome to every client that does not hold it yet. */
  codebook?: Uint8Array | undefined;
  /**
   * Serve socket.io and the HTTP endpoints over TLS with this certificate and key (PEM). With
   * `clientCa`, mutual TLS: every client must present a certificate signed by that authority, whose
   * common name is the client id it says hello as (beside its key).
   */
  tls?: { cert: string | Buffer; key: string | Buffer; clientCa?: string | Buffer | undefined } | undefined;
  /** Plain HTTP requests (not socket.io), e.g. the remote clients' setup endpoint. */
  httpHandler?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** The server's events: those of the engine's ClientLinks, with this server's sessions. */
export type CoordinatorServerEvents = ClientLinksEvents<ClientSession>;

/**
 * The coordinator's socket.io endpoint: it checks each client's hello (version, token, dim,
 * model hash, codecs), validates every incoming message, answers malformed ones with an
 * `error` message (the state never sees them), and hands valid updates and reports on.
 *
 * @example
 * const server = new CoordinatorServer({ host: '127.0.0.1', port: 0, token, dim: 784, ... });
 * const { port } = await server.listen();
 * server.on('update', (session, update) => { ... });
 */
export class CoordinatorServer extends EventEmitter<CoordinatorServerEvents> {
  private http: HttpServer | HttpsServer | undefined;
  private io: Server<SocketEvents<ClientToCoordinator>, SocketEvents<CoordinatorToClient>> | undefined;
  private readonly live = new Map<string, ClientSession>();
  private readonly meters = new Map<string, ByteMeter>();
  /** TCP bytes of each client's closed connections; open ones are read live. */
  private readonly closedWire = new Map<string, { up: number; down: number }>();
  /** TCP bytes of closed connections that never authenticated. */
  private readonly strangerWire = { up: 0, down: 0 };

  /** What a client must offer in its hello to speak this run's codecs. */
  private readonly needs: string[];
  private readonly codebookHash: string | undefined;
  /** This process's id for its clients (WelcomeMessage.instance). */
  private readonly instance = randomBytes(8).toString('hex');
  /** Connections waiting for their hello, and the limits on them. */
  readonly gate: ConnectionGate;

  constructor(private readonly options: CoordinatorServerOptions) {
    super();
    this.needs = [...capabilitiesNeeded(parseCodecSpec(options.uplinkCodec)), ...capabilitiesNeeded(parseCodecSpec(options.downlinkCodec))];
    this.codebookHash = options.codebook ? codebookHash(options.codebook) : undefined;
    this.gate = new ConnectionGate(options.connectionLimits);
  }

  private get helloTimeoutMs(): number {
    return this.options.helloTimeoutMs ?? 10_000;
  }

  /** The HTTP server socket.io runs on (after listen), for other endpoints on the same port. */
  get httpServer(): HttpServer | HttpsServer | undefined {
    return this.http;
  }

  /** The URL clients connect to (https with TLS). */
  url(address: { host: string; port: number }): string {
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    return `${this.options.tls ? 'https' : 'http'}://${host}:${address.port}`;
  }

  async listen(): Promise<{ host: string; port: number }> {
    // socket.io takes its own path and passes every other request on to this handler.
    const handler = this.options.httpHandler ?? ((_req: IncomingMessage, res: ServerResponse) => res.writeHead(404).end());
    const tls = this.options.tls;
    this.http = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) }, handler)
      : createServer(handler);
    // A TCP connection that never finishes its HTTP request is not held for long.
    this.http.headersTimeout = this.helloTimeoutMs;
    this.http.requestTimeout = 2 * this.helloTimeoutMs;
    this.io = new Server(this.http, {
      // A frame above this closes the connection as soon as its header says so, before it is held.
      maxHttpBufferSize: (this.options.maxMessageBytes ?? PROTOCOL_LIMITS.maxMessageBytes) + 16,
      transports: ['websocket'],
      serveClient: false,
      parser: protofedCoordinatorParser,
      connectTimeout: this.helloTimeoutMs,
      allowRequest: (req, answer) => answer(null, this.gate.admits(req.socket.remoteAddress)),
    });
    this.io.engine.on('connection', (raw: { id: string; remoteAddress: string; once(event: 'close', f: () => void): void }) => {
      this.gate.opened(raw.id, raw.remoteAddress);
      raw.once('close', () => this.gate.settled(raw.id));
    });
    this.io.on('connection', (socket) => this.accept(socketConnection(socket)));
    await new Promise<void>((resolve, reject) => {
      this.http!.once('error', reject);
      this.http!.listen(this.options.port, this.options.host, () => resolve());
    });
    const address = this.http.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /** The session of a connected client. */
  session(clientId: string): ClientSession | undefined {
    return this.live.get(clientId);
  }

  /** Byte meter of one client, kept across its reconnects. */
  meter(clientId: string): ByteMeter {
    let m = this.meters.get(clientId);
    if (!m) this.meters.set(clientId, (m = new ByteMeter()));
    return m;
  }

  /**
   * Bytes on the wire for one client over all its connections: what its TCP sockets carried,
   * measured on the socket. Undefined for virtual clients (no socket).
   */
  wireBytes(clientId: string): { up: number; down: number } | undefined {
    const closed = this.closedWire.get(clientId);
    const open = this.live.get(clientId)?.connection.wireBytes();
    if (!closed && !open) return undefined;
    return { up: (closed?.up ?? 0) + (open?.read ?? 0), down: (closed?.down ?? 0) + (open?.written ?? 0) };
  }

  carryWire(clientId: string, bytes: { up: number; down: number }): void {
    const sum = this.closedWire.get(clientId) ?? { up: 0, down: 0 };
    this.closedWire.set(clientId, { up: sum.up + bytes.up, down: sum.down + bytes.down });
  }

  /** TCP bytes of the closed connections that never authenticated (never counted against a client). */
  unauthenticatedWireBytes(): { up: number; down: number } {
    return { ...this.strangerWire };
  }

  /** Clients connected now. */
  get connectedCount(): number {
    let n = 0;
    for (const s of this.live.values()) if (s.connected) n++;
    return n;
  }

  clientIds(): string[] {
    return [...this.meters.keys()];
  }

  async close(): Promise<void> {
    if (this.io) {
      await new Promise<void>((resolve) => this.io!.close(() => resolve()));
    }
    this.io = undefined;
    this.http = undefined;
  }

  /**
   * Takes a new connection: it must say hello within the time limit; every message it sends is
   * validated. socket.io connections arrive here from listen(); virtual clients are handed in.
   */
  accept(connection: ClientConnection): void {
    const session = new ClientSession(connection);
    const helloTimer = setTimeout(() => {
      if (session.clientId === undefined) this.refuse(session, 'no hello within the time limit');
    }, this.helloTimeoutMs);
    connection.onMessage((event, frame) => {
      if (session.refused) return;
      session.lastSeen = Date.now();
      if (event === 'hello') clearTimeout(helloTimer);
      // Before a valid hello a connection may send only the hello.
      if (session.clientId === undefined && event !== 'hello') {
        this.refuse(session, 'the first message must be hello');
        return;
      }
      if (event === MISFRAMED_EVENT) this.reject(session, new MalformedMessageError(String(frame)));
      else if (event === UNKNOWN_EVENT) this.reject(session, new ProtocolError('unexpected', String(frame)));
      else if ((CLIENT_MESSAGE_TYPES as readonly string[]).includes(event)) this.receive(session, event as ClientMessageType, frame);
      else this.reject(session, new ProtocolError('unexpected', `unknown message type "${event}"`));
    });
    connection.onClose((reason) => {
      clearTimeout(helloTimer);
      const id = session.clientId;
      const wire = connection.wireBytes();
      if (id !== undefined && wire) {
        const sum = this.closedWire.get(id) ?? { up: 0, down: 0 };
        this.closedWire.set(id, { up: sum.up + wire.read, down: sum.down + wire.written });
      } else if (wire) {
        this.strangerWire.up += wire.read;
        this.strangerWire.down += wire.written;
      }
      if (id !== undefined && this.live.get(id) === session) {
        this.live.delete(id);
        this.emit('left', session, reason);
      }
    });
  }

  private receive(session: ClientSession, type: ClientMessageType, frame: unknown): void {
    const size = frame instanceof Uint8Array ? frame.byteLength : 0;
    let message: ClientToCoordinator[ClientMessageType];
    try {
      message = validateClientMessage[type](decodeMessage(frame));
    } catch (err) {
      session.meter?.count('up', type, 0, size);
      if (type === 'hello' && session.clientId === undefined) {
        this.refuse(session, `invalid hello: ${(err as Error).message}`);
        return;
      }
      this.reject(session, err);
      return;
    }
    if (type === 'hello') {
      this.hello(session, message as HelloMessage, size);
      return;
    }
    if (session.clientId === undefined) {
      this.reject(session, new ProtocolError('unexpected', `"${type}" before hello`));
      return;
    }
    session.meter?.count('up', type, payloadBytes(message), size);
    if (type === 'report' && (message as ClientToCoordinator['report']).clientId !== session.clientId) {
      this.reject(session, new ProtocolError('invalid', `a report as "${(message as ClientToCoordinator['report']).clientId}" from client "${session.clientId}": a client reports only as itself`));
      return;
    }
    if (type === 'update') this.emit('update', session, message as ClientToCoordinator['update']);
    else if (type === 'leave') this.emit('leave', session);
    else this.emit('report', session, message as ClientToCoordinator['report']);
  }

  private hello(session: ClientSession, hello: HelloMessage, size: number): void {
    const o = this.options;
    if (session.clientId !== undefined) {
      this.reject(session, new ProtocolError('unexpected', 'a second hello on the same connection'));
      return;
    }
    // A peer that has not proved who it is learns nothing about the run, not even which ids exist.
    const certified = !o.tls?.clientCa || session.connection.certificateName() === hello.clientId;
    if (!o.keys.verify(hello.clientId, hello.token) || !certified) {
      this.refuse(session, NOT_AUTHENTICATED);
      return;
    }
    const problem =
      o.hasLeft?.(hello.clientId) ? `client "${hello.clientId}" left the run: everything it contributed was unlearned, and it cannot rejoin`
      : this.live.get(hello.clientId)?.connected ? `client id "${hello.clientId}" is already connected`
      : hello.runId && hello.runId !== o.runId
        ? `client "${hello.clientId}" belongs to run ${hello.runId}, but this coordinator runs ${o.runId} (to continue run ${hello.runId}, start its coordinator with --resume on that run's results folder)`
      : hello.tableVersion > o.tableVersion()
        ? `client "${hello.clientId}" holds table version ${hello.tableVersion}, but this coordinator's table is at version ${o.tableVersion()}: it belongs to another run`
      : hello.dim !== o.dim ? `embedding dim ${hello.dim} does not match the coordinator's ${o.dim}`
      : hello.modelHash !== o.modelHash ? `model hash "${hello.modelHash}" does not match the coordinator's "${o.modelHash}"`
      : !this.needs.every((c) => hello.codecs.includes(c))
        ? `the run needs codecs ${o.uplinkCodec} (up) and ${o.downlinkCodec} (down); the client offers ${hello.codecs.join(', ') || 'none'}`
      : undefined;
    if (problem) {
      this.refuse(session, problem);
      return;
    }
    if (session.connection.transportId !== undefined) this.gate.settled(session.connection.transportId);
    session.clientId = hello.clientId;
    session.meter = this.meter(hello.clientId);
    session.meter!.count('up', 'hello', 0, size);
    session.heldVersion = hello.tableVersion;
    this.live.set(hello.clientId, session);
    session.send('welcome', {
      clientId: hello.clientId,
      lastAppliedSeq: o.lastAppliedSeq(hello.clientId),
      uplinkCodec: o.uplinkCodec,
      downlinkCodec: o.downlinkCodec,
      dim: o.dim,
      strategy: o.strategy ?? 'protofed',
      ...(o.headTraining ? { headTraining: o.headTraining } : {}),
      runId: o.runId,
      instance: this.instance,
      tableVersion: o.tableVersion(),
    });
    if (this.codebookHash !== undefined && hello.codebook !== this.codebookHash) session.send('codebook', { codebook: o.codebook! });
    this.emit('joined', session, hello);
  }

  private reject(session: ClientSession, err: unknown): void {
    if (err instanceof ProtocolError) session.sendError(err.code, err.message);
    else if (err instanceof MalformedMessageError) session.sendError('malformed', err.message);
    else session.sendError('invalid', (err as Error).message ?? String(err));
  }

  private refuse(session: ClientSession, reason: string): void {
    session.refused = true;
    session.connection.emit('refused', encodeMessage({ v: PROTOCOL_VERSION, reason }));
    setTimeout(() => session.connection.close(), 50);
  }
}

/** The one refusal a peer that has not authenticated gets. */
export const NOT_AUTHENTICATED = 'not authenticated: unknown client id or wrong key';
