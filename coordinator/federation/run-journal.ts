import { Packr } from 'msgpackr';
import type { VectorCodec } from '../../shared/protocol/codecs/vector-codec.js';
import { PROTOCOL_VERSION } from '../../shared/protocol/messages.js';
import type { DurableStore } from './durable-store.js';
import { DownlinkHistory } from './downlink-history.js';
import { decodeUpdate } from './update-intake.js';
import { FederationState, type DecodedUpdate, type FederationSnapshot, type FederationStateOptions, type StateJournal } from './federation-state.js';

const packr = new Packr({ useRecords: false, moreTypes: true });
const SNAPSHOT_FORMAT = 1;

const enum Kind {
  Update = 1,
  RoundClosed = 2,
  ClientRemoved = 3,
  Mission = 4,
  /** What a mode counts between missions (bytes so far), written with the next durable batch. */
  Progress = 5,
}

const enum Form {
  /** The vectors as they arrived, in the run's uplink codec. */
  Encoded = 0,
  /** Decoded float64 means (delta+ uplinks, the coordinator's own pooled updates). */
  Means = 1,
}

/**
 * The durable journal of a run: every change to the federation state (written as it is made, by
 * the state itself) and, once each mission is over, the mission's record. Replaying it rebuilds
 * the state bit for bit, versions included, since the merge is deterministic in its order.
 *
 * Update records are binary: `u8 kind · u8 form · u16 id length · id · f64 seq · i32 mission ·
 * u32 n · n × u32 class id · n × f64 count · the vectors` (codec bytes, or n × dim float64 means).
 *
 * @example
 * const { journal, state } = RunJournal.open(store, 64, {}, codec);
 * state.applyUpdate('c0', 1, decoded);   // recorded
 * await journal.flush();                 // durable: ack it now
 */
export class RunJournal<M = unknown, P = unknown> implements StateJournal {
  private readonly missionRecords: M[];
  /**
   * The mode's progress since its last mission record, as of the last durable write: called at
   * each flush that writes other records; undefined when nothing changed since the last call.
   */
  progressSource: (() => P | undefined) | undefined;
  /** Whether records were appended since the last flush. */
  private dirty = false;
  /**
   * The missions each client has an applied update of: the latest, and any earlier ones apart
   * (most clients of a large population deliver once: a number per client is all they cost).
   */
  private readonly latest = new Map<string, number>();
  private readonly earlier = new Map<string, number[]>();
  /** Client ids as UTF-8, encoded once. */
  private readonly idBytes = new Map<string, Uint8Array>();

  private constructor(
    readonly store: DurableStore,
    readonly state: FederationState,
    missions: M[],
    delivered: Iterable<[string, number[]]>,
    /** The progress records written after the last mission record, in order (see progressSource). */
    readonly progress: readonly P[],
    /** With a `delta+` uplink: what the clients hold (rebuilt on replay, kept in snapshots). */
    readonly history: DownlinkHistory | undefined,
    private readonly deltaDownlink: VectorCodec | undefined,
  ) {
    this.missionRecords = missions;
    for (const [clientId, list] of delivered) for (const m of list) this.markDelivered(clientId, m);
  }

