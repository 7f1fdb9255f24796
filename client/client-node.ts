import { bindCodebook, codebookHash, CODEC_CAPABILITIES, parseCodecSpec, type CodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import { decodePqCodebook, type PqCodebook } from '../shared/protocol/codecs/index.js';
import type { VectorCodec } from '../shared/protocol/codecs/vector-codec.js';
import type { Embeddings, EmbeddingStoreStats } from '../shared/embedding/embeddings.js';
import { DeltaLedger } from './delta-ledger.js';
import type { ClassCounts } from '../shared/learning/metrics/class-accuracy.js';
import { PrototypeTable } from '../shared/learning/prototype-table.js';
import {
  DEFAULT_HEAD_TRAINING, packU32, unpackU32, type CoordinatorMessageType, type CoordinatorToClient, type EvaluationPhase, type HeadTrainingOptions, type Outgoing, type UpdateMessage,
} from '../shared/protocol/messages.js';
import { HeldOutEvaluator } from '../shared/learning/held-out-evaluator.js';
import type { EvaluationMemo } from '../shared/learning/evaluation-memo.js';
import type { CoordinatorLink } from './coordinator-link.js';
import { strategyNamed } from '../shared/strategies/registry.js';
import type { Strategy } from '../shared/strategies/strategy.js';
import { applyTableMessage } from './apply-table.js';

export interface ClientNodeOptions {
  clientId: string;
  token: string;
  /** Embeddings of the local data, through the run's cache. */
  store: Embeddings;
  link: CoordinatorLink;
  /** The codecs and codec features offered in the hello; all that protofed has (CODEC_CAPABILITIES) when absent. */
  codecs?: readonly string[] | undefined;
  /** Test images per class used for evaluation; all when absent. */
  testPerClass?: number | undefined;
  /** Evaluations shared with other clients in this process (virtual mode). */
  evaluationMemo?: EvaluationMemo | undefined;
  /** Called when a mission arrives, before any work on it (fault injection hooks in here). */
  onMission?: ((mission: number) => void) | undefined;
  /** Simulated dropout: whether to ignore this mission altogether. */
  dropsMission?: ((mission: number) => boolean) | undefined;
  /** Simulated straggling: how long to hold back this mission's update (0 or absent: none). */
  holdUpdateMs?: ((mission: number) => number) | undefined;
  /** Simulated departure: leave the run with its data when this mission arrives. */
  leaveAtMission?: number | undefined;
  /** Simulated adversary: what it sends instead of its honest statistics (`known`: the mission's classes). */
  poison?: ((stats: PrototypeTable, known: readonly number[]) => PrototypeTable) | undefined;
  log?: ((line: string) => void) | undefined;
}

/** Thrown when the coordinator refuses this client. */
export class ClientRefusedError extends Error {}

/**
 * A protofed client: it learns the classes each mission assigns, sends only its new statistics
 * (a delta, in the negotiated codec), keeps the global table the coordinator sends, and
 * evaluates nearest-prototype accuracy before and after each merge.
 * The same node runs in every mode; only the link differs.
 *
 * @example
 * const node = new ClientNode({ clientId: 'c0', token, backbone, data, link });
 * await node.run(); // resolves when the coordinator shuts the run down
 */
export class ClientNode {
  private ledger: DeltaLedger | undefined;
  private held: PrototypeTable;
  /** Local training settings (sent in the welcome), for strategies that train. */
  private headTraining: HeadTrainingOptions = DEFAULT_HEAD_TRAINING;
  /** What the strategy trained in the last mission: the view until the next table arrives. */
  private trained: PrototypeTable | undefined;
  private heldVersion = 0;
  private uplink: CodecSpec | undefined;
  private uplinkSpec: CodecSpec | undefined;
  private downlinkSpec: CodecSpec | undefined;
  /** The pq codebook the coordinator sent, kept across reconnects. */
  private codebook: { book: PqCodebook; hash: string } | undefined;
  private strategy: Strategy = strategyNamed('protofed');
  private downlink: VectorCodec | undefined;
  private evaluator: HeldOutEvaluator;
  /** Updates sent and not yet acknowledged, by seq, to resend unchanged after a reconnect. */
  private readonly outbox = new Map<number, Outgoing<UpdateMessage>>();
  /** The global table's means exactly as decoded (kept for `delta+` uplinks). */
  private readonly heldMeans = new Map<number, Float64Array>();
  /** The embeddings learned since the last update, for strategies that keep rows. */
  private rows: { classId: number; embeddings: Float32Array }[] = [];
  /** Missions whose examples this node has learned (a replacement process starts empty). */
  private readonly learned = new Set<number>();
  /** This node's own embedding work (its store may be shared with other virtual clients). */
  private readonly embedded: EmbeddingStoreStats = { computed: 0, fromCache: 0 };
  /** The run this node has joined (from the first welcome), said in every later hello. */
  private runId = '';
  /** The coordinator process that welcomed this node last (a new one means it restarted). */
  private coordinatorInstance: string | undefined;
  private queue: Promise<void> = Promise.resolve();
  private finish!: (error?: Error) => void;

  constructor(private readonly o: ClientNodeOptions) {
    this.held = new PrototypeTable(o.store.dim);
    this.evaluator = new HeldOutEvaluator(o.store, o.testPerClass, this.embedded, o.evaluationMemo);
  }

  run(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.finish = (error) => {
        this.o.link.close();
        if (error) reject(error);
        else resolve();
      };
    });
    this.o.link.onMessage((type, message) => {
      // Messages are handled strictly in arrival order, even though embedding is async.
      this.queue = this.queue
        .then(() => this.handle(type, message))
        .catch((err: Error) => this.finish(err));
    });
    this.o.link.onInvalid((type, reason) => this.log(`dropped an invalid "${type}" message from the coordinator: ${reason}`));
    this.o.link.onGiveUp((reason) => this.finish(new Error(reason)));
    this.o.link.onConnect(() => this.hello());
    return done;
  }

  private hello(): void {
    this.o.link.send('hello', {
      clientId: this.o.clientId,
      token: this.o.token,
      codecs: [...(this.o.codecs ?? CODEC_CAPABILITIES)],
      dim: this.o.store.dim,
      modelHash: this.o.store.backbone.modelHash,
      tableVersion: this.heldVersion,
      codebook: this.codebook?.hash ?? '',
      runId: this.runId,
    });
  }

  private async handle<K extends CoordinatorMessageType>(type: K, message: CoordinatorToClient[K]): Promise<void> {
    switch (type) {
      case 'welcome':
        return this.welcome(message as CoordinatorToClient['welcome']);
      case 'refused':
        return this.finish(new ClientRefusedError(`coordinator refused client ${this.o.clientId}: ${(message as CoordinatorToClient['refused']).reason}`));
      case 'mission':
        return this.mission(message as CoordinatorToClient['mission']);
      case 'ack': {
        const ack = message as CoordinatorToClient['ack'];
        this.ledger?.acknowledge(ack.seq, ack.version);
        for (const seq of this.outbox.keys()) if (seq <= ack.seq) this.outbox.delete(seq);
        return;
      }
      case 'table':
        return this.table(message as CoordinatorToClient['table']);
      case 'evaluate': {
        const m = message as CoordinatorToClient['evaluate'];
        return this.report(m.mission, 'after-merge', [...unpackU32(m.evalClasses)]);
      }
      case 'error': {
        const e = message as CoordinatorToClient['error'];
        this.log(`coordinator error (${e.code})${e.seq ? ` on update ${e.seq}` : ''}: ${e.reason}`);
        return;
      }
      case 'shutdown':
        return this.finish();
      case 'codebook': {
        const bytes = (message as CoordinatorToClient['codebook']).codebook;
        this.codebook = { book: decodePqCodebook(bytes), hash: codebookHash(bytes) };
        this.bindCodecs();
        return;
      }
    }
  }

  /** The negotiated codecs; a pq one works once its codebook is here. */
  private bindCodecs(): void {
    const bind = (spec: CodecSpec): CodecSpec => (spec.pq && this.codebook ? bindCodebook(spec, this.codebook.book) : spec);
    this.uplink = bind(this.uplinkSpec!);
    this.downlink = bind(this.downlinkSpec!).codec;
  }

  private welcome(w: CoordinatorToClient['welcome']): void {
    this.uplinkSpec = parseCodecSpec(w.uplinkCodec);
    this.downlinkSpec = parseCodecSpec(w.downlinkCodec);
    this.bindCodecs();
    if (this.strategy.name !== w.strategy) {
      this.strategy = strategyNamed(w.strategy);
      this.evaluator = new HeldOutEvaluator(this.o.store, this.o.testPerClass, this.embedded, this.o.evaluationMemo, this.strategy.classify);
    }
    this.headTraining = w.headTraining ?? DEFAULT_HEAD_TRAINING;
    const tableDim = this.strategy.tableDim(w.dim);
    if (this.held.dim !== tableDim) this.held = new PrototypeTable(tableDim);
    if (w.dim !== this.o.store.dim) throw new Error(`coordinator expects ${w.dim}-d embeddings, this client makes ${this.o.store.dim}-d`);
    this.ledger ??= new DeltaLedger(w.dim, w.lastAppliedSeq);
    const unacknowledged = this.ledger.unacknowledged();
    if (this.coordinatorInstance !== undefined && w.instance !== this.coordinatorInstance) {
      this.log(`the coordinator restarted and resumed run ${w.runId} at table version ${w.tableVersion}; ` +
        `it has applied this client's updates up to seq ${w.lastAppliedSeq}; resending ${unacknowledged.length} unacknowledged update(s)`);
    }
    this.runId = w.runId;
    this.coordinatorInstance = w.instance;
    // Unacknowledged updates go again, byte for byte, with their seqs: the coordinator applies each once.
    for (const pending of unacknowledged) {
      const update = this.outbox.get(pending.seq);
      if (update) this.o.link.send('update', update);
    }
  }

  private async mission(m: CoordinatorToClient['mission']): Promise<void> {
    this.o.onMission?.(m.mission);
    if (m.mission === this.o.leaveAtMission) {
      this.leave();
      return;
    }
    if (this.o.dropsMission?.(m.mission)) return;
    const ledger = this.requireLedger();
    // The coordinator repeats a mission to a client that rejoins before its update arrived. This
    // node still has that update (it resends it after the welcome), so learning the examples again
    // would count them twice: only the evaluation, which may have been lost, is repeated.
    if (this.learned.has(m.mission)) {
      await this.report(m.mission, 'before-merge', [...unpackU32(m.evalClasses)]);
      return;
    }
    this.learned.add(m.mission);
    const train = this.o.store.data.train;
    for (const a of m.assignment) {
      const indices = unpackU32(a.indices);
      for (const i of indices) {
        if (i >= train.count) throw new Error(`mission ${m.mission} names train image ${i}, but the local train split has ${train.count}`);
        if (train.labels[i] !== a.classId) {
          throw new Error(`mission ${m.mission} says train image ${i} is class ${a.classId}, but the local data labels it ${train.labels[i]}: the client and coordinator data differ`);
        }
      }
      const embeddings = await this.o.store.embed('train', indices, undefined, this.embedded);
      ledger.record(a.classId, embeddings, indices.length);
      if (this.strategy.keepsRows) this.rows.push({ classId: a.classId, embeddings });
    }
    if (this.strategy.train) {
      this.trained = this.strategy.train({
        clientId: this.o.clientId, mission: m.mission, held: this.held, rows: this.rows, classIds: [...unpackU32(m.evalClasses)],
        dim: this.o.store.dim, options: this.headTraining,
      });
    }
    await this.report(m.mission, 'before-merge', [...unpackU32(m.evalClasses)]);
    // Only strategies whose clients learn the table send updates.
    if (this.strategy.learner !== 'clients') return;
    const hold = this.o.holdUpdateMs?.(m.mission) ?? 0;
    if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
    const delta = ledger.takeDelta();
    if (delta) {
      const stats = this.o.poison ? this.o.poison(delta.stats, [...unpackU32(m.evalClasses)]) : delta.stats;
      const update = { seq: delta.seq, base: this.heldVersion, mission: m.mission, classes: this.encodeDelta(stats) };
      this.outbox.set(delta.seq, update);
      this.o.link.send('update', update);
    }
  }

  /**
   * Leaves the run with this client's data: the coordinator unlearns everything it contributed and
   * answers `shutdown`, which ends run().
   */
  leave(): void {
    this.log('leaving the run: asking the coordinator to unlearn everything this client contributed');
    this.o.link.send('leave', {});
  }

  /** The class block of a new delta, as the strategy builds it (a change against the held table for `delta+`). */
  private encodeDelta(stats: PrototypeTable): Uint8Array {
    const uplink = this.uplink!;
    const block = this.strategy.encodeUpdate({
      delta: stats, rows: this.rows, held: this.held, trained: this.trained, uplink,
      reference: (classId) => (uplink.delta ? this.heldMeans.get(classId) : undefined),
    });
    this.rows = [];
    return block;
  }

  private table(t: CoordinatorToClient['table']): void {
    applyTableMessage(this.held, this.heldVersion, t, this.downlink!, this.uplink?.delta ? this.heldMeans : undefined);
    this.trained = undefined;
    this.heldVersion = t.version;
  }

  /** This client's view: the global table it holds plus its own statistics that table does not contain yet. */
  private view(): PrototypeTable {
    return this.strategy.view({
      held: this.held,
      trained: this.trained,
      own: () => this.ledger?.notReflectedIn(this.heldVersion) ?? new PrototypeTable(this.held.dim),
    });
  }

  private async report(mission: number, phase: EvaluationPhase, classIds: number[]): Promise<void> {
    const counts: ClassCounts = await this.evaluator.evaluate(this.view(), classIds);
    this.o.link.send('report', {
      clientId: this.o.clientId,
      mission,
      phase,
      tableVersion: this.heldVersion,
      classIds: packU32(counts.classIds),
      correct: packU32(counts.correct),
      total: packU32(counts.total),
      embeddingsComputed: this.embedded.computed,
      embeddingsCached: this.embedded.fromCache,
    });
  }

  private requireLedger(): DeltaLedger {
    if (!this.ledger) throw new Error('a mission arrived before the welcome');
    return this.ledger;
  }

  private log(line: string): void {
    (this.o.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(`[${this.o.clientId}] ${line}`);
  }
}
