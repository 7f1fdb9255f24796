import { EventEmitter } from 'node:events';
import type { BatchedClientLinks, ClientLink, ClientLinksEvents } from '../../coordinator/federation/client-links.js';
import { ByteMeter, controlBytesOf } from '../../shared/protocol/byte-accounting.js';
import { PROTOCOL_VERSION, payloadBytes, type CoordinatorMessageType, type CoordinatorToClient, type ErrorCode, type Outgoing } from '../../shared/protocol/messages.js';
import { validateClientMessage } from '../../shared/protocol/validation.js';
import { decodeMessage, encodeMessage } from '../../shared/protocol/wire-format.js';
import { frameAt, packFrames } from './frame-batch.js';
import type { PrototypeTable } from '../../shared/learning/prototype-table.js';
import type { ShardHandle } from './shard-handle.js';

/** One client of the population: its link is made when asked for, from two numbers the links keep. */
export class ShardLink implements ClientLink {
  readonly connected = true;

  constructor(private readonly links: ShardLinks, readonly client: number) {}

  get clientId(): string {
    return `c${this.client}`;
  }

  get heldVersion(): number {
    return this.links.heldVersion[this.client]!;
  }

  set heldVersion(version: number) {
    this.links.heldVersion[this.client] = version;
  }

  send<K extends CoordinatorMessageType>(type: K, body: Outgoing<CoordinatorToClient[K]>): void {
    this.links.queue(this.client, type, body);
  }

  sendError(code: ErrorCode, reason: string, seq?: number): void {
    // The shards are this process's own clients: a refused update is a bug, not a peer to answer.
    this.links.fail(new Error(`population client ${this.client}'s update${seq === undefined ? '' : ` ${seq}`} was refused (${code}): ${reason}`));
  }
}

export interface ShardLinksOptions {
  population: number;
  shards: readonly ShardHandle[];
  /** Clients per batch handed to a shard: batches overlap the shards' work with the coordinator's. */
  batchSize: number;
}

interface Outbox {
  /** The mission frame queued for each client (with the pq codebook before it, for a client that gets it). */
  missions: Map<number, { frame: Uint8Array; codebook: Uint8Array | undefined }>;
  acks: Map<number, Uint8Array>;
  tables: Map<number, Uint8Array>;
}

/**
 * The population's clients as the engine sees every client: `ClientLinks`, whose messages the
 * shards that hold the clients (in this thread or in worker threads) take in batches. A link's
 * `send` encodes the message, counts its bytes (the run's meter, and the client's learning
 * traffic in two numbers) and queues it. `flush` carries what is queued: missions go to the shards
 * in batches, all at once, and the updates each batch comes back with are validated and emitted
 * (`update`) as it arrives, so the coordinator merges while the shards still learn; then each
 * client's ack and table go in one delivery per batch. A table sent to many clients is one message:
 * it is encoded once, and crosses to each shard once.
 *
 * @example
 * links.on('update', (link, update) => intake.take(link.clientId, update, link));
 * links.client(7).send('mission', { mission: 0, assignment, evalClasses });
 * await links.flush();   // client 7's update was emitted (and taken)
 */
export class ShardLinks extends EventEmitter<ClientLinksEvents<ShardLink>> implements BatchedClientLinks<ShardLink> {
  /** Every byte of the run, by direction and message type. */
  readonly meter = new ByteMeter();
  /** Encoded bytes each client sent and received (learning traffic). */
  readonly bytesUp: Float64Array;
  readonly bytesDown: Float64Array;
  /** The table version the coordinator has sent each client. */
  readonly heldVersion: Int32Array;
  private outbox: Outbox = { missions: new Map(), acks: new Map(), tables: new Map() };
  /** Messages sent to many clients, encoded once: by the message object. */
  private readonly encoded = new WeakMap<object, { frame: Uint8Array; payload: number }>();
  private failure: Error | undefined;

  constructor(private readonly o: ShardLinksOptions) {
    super();
    this.bytesUp = new Float64Array(o.population);
    this.bytesDown = new Float64Array(o.population);
    this.heldVersion = new Int32Array(o.population);
  }

  session(clientId: string): ShardLink | undefined {
    const client = /^c(\d+)$/.exec(clientId) ? Number(clientId.slice(1)) : -1;
    return client >= 0 && client < this.o.population ? this.client(client) : undefined;
  }

  client(client: number): ShardLink {
    return new ShardLink(this, client);
  }