  /**
   * Opens a run's journal on a store: rebuilds the state and mission records it holds (none for a
   * new store) and attaches itself to the state, so that every later change is recorded.
   */
  static open<M, P = unknown>(
    store: DurableStore, dim: number, options: FederationStateOptions, codec: VectorCodec,
    /** The downlink codec when the uplink is `delta+`: the journal then keeps what the clients hold. */
    deltaDownlink?: VectorCodec,
  ): { journal: RunJournal<M, P>; state: FederationState } {
    const { snapshot, records } = store.recovered;
    const history = deltaDownlink ? new DownlinkHistory(dim) : undefined;
    // What clients hold follows from the replayed versions alone (see noteHeld).
    const held = (classIds: Iterable<number>): void => {
      if (history) noteHeld(history, state, deltaDownlink!, classIds);
    };
    let state: FederationState;
    let missions: M[] = [];
    let progress: P[] = [];
    const delivered: [string, number[]][] = [];
    if (snapshot) {
      const s = packr.unpack(snapshot) as {
        format: number; state: FederationSnapshot; missions: M[]; delivered: [string, number[]][]; history?: ReturnType<DownlinkHistory['export']>;
      };
      if (s.format !== SNAPSHOT_FORMAT) throw new Error(`the state snapshot has format ${s.format}; this protofed reads format ${SNAPSHOT_FORMAT}`);
      if (s.state.dim !== dim) throw new Error(`the saved state is ${s.state.dim}-d, but this run's embeddings are ${dim}-d`);
      state = FederationState.restore(s.state, codec, { clip: options.clip });
      missions = s.missions;
      for (const entry of s.delivered) delivered.push(entry);
      if (history && s.history) history.import(s.history);
    } else {
      state = new FederationState(dim, options);
    }
    for (const record of records) {
      const kind = record[0] as Kind;
      if (kind === Kind.Update) {
        const { clientId, seq, update } = decodeUpdateRecord(record, codec, dim);
        state.applyUpdate(clientId, seq, update);
        if (update.mission !== undefined) delivered.push([clientId, [update.mission]]);
        held(update.classIds as number[]);
      } else if (kind === Kind.RoundClosed) {
        state.closeRound();
        held(state.changedSince(state.version - 1).changed);
      } else if (kind === Kind.ClientRemoved) {
        const before = state.version;
        state.removeClient(new TextDecoder().decode(record.subarray(1)));
        const { changed, removed } = state.changedSince(before);
        held([...changed, ...removed]);
      } else if (kind === Kind.Mission) {
        missions.push(packr.unpack(record.subarray(1)) as M);
        progress = [];
      } else if (kind === Kind.Progress) {
        progress.push(packr.unpack(record.subarray(1)) as P);
      } else {
        throw new Error(`the state log holds a record of unknown kind ${kind}`);
      }
    }
    const journal = new RunJournal<M, P>(store, state, missions, delivered, progress, history, deltaDownlink);
    state.journal = journal;
    return { journal, state };
  }

  /**
   * What an ack waits for: the journal's flush, or nothing when the store keeps nothing (a run
   * without a results folder acks as soon as an update is applied).
   */
  get ackGate(): { flush(): Promise<void> } | undefined {
    return this.store.discards ? undefined : this;
  }

  /** Mission records so far, in order. */
  get missions(): readonly M[] {
    return this.missionRecords;
  }

  /** Whether a client's update for a mission is applied. */
  delivered(clientId: string, mission: number): boolean {
    return this.latest.get(clientId) === mission || (this.earlier.get(clientId)?.includes(mission) ?? false);
  }

  /** The latest mission a client has an applied update of (−1 for none). */
  latestMission(clientId: string): number {
    return this.latest.get(clientId) ?? -1;
  }

  updateApplied(clientId: string, seq: number, update: DecodedUpdate): void {
    if (!this.store.discards) {
      appendUpdateRecord(this.store, clientId, seq, update, this.state.dim, this.idBytes);
      this.dirty = true;
    }
    if (update.mission !== undefined) this.markDelivered(clientId, update.mission);
  }

  roundClosed(): void {
    this.append(Uint8Array.of(Kind.RoundClosed));
  }

  clientRemoved(clientId: string): void {
    const id = new TextEncoder().encode(clientId);
    const record = new Uint8Array(1 + id.byteLength);
    record[0] = Kind.ClientRemoved;
    record.set(id, 1);
    this.append(record);
  }

  /** Records that a mission is over, with what the run needs to go on from the next one. */
  recordMission(mission: M): void {
    // A store that keeps nothing is never resumed from: its records would only take memory.
    if (this.store.discards) return;
    this.missionRecords.push(mission);
    this.append(packed(Kind.Mission, mission));
  }

  /**
   * Resolves once everything recorded so far is durable. A flush that writes records also writes
   * the mode's progress (its byte counts), so that a crash loses no more of them than of the state.
   */
  flush(): Promise<void> {
    if (this.dirty && this.progressSource) {
      const progress = this.progressSource();
      if (progress !== undefined) this.store.append(packed(Kind.Progress, progress));
    }
    this.dirty = false;
    return this.store.flush();
  }

  private append(record: Uint8Array): void {
    if (this.store.discards) return;
    this.store.append(record);
    this.dirty = true;
  }

  /** Folds everything so far into one snapshot (the log starts again, empty). */
  snapshot(): Promise<void> {
    if (this.store.discards) return Promise.resolve();
    if (this.history) {
      // The changes folded into the snapshot cannot be replayed: keep what a client at any later
      // version holds of them.
      const { changed, removed } = this.state.changedSince(0);
      noteHeld(this.history, this.state, this.deltaDownlink!, [...changed, ...removed]);
    }
    return this.store.snapshot(packr.pack({ format: SNAPSHOT_FORMAT, state: this.state.snapshot(), missions: this.missionRecords, history: this.history?.export(),
      delivered: [...this.latest].map(([clientId, latest]) => [clientId, [...(this.earlier.get(clientId) ?? []), latest]]) }));
  }

  close(): Promise<void> {
    this.state.journal = undefined;
    return this.store.close();
  }

