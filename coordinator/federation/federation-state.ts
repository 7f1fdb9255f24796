import { clipMeans, type ClipBounds } from './robust-clip.js';
import type { VectorCodec } from '../../shared/protocol/codecs/vector-codec.js';
import { PrototypeTable } from '../../shared/learning/prototype-table.js';

/**
 * One decoded update, in columns: `counts[i]` new examples of class `classIds[i]` whose mean is
 * row i of `means` (n × dim, row-major).
 */
export interface DecodedUpdate {
  classIds: ArrayLike<number>;
  counts: ArrayLike<number>;
  /** The means, decoded; absent when `encoded`'s codec adds straight from its (checked) bytes. */
  means?: Float64Array | undefined;
  /**
   * The means as they arrived (codec bytes, checked). A client's contribution is kept in this form
   * (an eighth of the float64 size for int8) and decoded again, to the same bits, to unlearn it.
   */
  encoded?: { codec: VectorCodec; vectors: Uint8Array } | undefined;
  /** The mission the update belongs to (recorded with it; the merge does not use it). */
  mission?: number | undefined;
}

/** Sees every change to the state as it is made, in order (the durable journal). */
export interface StateJournal {
  updateApplied(clientId: string, seq: number, update: DecodedUpdate): void;
  roundClosed(): void;
  clientRemoved(clientId: string): void;
}

/** Everything a FederationState holds, in plain columns (see FederationState.snapshot). */
export interface FederationSnapshot {
  dim: number;
  version: number;
  merge: 'sum' | 'round-average';
  keepContributions: boolean;
  global: TableColumns;
  round: TableColumns | undefined;
  classVersion: [number, number][];
  removedAt: [number, number][];
  seqs: [string, number, number][];
  contributions: [string, { classIds: number[]; counts: number[]; means?: Float64Array | undefined; vectors?: Uint8Array | undefined; order?: number; fused?: boolean }[]][];
  /** Clients unlearned (they left the run); absent in snapshots of older runs. */
  left?: string[];
}

export interface TableColumns {
  classIds: number[];
  counts: number[];
  /** classIds.length × dim, row-major. */
  sums: Float64Array;
}

export interface ApplyResult {
  applied: boolean;
  /** The table version that contains this update. */
  version: number;
}

export interface FederationStateOptions {
  /**
   * sum (default): the global table is the sum of every contribution (prototype statistics).
   * round-average: updates of a round are averaged, weighted by their counts, and replace the
   * classes they carry when the round closes (FedAvg of models, for the fedavg-head baseline).
   */
  merge?: 'sum' | 'round-average';
  /**
   * Keep each client's contributions so that removeClient can unlearn them exactly (default true).
   * A simulation of a million clients that never unlearns can save that memory.
   */
  keepContributions?: boolean;
  /** A robust merge: each class mean of an update is clipped to these bounds before it is added. */
  clip?: ClipBounds | undefined;
}

interface Contribution {
  classIds: ArrayLike<number>;
  counts: ArrayLike<number>;
  means?: Float64Array;
  encoded?: { codec: VectorCodec; vectors: Uint8Array };
  /** When it was applied, among all clients' contributions: unlearning re-adds the others in this order. */
  order: number;
  /** Added straight from its codec bytes (accumulateInto), not from decoded means. */
  fused: boolean;
}

/**
 * The coordinator's federation state, in one place with one owner: the global table, each
 * client's contributions (for exact unlearning), each client's last applied seq, and the version
 * at which every class last changed.
 *
 * Updates are deltas, so the global table is the sum of all contributions and equals the
 * centralized statistics of all examples, whatever the arrival order.
 *
 * @example
 * const state = new FederationState(64);
 * state.applyUpdate('c0', 1, { classIds: [3], counts: [10], means }); // { applied: true, version: 1 }
 * state.applyUpdate('c0', 1, { classIds: [3], counts: [10], means }); // resend: { applied: false, version: 1 }
 */
