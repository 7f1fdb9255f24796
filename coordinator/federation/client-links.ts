import type { EventEmitter } from 'node:events';
import type { ByteMeter } from '../../shared/protocol/byte-accounting.js';
import type { ClientToCoordinator, CoordinatorMessageType, CoordinatorToClient, HelloMessage, Outgoing } from '../../shared/protocol/messages.js';
import type { IntakeReplies } from './update-intake.js';

/**
 * One client as the engine sees it, whatever carries its messages (a socket.io connection, an
 * in-memory channel): who it is, whether it is connected, the table version it holds, and a way
 * to send it messages.
 */
export interface ClientLink extends IntakeReplies {
  readonly clientId: string | undefined;
  readonly connected: boolean;
  /** The global table version this client holds, as far as the coordinator has sent it. */
  heldVersion: number;
  send<K extends CoordinatorMessageType>(type: K, body: Outgoing<CoordinatorToClient[K]>): void;
}

/** What the clients' links report: a client joined or left, and its validated updates and reports. */
export interface ClientLinksEvents<L extends ClientLink = ClientLink> {
  joined: [link: L, hello: HelloMessage];
  left: [link: L, reason: string];
  update: [link: L, message: ClientToCoordinator['update']];
  report: [link: L, message: ClientToCoordinator['report']];
  /** The client leaves the run with its data (exact unlearning). */
  leave: [link: L];
}

/**
 * The engine's only view of the transport: the clients' links and the validated messages they
 * send. The socket.io server (coordinator/transport/, which also carries virtual clients over
 * in-memory channels) is one; the population's shards (simulation/population/shard-links.ts)
 * another; a test or another transport can be a third.
 */
export interface ClientLinks<L extends ClientLink = ClientLink> extends EventEmitter<ClientLinksEvents<L>> {
  /** The link of a client that has said hello (undefined before, or once it is gone). */
  session(clientId: string): L | undefined;
  /** What a client's sockets carried over all its connections; absent, or undefined, without sockets. */
  wireBytes?(clientId: string): WireBytes | undefined;
  /** Adds socket bytes a client's connections carried before a restart (a resumed run's). */
  carryWire?(clientId: string, bytes: WireBytes): void;
}

/** Links that keep a byte meter per client, by message type (all but the population's, which count a client's bytes in two numbers). */
export interface MeteredClientLinks<L extends ClientLink = ClientLink> extends ClientLinks<L> {
  /** A client's byte meter, kept across its reconnects. */
  meter(clientId: string): ByteMeter;
}

/**
 * Links that carry many clients' messages in batches: what `send` queues goes out with the next
 * `flush`, which resolves once the messages that came back in answer were emitted.
 */
export interface BatchedClientLinks<L extends ClientLink = ClientLink> extends ClientLinks<L> {
  flush(): Promise<void>;
}

/** Bytes on a client's TCP sockets, measured there: up is what the coordinator read. */
export interface WireBytes {
  up: number;
  down: number;
}