  private markDelivered(clientId: string, mission: number): void {
    const latest = this.latest.get(clientId);
    if (latest === undefined) {
      this.latest.set(clientId, mission);
    } else if (mission !== latest && !this.earlier.get(clientId)?.includes(mission)) {
      const earlier = this.earlier.get(clientId) ?? [];
      earlier.push(Math.min(mission, latest));
      this.earlier.set(clientId, earlier);
      this.latest.set(clientId, Math.max(mission, latest));
    }
  }
}

const encoder = new TextEncoder();

function packed(kind: Kind, value: unknown): Uint8Array {
  const body = packr.pack(value);
  const record = new Uint8Array(1 + body.byteLength);
  record[0] = kind;
  record.set(body, 1);
  return record;
}

/**
 * Records in `history` what a client at the state's current version holds of these classes. A
 * client at version v holds each class as of its last change up to v (a table carries the current
 * statistics of every class changed since the client's version), or nothing once it was removed.
 */
function noteHeld(history: DownlinkHistory, state: FederationState, downlink: VectorCodec, classIds: Iterable<number>): void {
  for (const id of classIds) {
    const since = state.classChangedAt(id);
    if (since !== undefined) history.record(id, since, downlink.encode(state.global.prototype(id)!), downlink);
    else if (state.classRemovedAt(id) !== undefined) history.recordRemoval(id, state.classRemovedAt(id)!);
  }
}

/** Appends an update record to `store`, written in place. */
function appendUpdateRecord(store: DurableStore, clientId: string, seq: number, update: DecodedUpdate, dim: number, idBytes: Map<string, Uint8Array>): void {
  const { classIds, counts, means, encoded } = update;
  const n = classIds.length;
  // Codec bytes when the update has them (the merge's input, and smaller); float64 means otherwise.
  const vectors = encoded?.vectors;
  let id = idBytes.get(clientId);
  if (!id) idBytes.set(clientId, (id = encoder.encode(clientId)));
  const clientBytes = id;
  const size = 4 + clientBytes.byteLength + 16 + 12 * n + (vectors ? vectors.byteLength : n * dim * 8);
  store.appendInPlace(size, (bytes, view, start) => {
    bytes[start] = Kind.Update;
    bytes[start + 1] = vectors ? Form.Encoded : Form.Means;
    view.setUint16(start + 2, clientBytes.byteLength, true);
    bytes.set(clientBytes, start + 4);
    let at = start + 4 + clientBytes.byteLength;
    view.setFloat64(at, seq, true);
    view.setInt32(at + 8, update.mission ?? -1, true);
    view.setUint32(at + 12, n, true);
    at += 16;
    for (let i = 0; i < n; i++, at += 4) view.setUint32(at, classIds[i]!, true);
    for (let i = 0; i < n; i++, at += 8) view.setFloat64(at, counts[i]!, true);
    if (vectors) {
      bytes.set(vectors, at);
    } else {
      for (let i = 0; i < n * dim; i++, at += 8) view.setFloat64(at, means![i]!, true);
    }
  });
}

/** An update record, decoded: who sent it, its seq and mission, and the update as the merge takes it. */
function decodeUpdateRecord(record: Uint8Array, codec: VectorCodec, dim: number): { clientId: string; seq: number; update: DecodedUpdate } {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const form = record[1] as Form;
  const idLength = view.getUint16(2, true);
  const clientId = new TextDecoder().decode(record.subarray(4, 4 + idLength));
  let at = 4 + idLength;
  const seq = view.getFloat64(at, true);
  const mission = view.getInt32(at + 8, true);
  const n = view.getUint32(at + 12, true);
  at += 16;
  const classIds = new Array<number>(n);
  const counts = new Array<number>(n);
  for (let i = 0; i < n; i++, at += 4) classIds[i] = view.getUint32(at, true);
  for (let i = 0; i < n; i++, at += 8) counts[i] = view.getFloat64(at, true);
  let update: DecodedUpdate;
  if (form === Form.Means) {
    const means = new Float64Array(n * dim);
    for (let i = 0; i < n * dim; i++, at += 8) means[i] = view.getFloat64(at, true);
    update = { classIds, counts, means };
  } else {
    // Through the intake's own decoding, so that the merge sees the very same bits again.
    update = decodeUpdate({ v: PROTOCOL_VERSION, seq, base: 0, mission, classes: { classIds, counts, vectors: record.subarray(at), payloadBytes: record.byteLength - at, rows: false } }, { codec, dim });
  }
  update.mission = mission < 0 ? undefined : mission;
  return { clientId, seq, update };
}
