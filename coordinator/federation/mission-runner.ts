import { EventEmitter } from 'node:events';
import { ByteMeter, addTally, type ByteMeterEntries } from '../../shared/protocol/byte-accounting.js';
import type { CodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import { AccuracyMatrix } from '../../shared/learning/metrics/accuracy-matrix.js';
import { accuracyOf, type ClassCounts } from '../../shared/learning/metrics/class-accuracy.js';
import { isLearningTraffic, unpackU32, type ReportMessage } from '../../shared/protocol/messages.js';
import type { HeldOutEvaluator } from '../../shared/learning/held-out-evaluator.js';
import type { Strategy } from '../../shared/strategies/strategy.js';
import { transferSeconds, type LinkModel } from '../link-model.js';
import type { MissionSchedule } from '../schedules/schedule.js';
import { AssignmentBook } from './assignment-book.js';
import { BytesProgressBook, type BytesProgress } from './bytes-progress.js';
import { AsyncMerging } from './async-merging.js';
import type { ClientLink, MeteredClientLinks } from './client-links.js';
import type { DownlinkHistory } from './downlink-history.js';
import type { FederationState } from './federation-state.js';
import { diffBytes, mean, sumBytes, type MissionBytes, type MissionRecord, type MissionResult, type RunOutcome } from './mission-results.js';
import type { Pace, Round } from './pace.js';
import { runRounds } from './round-loop.js';
import type { RunJournal } from './run-journal.js';
import { SyncMissions } from './sync-missions.js';
import { TableSender } from './table-message.js';
import { UpdateIntake } from './update-intake.js';

export type { ClientMissionResult, MissionBytes, MissionRecord, MissionResult, RunOutcome } from './mission-results.js';

export interface MissionRunnerOptions {
  /** The clients, through whatever transport carries them. */
  links: MeteredClientLinks;
  state: FederationState;
  /**
   * The state's durable journal: updates are acked once it holds them, each finished mission is
   * recorded in it, and a run whose journal already holds missions goes on after the last of them.
   */
  journal: RunJournal<MissionRecord, BytesProgress>;
  /** Fold the journal into a snapshot every this many missions (default 25). */
  snapshotEveryMissions?: number | undefined;
  schedule: MissionSchedule;
  evaluator: HeldOutEvaluator;
  clientIds: string[];
  uplink: CodecSpec;
  downlink: CodecSpec;
  missionLimit: number;
  strategy: Strategy;
  /** Fraction of the clients that take part in each mission (seeded draw). */
  participation: number;
  /** Participants per mission that evaluate their own table (a seeded sample); all when absent. */
  evaluationSample?: number | undefined;
  seed: number;
  phaseMs: number;
  connectMs: number;
  /** Close a mission this long after it starts once `quorum` of its clients delivered; absent: wait for all. */
  deadlineMs?: number | undefined;
  quorum: number;
  /** How long the end of the run waits for owed late updates (default phaseMs). */
  drainMs?: number | undefined;
  /** Each client's link (simulated transfer time); none when absent. */
  link?: ((clientId: string) => LinkModel) | undefined;
  /** Asynchronous merging: no mission barrier; the table goes out every `everyMs` or every `everyUpdates` merged updates. */
  async?: { everyMs?: number | undefined; everyUpdates?: number | undefined } | undefined;
  /**
   * strategy centralized: the coordinator embeds the pooled examples itself; moving each image
   * there costs `bytesPerImage` (counted as the client's `raw-data` uplink).
   */
  centralize?: { embed(indices: number[]): Promise<Float32Array>; bytesPerImage: number } | undefined;
  onMission?: (result: MissionResult) => void;
  /** Sync missions: a mission's clients start learning, or (merged) evaluate the new table. */
  onPhase?: (mission: number, phase: 'learning' | 'evaluating') => void;
  log?: (line: string) => void;
}

/**
 * The one mission loop of every mode. Each round its pace hands out work and says when the round
 * may close (sync missions with a barrier, deadlines and quorum: SyncMissions; asynchronous
 * merging with periodic broadcasts: AsyncMerging); then, the same for both, the round's merge is
 * made durable and acknowledged, the clients get the classes changed since the version they hold,
 * the global table is evaluated, and the round is recorded in the journal and the results. A
 * resumed run's pace replays the rounds the journal holds first.
 *
 * @example
 * const runner = new MissionRunner({ links: server, state, journal, schedule, ... });
 * const outcome = await runner.run();
 */
export class MissionRunner {
  readonly intake: UpdateIntake;
  /** The work handed to each client and not delivered yet: updates are checked against it. */
  readonly assignments = new AssignmentBook();
  /** Latest embedding counts each client reported (a replacement process starts again from 0). */
  readonly embeddingCounts = new Map<string, { computed: number; fromCache: number }>();
  /** The evaluation reports of the round in progress (`reportsOf`), by phase and client. */
  readonly reports = { 'before-merge': new Map<string, ClassCounts>(), 'after-merge': new Map<string, ClassCounts>() };
  /** Updates refused (answered with an error, nothing applied), by client. */
  readonly refusedUpdates = new Map<string, number>();
  /** The mission whose reports are collected. */
  reportsOf = -1;
  private readonly progress = new EventEmitter();
  private failure: Error | undefined;
  private finished = false;
  private endReason = '';
  private readonly toldShutdown = new Set<string>();
  private readonly tables: TableSender;
  private readonly pace: Pace;
  /** The clients' byte counts in the journal's progress records. */
  private readonly bytes: BytesProgressBook;

  constructor(readonly o: MissionRunnerOptions) {
    this.progress.setMaxListeners(0);
    this.tables = new TableSender(o.state, o.downlink, o.journal.history);
    this.bytes = new BytesProgressBook(o.links, o.clientIds);
    this.bytes.restore(o.journal.missions.at(-1), o.journal.progress);
    o.journal.progressSource = () => this.bytes.take();
    this.intake = new UpdateIntake(o.state, {
      codec: o.uplink.codec, delta: this.history, durable: o.journal.ackGate, assignments: { book: this.assignments, strategy: o.strategy },
    });
    this.intake.on('applied', (clientId, update) => {
      this.pace.applied?.(clientId, update.mission);
      this.changed();
    });
    this.intake.on('failed', (err) => this.fail(new Error(`cannot make the state durable: ${err.message}`)));
    this.intake.on('refused', (clientId, seq, code, reason) => {
      const n = (this.refusedUpdates.get(clientId) ?? 0) + 1;
      this.refusedUpdates.set(clientId, n);
      if (n <= 3) this.log(`refused update ${seq} of client ${clientId} (${code}): ${reason}${n === 3 ? ' (further refusals of this client are counted in the summary)' : ''}`);
    });
    o.links.on('update', (link, update) => this.intake.take(link.clientId!, update, link));
    o.links.on('report', (link, report) => this.onReport(link, report));
    o.links.on('leave', (link) => {
      this.forget(link.clientId!, 'left the run').catch((err: Error) => link.sendError('invalid', err.message));
    });
    o.links.on('joined', (link) => this.onJoined(link));
    o.links.on('left', (link, reason) => {
      if (!this.finished) this.log(`client ${link.clientId} disconnected (${reason})`);
    });
    this.pace = o.async ? new AsyncMerging(this, o.async) : new SyncMissions(this);
  }

  /** What the clients hold, for a `delta+` uplink. */
  get history(): DownlinkHistory | undefined {
    return this.o.journal.history;
  }

  /** The error that stopped the run, if one did. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** Stops the run with an error; the pending wait rejects with it. */
  fail(error: Error): void {
    this.failure ??= error;
    this.changed();
  }

  async run(): Promise<RunOutcome> {
    const o = this.o;
    let connected = false;
    const matrix = new AccuracyMatrix();
    const results: MissionResult[] = [];
    const groups: number[][] = [];
    if (o.journal.missions.length > 0 || o.state.version > 0) {
      this.log(`resuming after ${o.journal.missions.length} ${o.async ? 'broadcasts' : 'missions'} of the saved run, at table version ${o.state.version}`);
    }
    let started = 0;
    let before = new Map<string, MissionBytes>();
    // A resumed run's interrupted mission counts its bytes from the end of the last finished one,
    // so what it sent before the stop is in it.
    let resumedBefore = o.journal.missions.length > 0 || o.journal.progress.length > 0
      ? this.meterSnapshot(o.journal.missions.at(-1)?.meters ?? {}) : undefined;
    await runRounds<Round, MissionRecord>({ state: o.state, journal: o.journal, intake: this.intake, merge: o.strategy.merge, snapshotEvery: o.snapshotEveryMissions }, {
      restore: (records) => {
        this.pace.restore(records);
        for (const [k, record] of records.entries()) {
          results.push(record.result);
          groups.push(record.result.newClasses);
          for (const [j, accuracy] of record.matrixRow) matrix.set(k, j, accuracy);
        }
      },
      next: async (index) => {
        // The pace restores (and opens the interrupted mission) before any client can say hello.
        if (!connected) {
          await this.allConnected();
          connected = true;
        }
        started = performance.now();
        before = resumedBefore ?? this.meterSnapshot();
        resumedBefore = undefined;
        return this.pace.next(index);
      },
      deliver: (round) => this.pace.sendTables(round),
      complete: async (round) => {
        groups.push(round.newClasses);
        const global = await o.evaluator.evaluate(o.state.global, round.evalClasses);
        const matrixRow: [number, number][] = [];
        groups.forEach((g, j) => {
          if (g.length === 0) return;
          const accuracy = accuracyOf(global, new Set(g));
          matrix.set(round.index, j, accuracy);
          matrixRow.push([j, accuracy]);
        });
        const clients = await this.pace.clientResults(round);
        const after = this.meterSnapshot();
        const evaluated = clients.filter((c) => !Number.isNaN(c.accuracyAfter));
        const result: MissionResult = {
          mission: round.index,
          classesKnown: round.evalClasses.length,
          newClasses: round.newClasses,
          globalAccuracy: accuracyOf(global),
          meanClientAccuracyBefore: mean(evaluated.map((c) => c.accuracyBefore)),
          meanClientAccuracyAfter: mean(evaluated.map((c) => c.accuracyAfter)),
          tableVersion: o.state.version,
          bytes: sumBytes(o.clientIds.map((id) => diffBytes(before.get(id), after.get(id)!))),
          clients: clients.map((c) => ({ ...c, bytes: diffBytes(before.get(c.clientId), after.get(c.clientId)!) })),
          late: round.late,
          wallMs: performance.now() - started,
        };
        if (o.link) {
          const link = o.link;
          result.simulatedTransferSeconds = Math.max(0, ...o.clientIds.map((id) => {
            const b = diffBytes(before.get(id), after.get(id)!);
            return transferSeconds(addTally(b.up, b.down), link(id));
          }));
        }
        return {
          result, matrixRow, planHash: round.planHash, owed: this.pace.owed(),
          meters: Object.fromEntries(o.clientIds.map((id) => [id, o.links.meter(id).entries()])),
          wire: this.bytes.wireBytes(),
        };
      },
    }, (record) => {
      results.push(record.result);
      o.onMission?.(record.result);
    });

    const end = await this.pace.finish();
    const last = results.at(-1);
    if (last && end.finalClients) {
      last.clients = end.finalClients;
      last.meanClientAccuracyAfter = mean(end.finalClients.map((c) => c.accuracyAfter));
    }
    this.finished = true;
    this.endReason = end.endReason;
    for (const id of o.clientIds) this.shutDown(id);
    return {
      missions: results, endReason: end.endReason, matrix, assignments: end.assignments, finalEvalClasses: end.finalEvalClasses,
      globalAccuracyAfterLateUpdates: end.globalAccuracyAfterLateUpdates, lostUpdates: end.lostUpdates,
    };
  }

  /**
   * Exact unlearning of one client, in the middle of a run or after it: everything it contributed
   * leaves the global table (durably, before this resolves), it is told to stop, and the run goes
   * on without it. The other clients get the changed classes with their next table.
   */
  async forget(clientId: string, why: string): Promise<{ version: number; alreadyGone: boolean }> {
    const { state, journal, links } = this.o;
    if (!this.o.clientIds.includes(clientId)) throw new Error(`there is no client "${clientId}" in this run`);
    if (state.hasLeft(clientId)) return { version: state.version, alreadyGone: true };
    const { version } = state.removeClient(clientId);
    this.assignments.forgetClient(clientId);
    await journal.flush();
    this.log(`client ${clientId} ${why}: everything it contributed is unlearned (table version ${version})`);
    const link = links.session(clientId);
    if (link?.connected) link.send('shutdown', { reason: `${why}: everything this client contributed is unlearned` });
    this.toldShutdown.add(clientId);
    this.changed();
    return { version, alreadyGone: false };
  }

  /** Whether a client takes part still (it has not left the run). */
  active(clientId: string): boolean {
    return !this.o.state.hasLeft(clientId);
  }

  /** Clients not yet told that the run is over (they were cut off when it ended). */
  shutdownPending(): number {
    return this.finished ? this.o.clientIds.filter((id) => !this.toldShutdown.has(id)).length : this.o.clientIds.length;
  }

  /** Wakes whatever waits (a report, an update, a connection, a deadline). */
  changed(): void {
    this.progress.emit('change');
  }

  /** Resolves when `done()` holds; on timeout, the error names the clients `missing` picks out. */
  waitFor(done: () => boolean, ms: number, what: string, missing: (clientId: string) => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.failure) finish(this.failure);
        else if (done()) finish();
      };
      const timer = setTimeout(() => {
        const late = this.o.clientIds.filter(missing);
        finish(new Error(`timed out after ${ms} ms waiting for client(s) ${late.join(', ')} ${what}`));
      }, ms);
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        this.progress.off('change', check);
        if (err) reject(err);
        else resolve();
      };
      this.progress.on('change', check);
      check();
    });
  }

  /** Sends only the classes changed since the version the client holds; nothing when it is current. */
  sendTable(link: ClientLink): void {
    this.tables.send(link);
  }

  /** Each client's learning traffic so far (or in saved counts). */
  meterSnapshot(saved?: Record<string, ByteMeterEntries>): Map<string, MissionBytes> {
    return new Map(this.o.clientIds.map((id) => {
      let meter: ByteMeter = this.o.links.meter(id);
      if (saved) (meter = new ByteMeter()).load(saved[id] ?? []);
      return [id, { up: meter.totals('up', isLearningTraffic), down: meter.totals('down', isLearningTraffic) }];
    }));
  }

  log(line: string): void {
    this.o.log?.(line);
  }

  private allConnected(): Promise<void> {
    const { clientIds, links, connectMs } = this.o;
    const connected = (id: string): boolean => links.session(id)?.connected === true || !this.active(id);
    return this.waitFor(() => clientIds.every(connected), connectMs, 'to connect', (id) => !connected(id));
  }

  private onReport(link: ClientLink, report: ReportMessage): void {
    const latest = this.pace.latestReportable();
    if (report.mission > latest) {
      // No client can have been asked for it: a client that numbers missions wrongly learns it here.
      link.sendError('unexpected', `report for mission ${report.mission}, but ${latest < 0 ? 'no mission was' : `missions up to ${latest} were`} handed out (missions are numbered from 0)`);
      return;
    }
    this.embeddingCounts.set(link.clientId!, { computed: report.embeddingsComputed, fromCache: report.embeddingsCached });
    // A report on an earlier mission is late (its mission closed at a deadline): it counts no more.
    if (report.mission !== this.reportsOf) return;
    const counts: ClassCounts = { classIds: unpackU32(report.classIds), correct: unpackU32(report.correct), total: unpackU32(report.total) };
    this.reports[report.phase].set(link.clientId!, counts);
    this.changed();
  }

  private onJoined(link: ClientLink): void {
    this.changed();
    // A client that was cut off when the run ended learns it now, when it comes back.
    if (this.finished) this.shutDown(link.clientId!);
    else this.pace.joined(link);
  }

  /** Tells a connected client that the run is over. */
  private shutDown(clientId: string): void {
    const link = this.o.links.session(clientId);
    if (!link?.connected) return;
    link.send('shutdown', { reason: `run finished: ${this.endReason}` });
    this.toldShutdown.add(clientId);
  }
}
