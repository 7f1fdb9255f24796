import { applyTableMessage } from '../../client/apply-table.js';
import { encodeUpdateClasses } from '../../shared/protocol/update-blocks.js';
import { bindCodebook, parseCodecSpec, type CodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import { decodePqCodebook, type PqCodebook } from '../../shared/protocol/codecs/index.js';
import { PROTOCOL_VERSION, unpackU32, type TableMessage } from '../../shared/protocol/messages.js';
import { validateCoordinatorMessage } from '../../shared/protocol/validation.js';
import { PrototypeTable } from '../../shared/learning/prototype-table.js';
import { decodeMessage, encodeMessage } from '../../shared/protocol/wire-format.js';
import { frameAt, type FrameBatch } from './frame-batch.js';

export interface ShardConfig {
  /** Population-wide index of this shard's first client; its clients are first .. first + size − 1. */
  first: number;
  size: number;
  dim: number;
  uplink: string;
  downlink: string;
  /** Embeddings of the train split, row i for train image i (shared between threads, read only). */
  bank: Float32Array;
  /** Labels of the train split, to check each assignment as a client checks its own data. */
  labels: Int32Array;
  /** Each client's last applied seq, to continue from (a resumed run; all 0 when absent). */
  lastSeq?: Int32Array | undefined;
}

/**
 * A shard of a large virtual population: the client side of the protocol for many clients at
 * once, with almost nothing per idle client. An idle client is two integers: the table version
 * it holds and the seq of its last update. Tables are immutable snapshots keyed by version and
 * shared by every client that holds that version (a table built from the changes since version a
 * or since version b is the same table: the coordinator encodes each class from the same
 * statistics, deterministically).
 *
 * Every message is decoded, validated and answered through the same functions ClientNode uses:
 * mission in, update out (encodeUpdateClasses), ack and table in (applyTableMessage).
 */
export class ClientShard {
  /** The global table version each client holds. */
  readonly heldVersion: Int32Array;
  /** The seq of each client's last update (0 before its first). */
  readonly lastSeq: Int32Array;
  /** Each snapshot with its means exactly as decoded (what `delta+` changes are taken against). */
  private readonly snapshots = new Map<number, PrototypeTable>();
  private readonly snapshotMeans = new Map<number, Map<number, Float64Array>>();
  /** pq: whether each client has received the codebook (the codec works once it has). */
  readonly hasCodebook: Uint8Array;
  /** Clients holding each version; a snapshot nobody holds is dropped. */
  private readonly holders = new Map<number, number>();
  private uplinkSpec: CodecSpec;
  private downlinkSpec: CodecSpec;

  constructor(readonly config: ShardConfig) {
    this.heldVersion = new Int32Array(config.size);
    this.lastSeq = config.lastSeq ? Int32Array.from(config.lastSeq) : new Int32Array(config.size);
    if (this.lastSeq.length !== config.size) throw new RangeError(`${this.lastSeq.length} seqs for a shard of ${config.size} clients`);
    this.hasCodebook = new Uint8Array(config.size);
    this.uplinkSpec = parseCodecSpec(config.uplink);
    this.downlinkSpec = parseCodecSpec(config.downlink);
    this.snapshots.set(0, new PrototypeTable(config.dim));
    this.snapshotMeans.set(0, new Map());
    this.holders.set(0, config.size);
  }

  /**
   * Each client learns its mission's examples and answers with its update frame. A client whose
   * `codebookOf[k]` is 0 first takes the pq codebook frame `codebook` (decoded once per batch).
   */
  learn(clients: Int32Array, missions: FrameBatch, codebookOf?: Uint8Array, codebook?: Uint8Array): Uint8Array[] {
    const { dim, bank, labels } = this.config;
    const out: Uint8Array[] = [];
    let book: PqCodebook | undefined;
    for (let k = 0; k < clients.length; k++) {
      const local = this.local(clients[k]!);
      if (codebookOf?.[k] === 0) {
        book ??= decodePqCodebook(validateCoordinatorMessage.codebook(decodeMessage(codebook!)).codebook);
        this.uplinkSpec = bindCodebook(this.uplinkSpec, book);
        this.downlinkSpec = bindCodebook(this.downlinkSpec, book);
        this.hasCodebook[local] = 1;
      }
      if ((this.uplinkSpec.pq || this.downlinkSpec.pq) && !this.hasCodebook[local]) throw new Error(`client ${clients[k]}: a mission came before the pq codebook`);
      const m = validateCoordinatorMessage.mission(decodeMessage(frameAt(missions, k)));
      const stats = new PrototypeTable(dim);
      for (const a of m.assignment) {
        const indices = unpackU32(a.indices);
        for (const i of indices) {
          if (i >= labels.length || labels[i] !== a.classId) {
            throw new Error(`client ${clients[k]}: mission ${m.mission} names train image ${i} as class ${a.classId}, but the local data says ${labels[i] ?? 'nothing'}`);
          }
          stats.addEmbeddings(a.classId, bank.subarray(i * dim, (i + 1) * dim), 1);
        }
      }
      const seq = ++this.lastSeq[local]!;
      const base = this.heldVersion[local]!;
      const held = this.uplinkSpec.delta ? this.snapshotMeans.get(base)! : undefined;
      out.push(encodeMessage({
        v: PROTOCOL_VERSION, seq, base, mission: m.mission,
        classes: encodeUpdateClasses(stats, this.uplinkSpec, (classId) => {
          const mean = stats.prototype(classId)!;
          const ref = held?.get(classId);
          if (ref) for (let d = 0; d < dim; d++) mean[d]! -= ref[d]!;
          return mean;
        }),
      }));
    }
    return out;
  }

  /**
   * Each client takes its ack and, when `tableOf[k] >= 0`, the table `tables[tableOf[k]]`.
   * Throws on any message that does not fit the client's state.
   */
  deliver(clients: Int32Array, acks: FrameBatch, tableOf: Int32Array, tables: FrameBatch): void {
    const decoded = new Map<number, TableMessage>();
    for (let k = 0; k < clients.length; k++) {
      const local = this.local(clients[k]!);
      const ack = validateCoordinatorMessage.ack(decodeMessage(frameAt(acks, k)));
      if (ack.seq !== this.lastSeq[local]) throw new Error(`client ${clients[k]}: ack for seq ${ack.seq}, but its last update was seq ${this.lastSeq[local]}`);
      const t = tableOf[k]!;
      if (t < 0) continue;
      let table = decoded.get(t);
      if (!table) {
        table = validateCoordinatorMessage.table(decodeMessage(frameAt(tables, t)));
        decoded.set(t, table);
      }
      this.take(local, table);
    }
  }

  /** The table a client holds (shared, read only). */
  held(client: number): PrototypeTable {
    return this.snapshots.get(this.heldVersion[this.local(client)]!)!;
  }

  private take(local: number, t: TableMessage): void {
    const from = this.heldVersion[local]!;
    if (!this.snapshots.has(t.version)) {
      const next = this.snapshots.get(from)!.clone();
      const means = new Map(this.snapshotMeans.get(from)!);
      applyTableMessage(next, from, t, this.downlinkSpec.codec, means);
      this.snapshots.set(t.version, next);
      this.snapshotMeans.set(t.version, means);
    } else if (t.fromVersion > from) {
      throw new Error(`table update from version ${t.fromVersion} cannot apply: client holds version ${from}`);
    }
    this.heldVersion[local] = t.version;
    this.release(from);
    this.holders.set(t.version, (this.holders.get(t.version) ?? 0) + 1);
  }

  private release(version: number): void {
    const left = this.holders.get(version)! - 1;
    if (left > 0) {
      this.holders.set(version, left);
    } else {
      this.holders.delete(version);
      this.snapshots.delete(version);
      this.snapshotMeans.delete(version);
    }
  }

  private local(client: number): number {
    const local = client - this.config.first;
    if (!Number.isInteger(local) || local < 0 || local >= this.config.size) throw new RangeError(`client ${client} is not in this shard`);
    return local;
  }
}
