import { PrototypeTable } from '../shared/learning/prototype-table.js';

/** A delta in flight: statistics sent under `seq` and not yet acknowledged. */
export interface PendingDelta {
  seq: number;
  stats: PrototypeTable;
}

/**
 * A client's own statistics, split by what the coordinator has acknowledged.
 * The client sends only what is new since its last update (a delta), never a
 * prototype already blended with the global one, so the coordinator's merge stays exact.
 *
 * @example
 * const ledger = new DeltaLedger(64);
 * ledger.record(3, embeddings, 10);
 * const delta = ledger.takeDelta(); // { seq: 1, stats } — send it
 * ledger.acknowledge(1);
 */
export class DeltaLedger {
  private readonly acked: PrototypeTable;
  private unsent: PrototypeTable;
  private readonly inflight: PendingDelta[] = [];
  private readonly ackedUnseen: (PendingDelta & { version: number })[] = [];
  private nextSeq: number;

  constructor(readonly dim: number, lastAppliedSeq = 0) {
    this.acked = new PrototypeTable(dim);
    this.unsent = new PrototypeTable(dim);
    this.nextSeq = lastAppliedSeq + 1;
  }

  record(classId: number, embeddings: ArrayLike<number>, rows: number): void {
    this.unsent.addEmbeddings(classId, embeddings, rows);
  }

  /** Moves everything not yet sent into a new numbered delta, or returns undefined when there is nothing new. */
  takeDelta(): PendingDelta | undefined {
    if (this.unsent.size === 0) return undefined;
    const delta = { seq: this.nextSeq++, stats: this.unsent };
    this.inflight.push(delta);
    this.unsent = new PrototypeTable(this.dim);
    return delta;
  }

  /**
   * Marks the delta `seq` (and any earlier one, since the coordinator applies in seq order)
   * as applied in global table version `appliedVersion`.
   */
  acknowledge(seq: number, appliedVersion: number): void {
    while (this.inflight.length > 0 && this.inflight[0]!.seq <= seq) {
      const d = this.inflight.shift()!;
      this.ackedUnseen.push({ ...d, version: appliedVersion });
    }
  }

  /**
   * Own statistics that a global table of version `tableVersion` does not contain yet.
   * Adding them to that table gives the exact view of everything known to this client.
   */
  notReflectedIn(tableVersion: number): PrototypeTable {
    while (this.ackedUnseen.length > 0 && this.ackedUnseen[0]!.version <= tableVersion) {
      this.acked.merge(this.ackedUnseen.shift()!.stats);
    }
    const t = this.sinceLastAck();
    for (const d of this.ackedUnseen) t.merge(d.stats);
    return t;
  }

  /** Deltas sent but not acknowledged, in seq order: resend these after a reconnect, with the same seq. */
  unacknowledged(): readonly PendingDelta[] {
    return this.inflight;
  }

  /** What the coordinator has not acknowledged yet: in flight plus unsent. */
  private sinceLastAck(): PrototypeTable {
    const t = this.unsent.clone();
    for (const d of this.inflight) t.merge(d.stats);
    return t;
  }
}