  /** Encodes, counts and queues one message to one client (ShardLink.send). */
  queue(client: number, type: CoordinatorMessageType, body: object): void {
    let known = this.encoded.get(body);
    if (!known) {
      const message = { v: PROTOCOL_VERSION, ...body };
      known = { frame: encodeMessage(message), payload: payloadBytes(message) };
      if (type === 'table' || type === 'codebook') this.encoded.set(body, known);
    }
    const { frame, payload } = known;
    const control = controlBytesOf(type, body, frame.byteLength);
    this.meter.countWithControl('down', type, payload, frame.byteLength, 'mission-control', control);
    this.bytesDown[client]! += frame.byteLength - control;
    const { missions, acks, tables } = this.outbox;
    if (type === 'codebook') {
      missions.set(client, { frame: new Uint8Array(0), codebook: frame });
    } else if (type === 'mission') {
      missions.set(client, { frame, codebook: missions.get(client)?.codebook });
    } else if (type === 'ack') {
      acks.set(client, frame);
    } else if (type === 'table') {
      tables.set(client, frame);
    } else {
      throw new Error(`a population shard takes missions, codebooks, acks and tables, not "${type}" messages`);
    }
  }

  /** The table a client holds, as its shard decoded it. */
  held(client: number): Promise<PrototypeTable> {
    return this.o.shards[this.shardOf(client)]!.held(client);
  }

  /** Stops the shards (worker threads end). */
  async close(): Promise<void> {
    await Promise.all(this.o.shards.map((s) => s.close()));
  }

  /** Stops the run: the pending flush rejects with this error. */
  fail(error: Error): void {
    this.failure ??= error;
  }

  /**
   * Carries everything queued: the missions (the shards answer with updates, emitted batch by
   * batch), then the acks and tables. A table goes with an ack, as the shards take them.
   */
  async flush(): Promise<void> {
    const { missions, acks, tables } = this.outbox;
    this.outbox = { missions: new Map(), acks: new Map(), tables: new Map() };
    if (missions.size > 0) await this.learn(missions);
    if (acks.size > 0 || tables.size > 0) await this.deliver(acks, tables);
    if (this.failure) throw this.failure;
  }

  private shardOf(client: number): number {
    return Math.min(this.o.shards.length - 1, Math.floor(client / this.o.shards[0]!.size));
  }

  /** Cuts clients (in the order they were queued) into batches of one shard each. */
  private batches(clients: Iterable<number>): { shard: number; clients: number[] }[] {
    const batches: { shard: number; clients: number[] }[] = [];
    for (const client of clients) {
      const shard = this.shardOf(client);
      let batch = batches.at(-1);
      if (!batch || batch.shard !== shard || batch.clients.length >= this.o.batchSize) batches.push((batch = { shard, clients: [] }));
      batch.clients.push(client);
    }
    return batches;
  }

  private async learn(missions: Outbox['missions']): Promise<void> {
    const batches = this.batches(missions.keys());
    // All batches go out at once; each is taken as it comes back.
    const learned = batches.map((b) => {
      const queued = b.clients.map((c) => missions.get(c)!);
      const codebook = queued.find((q) => q.codebook)?.codebook;
      return this.o.shards[b.shard]!.learn(
        Int32Array.from(b.clients), packFrames(queued.map((q) => q.frame)),
        codebook ? Uint8Array.from(queued, (q) => (q.codebook ? 0 : 1)) : undefined, codebook,
      );
    });
    for (let b = 0; b < batches.length; b++) {
      const updates = await learned[b]!;
      const clients = batches[b]!.clients;
      for (let k = 0; k < clients.length; k++) {
        const client = clients[k]!;
        const frame = frameAt(updates, k);
        const update = validateClientMessage.update(decodeMessage(frame));
        this.meter.count('up', 'update', update.classes.payloadBytes, frame.byteLength);
        this.bytesUp[client]! += frame.byteLength;
        this.emit('update', this.client(client), update);
      }
    }
  }

  private async deliver(acks: Map<number, Uint8Array>, tables: Map<number, Uint8Array>): Promise<void> {
    for (const client of tables.keys()) {
      if (!acks.has(client)) throw new Error(`population client ${client} was sent a table without an ack: a shard takes them together`);
    }
    // Each distinct table frame crosses once; a client names its table by index.
    const tableIndex = new Map<Uint8Array, number>();
    const distinct: Uint8Array[] = [];
    const deliveries = this.batches(acks.keys()).map((b) => {
      const tableOf = Int32Array.from(b.clients, (c) => {
        const table = tables.get(c);
        if (!table) return -1;
        let t = tableIndex.get(table);
        if (t === undefined) tableIndex.set(table, (t = distinct.push(table) - 1));
        return t;
      });
      return { b, tableOf, acks: packFrames(b.clients.map((c) => acks.get(c)!)) };
    });
    const tableBatch = packFrames(distinct);
    await Promise.all(deliveries.map(({ b, tableOf, acks: ackBatch }) => this.o.shards[b.shard]!.deliver(Int32Array.from(b.clients), ackBatch, tableOf, tableBatch)));
  }
}