export class FederationState {
  readonly global: PrototypeTable;
  private readonly contributions = new Map<string, Contribution[]>();
  /** Contributions kept so far, to number them in the order they were applied. */
  private contributionsKept = 0;
  /** Clients whose statistics were unlearned: they left the run. */
  private readonly leftClients = new Set<string>();
  private readonly seqs = new Map<string, { seq: number; version: number }>();
  private readonly classVersion = new Map<number, number>();
  private readonly removedAt = new Map<number, number>();
  private readonly keepContributions: boolean;
  private tableVersion = 0;
  /** round-average: the current round's count-weighted sums. */
  private readonly round: PrototypeTable | undefined;
  /** Told of every change; none while a journal is being replayed. */
  journal: StateJournal | undefined;
  private readonly clip: ClipBounds | undefined;
  /** Class means the robust merge clipped, by client (since this process started or replayed). */
  readonly clippedByClient = new Map<string, number>();

  constructor(readonly dim: number, options: FederationStateOptions = {}) {
    this.global = new PrototypeTable(dim);
    this.keepContributions = options.keepContributions ?? true;
    this.round = options.merge === 'round-average' ? new PrototypeTable(dim) : undefined;
    if (options.clip && this.round) throw new Error('a robust merge clips class means that are added up; it does not apply to averaged rounds (fedavg-head)');
    this.clip = options.clip;
  }

  /**
   * The whole state as plain columns, to be persisted; `restore` makes an equal state from it.
   * Contributions kept as codec bytes stay bytes (their codec is the run's uplink codec).
   */
  snapshot(): FederationSnapshot {
    return {
      dim: this.dim,
      version: this.tableVersion,
      merge: this.round ? 'round-average' : 'sum',
      keepContributions: this.keepContributions,
      global: columnsOf(this.global),
      round: this.round ? columnsOf(this.round) : undefined,
      classVersion: [...this.classVersion],
      removedAt: [...this.removedAt],
      seqs: [...this.seqs].map(([id, s]) => [id, s.seq, s.version]),
      contributions: [...this.contributions].map(([id, list]) => [id, list.map((c) => ({
        classIds: Array.from(c.classIds), counts: Array.from(c.counts), means: c.means, vectors: c.encoded?.vectors, order: c.order, fused: c.fused,
      }))]),
      left: [...this.leftClients],
    };
  }

  /** The state a snapshot describes; `codec` is the codec of contributions kept as bytes. */
  static restore(s: FederationSnapshot, codec: VectorCodec, options: Pick<FederationStateOptions, 'clip'> = {}): FederationState {
    const state = new FederationState(s.dim, { merge: s.merge, keepContributions: s.keepContributions, clip: options.clip });
    state.tableVersion = s.version;
    restoreColumns(state.global, s.global);
    if (state.round && s.round) restoreColumns(state.round, s.round);
    for (const [id, v] of s.classVersion) state.classVersion.set(id, v);
    for (const [id, v] of s.removedAt) state.removedAt.set(id, v);
    for (const [id, seq, version] of s.seqs) state.seqs.set(id, { seq, version });
    let position = 0;
    for (const [id, list] of s.contributions) {
      state.contributions.set(id, list.map((c) => {
        const order = c.order ?? ++position;
        state.contributionsKept = Math.max(state.contributionsKept, order);
        const fused = c.fused ?? (c.vectors !== undefined && codec.accumulateInto !== undefined);
        return c.vectors
          ? { classIds: c.classIds, counts: c.counts, encoded: { codec, vectors: c.vectors }, order, fused }
          : { classIds: c.classIds, counts: c.counts, means: c.means!, order, fused };
      }));
    }
    for (const id of s.left ?? []) state.leftClients.add(id);
    return state;
  }

  get version(): number {
    return this.tableVersion;
  }

  /** The highest seq applied for a client (0 before its first update). */
  lastAppliedSeq(clientId: string): number {
    return this.seqs.get(clientId)?.seq ?? 0;
  }

