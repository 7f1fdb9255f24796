import { PrototypeTable } from '../shared/prototype-stats.js';

/** One class of a decoded update: `count` new examples whose mean is `mean`. */
export interface DecodedClassUpdate {
  classId: number;
  count: number;
  mean: Float64Array;
}

export interface ApplyResult {
  applied: boolean;
  /** The table version that contains this update. */
  version: number;
}

/**
 * The coordinator's federation state, in one place with one owner: the global table, each
 * client's own totals (for exact unlearning), each client's last applied seq, and the version
 * at which every class last changed.
 *
 * Updates are deltas, so the global table is the sum of all contributions and equals the
 * centralized statistics of all examples, whatever the arrival order.
 *
 * @example
 * const state = new FederationState(64);
 * state.applyUpdate('c0', 1, [{ classId: 3, count: 10, mean }]); // { applied: true, version: 1 }
 * state.applyUpdate('c0', 1, [{ classId: 3, count: 10, mean }]); // resend: { applied: false, version: 1 }
 */
export class FederationState {
  readonly global: PrototypeTable;
  private readonly perClient = new Map<string, PrototypeTable>();
  private readonly lastSeq = new Map<string, number>();
  private readonly seqVersion = new Map<string, number>();
  private readonly classVersion = new Map<number, number>();
  private readonly removedAt = new Map<number, number>();
  private tableVersion = 0;

  constructor(readonly dim: number) {
    this.global = new PrototypeTable(dim);
  }

  get version(): number {
    return this.tableVersion;
  }

  /** The highest seq applied for a client (0 before its first update). */
  lastAppliedSeq(clientId: string): number {
    return this.lastSeq.get(clientId) ?? 0;
  }

  /**
   * Applies a client's delta at most once: seqs at or below the last applied one are duplicates
   * (a resend after reconnect) and change nothing. The caller has validated the classes.
   */
  applyUpdate(clientId: string, seq: number, classes: readonly DecodedClassUpdate[]): ApplyResult {
    if (seq <= this.lastAppliedSeq(clientId)) {
      return { applied: false, version: this.seqVersion.get(clientId) ?? this.tableVersion };
    }
    const version = ++this.tableVersion;
    let own = this.perClient.get(clientId);
    if (!own) this.perClient.set(clientId, (own = new PrototypeTable(this.dim)));
    for (const c of classes) {
      this.global.addMean(c.classId, c.count, c.mean);
      own.addMean(c.classId, c.count, c.mean);
      this.classVersion.set(c.classId, version);
      this.removedAt.delete(c.classId);
    }
    this.lastSeq.set(clientId, seq);
    this.seqVersion.set(clientId, version);
    return { applied: true, version };
  }

  /** Classes changed after `version` (ascending ids), and classes removed after it. */
  changedSince(version: number): { changed: number[]; removed: number[] } {
    const changed: number[] = [];
    for (const [id, v] of this.classVersion) if (v > version) changed.push(id);
    const removed: number[] = [];
    for (const [id, v] of this.removedAt) if (v > version) removed.push(id);
    return { changed: changed.sort((a, b) => a - b), removed: removed.sort((a, b) => a - b) };
  }

  /** A client's own contribution so far. */
  contribution(clientId: string): PrototypeTable | undefined {
    return this.perClient.get(clientId);
  }

  /**
   * Exact unlearning: subtracts everything a client contributed. The client's seq history is
   * kept, so a late resend of an old update is still recognised as a duplicate.
   */
  removeClient(clientId: string): ApplyResult {
    const own = this.perClient.get(clientId);
    if (!own || own.size === 0) return { applied: false, version: this.tableVersion };
    const version = ++this.tableVersion;
    for (const id of own.classIds()) {
      const s = own.get(id)!;
      this.global.subtractSum(id, s.count, s.sum);
      if (this.global.has(id)) {
        this.classVersion.set(id, version);
      } else {
        this.classVersion.delete(id);
        this.removedAt.set(id, version);
      }
    }
    this.perClient.delete(clientId);
    return { applied: true, version };
  }
}