  /**
   * Applies a client's delta at most once: seqs at or below the last applied one are duplicates
   * (a resend after reconnect) and change nothing. The caller has validated the classes.
   */
  applyUpdate(clientId: string, seq: number, received: DecodedUpdate): ApplyResult {
    const last = this.seqs.get(clientId);
    if (last && seq <= last.seq) return { applied: false, version: last.version };
    // The journal keeps the update as received; a replay clips it again against the same state.
    const update = this.clip ? this.clipped(clientId, received) : received;
    const { classIds, counts, means, encoded } = update;
    const dim = this.dim;
    const fused = means === undefined && encoded?.codec.accumulateInto !== undefined;
    if (counts.length !== classIds.length || (means ? means.length !== classIds.length * dim : !fused)) {
      throw new RangeError(`an update of ${classIds.length} classes needs ${classIds.length} counts and ${classIds.length}×${dim} means (or codec bytes to add from)`);
    }
    if (this.round) return this.addToRound(clientId, seq, update);
    const version = ++this.tableVersion;
    const stride = fused ? encoded!.codec.encodedLength(dim) : 0;
    for (let c = 0; c < classIds.length; c++) {
      const classId = classIds[c]!;
      if (fused) {
        const s = this.global.statsFor(classId);
        encoded!.codec.accumulateInto!(encoded!.vectors, c * stride, dim, counts[c]!, s.sum, 0);
        s.count += counts[c]!;
      } else {
        this.global.addScaledRow(classId, counts[c]!, means!, c * dim);
      }
      this.classVersion.set(classId, version);
      if (this.removedAt.size > 0) this.removedAt.delete(classId);
    }
    if (this.keepContributions) this.keep(clientId, update);
    this.journal?.updateApplied(clientId, seq, received);
    return this.applied(clientId, seq, version);
  }

  /** The update with its class means clipped to the robust merge's bounds (a copy; the received one is kept). */
  private clipped(clientId: string, update: DecodedUpdate): DecodedUpdate {
    if (update.counts.length !== update.classIds.length) return update;
    const means = Float64Array.from(meansOf({ classIds: update.classIds, counts: update.counts, means: update.means, encoded: update.encoded }, this.dim));
    const n = clipMeans(update.classIds, means, this.dim, this.global, this.clip!);
    // Nothing clipped: the update goes in exactly as it would without the robust merge.
    if (n === 0) return update;
    this.clippedByClient.set(clientId, (this.clippedByClient.get(clientId) ?? 0) + n);
    return { classIds: update.classIds, counts: update.counts, means, mission: update.mission };
  }

  /**
   * round-average: ends the round. Each class the round's updates carried becomes their
   * count-weighted average; the others keep their value. A round with no update changes nothing.
   */
  closeRound(): ApplyResult {
    if (!this.round) throw new Error('closeRound is for a round-average federation state');
    if (this.round.size === 0) return { applied: false, version: this.tableVersion };
    const version = ++this.tableVersion;
    for (const id of this.round.classIds()) {
      this.global.setMean(id, this.round.get(id)!.count, this.round.prototype(id)!);
      this.classVersion.set(id, version);
      this.round.delete(id);
    }
    this.journal?.roundClosed();
    return { applied: true, version };
  }

  /** The version at which a class last changed (undefined for a class not in the table). */
  classChangedAt(classId: number): number | undefined {
    return this.classVersion.get(classId);
  }

  /** The version at which a class was removed by unlearning (undefined unless it was). */
  classRemovedAt(classId: number): number | undefined {
    return this.removedAt.get(classId);
  }

  /** Classes changed after `version` (ascending ids), and classes removed after it. */
  changedSince(version: number): { changed: number[]; removed: number[] } {
    const changed: number[] = [];
    for (const [id, v] of this.classVersion) if (v > version) changed.push(id);
    const removed: number[] = [];
    for (const [id, v] of this.removedAt) if (v > version) removed.push(id);
    return { changed: changed.sort((a, b) => a - b), removed: removed.sort((a, b) => a - b) };
  }

  /**
   * Exact unlearning: takes out everything a client contributed (the affected classes are added up
   * again from the others, see below). The client's seq history is kept, so a late resend of an
   * old update is still recognised as a duplicate.
   */
  removeClient(clientId: string): ApplyResult {
    if (!this.keepContributions) throw new Error('this federation state keeps no per-client contributions, so it cannot unlearn a client');
    const own = this.contributions.get(clientId);
    this.leftClients.add(clientId);
    if (!own || own.length === 0) {
      this.journal?.clientRemoved(clientId);
      return { applied: false, version: this.tableVersion };
    }
    const version = ++this.tableVersion;
    const affected = new Set<number>();
    for (const c of own) for (let i = 0; i < c.classIds.length; i++) affected.add(c.classIds[i]!);
    this.contributions.delete(clientId);
    // Not subtracted (floating point would leave a trace): every affected class is added up again
    // from the other clients' contributions, in the order they were applied, as in a run without this client.
    for (const id of affected) this.global.delete(id);
    const rest = [...this.contributions.values()].flat().filter((c) => Array.prototype.some.call(c.classIds, (id: number) => affected.has(id)));
    rest.sort((a, b) => a.order - b.order);
    for (const c of rest) this.addContribution(c, affected);
    for (const id of affected) {
      if (this.global.has(id)) {
        this.classVersion.set(id, version);
      } else {
        this.classVersion.delete(id);
        this.removedAt.set(id, version);
      }
    }
    this.journal?.clientRemoved(clientId);
    return { applied: true, version };
  }

  /** Whether a client's statistics were unlearned (it left the run). */
  hasLeft(clientId: string): boolean {
    return this.leftClients.has(clientId);
  }

  /** Adds a kept contribution's rows of the `only` classes, the way applyUpdate added them. */
  private addContribution(c: Contribution, only: ReadonlySet<number>): void {
    const dim = this.dim;
    const means = c.fused ? undefined : meansOf(c, dim);
    const stride = c.fused ? c.encoded!.codec.encodedLength(dim) : 0;
    for (let i = 0; i < c.classIds.length; i++) {
      const classId = c.classIds[i]!;
      if (!only.has(classId)) continue;
      if (c.fused) {
        const s = this.global.statsFor(classId);
        c.encoded!.codec.accumulateInto!(c.encoded!.vectors, i * stride, dim, c.counts[i]!, s.sum, 0);
        s.count += c.counts[i]!;
      } else {
        this.global.addScaledRow(classId, c.counts[i]!, means!, i * dim);
      }
    }
  }

  private addToRound(clientId: string, seq: number, update: DecodedUpdate): ApplyResult {
    const means = update.means ?? meansOf({ classIds: update.classIds, counts: update.counts, encoded: update.encoded! }, this.dim);
    for (let c = 0; c < update.classIds.length; c++) this.round!.addScaledRow(update.classIds[c]!, update.counts[c]!, means, c * this.dim);
    this.journal?.updateApplied(clientId, seq, update);
    // Contained in the version the round will close with.
    return this.applied(clientId, seq, this.tableVersion + 1);
  }

  /** Records that a client's seq is applied, in table version `version`. */
  private applied(clientId: string, seq: number, version: number): ApplyResult {
    const last = this.seqs.get(clientId);
    if (last) {
      last.seq = seq;
      last.version = version;
    } else {
      this.seqs.set(clientId, { seq, version });
    }
    return { applied: true, version };
  }

  private keep(clientId: string, update: DecodedUpdate): void {
    let list = this.contributions.get(clientId);
    if (!list) this.contributions.set(clientId, (list = []));
    const order = ++this.contributionsKept;
    const fused = update.means === undefined;
    list.push(update.encoded
      ? { classIds: update.classIds, counts: update.counts, encoded: update.encoded, order, fused }
      : { classIds: Array.from(update.classIds), counts: Array.from(update.counts), means: Float64Array.from(update.means!), order, fused: false });
  }
}

function meansOf(c: Pick<Contribution, 'classIds' | 'counts' | 'means' | 'encoded'>, dim: number): Float64Array {
  if (c.means) return c.means;
  const { codec, vectors } = c.encoded!;
  const stride = codec.encodedLength(dim);
  const out = new Float64Array(c.classIds.length * dim);
  for (let i = 0; i < c.classIds.length; i++) out.set(codec.decode(vectors.subarray(i * stride, (i + 1) * stride), dim), i * dim);
  return out;
}

function columnsOf(table: PrototypeTable): TableColumns {
  const classIds = table.classIds();
  const sums = new Float64Array(classIds.length * table.dim);
  classIds.forEach((id, i) => sums.set(table.get(id)!.sum, i * table.dim));
  return { classIds, counts: classIds.map((id) => table.get(id)!.count), sums };
}

function restoreColumns(table: PrototypeTable, c: TableColumns): void {
  c.classIds.forEach((id, i) => table.restore(id, c.counts[i]!, c.sums.subarray(i * table.dim, (i + 1) * table.dim)));
}
