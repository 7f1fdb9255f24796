import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ByteMeter, addTally, zeroTally, type ByteMeterEntries, type ByteTally } from '../../shared/protocol/byte-accounting.js';
import type { CodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import { AccuracyMatrix } from '../../shared/learning/metrics/accuracy-matrix.js';
import { PrototypeTable } from '../../shared/learning/prototype-table.js';
import { accuracyOf, type ClassCounts } from '../../shared/learning/metrics/class-accuracy.js';
import {
  isLearningTraffic, packU32, unpackU32, type CoordinatorToClient, type Outgoing, type ReportMessage,
} from '../../shared/protocol/messages.js';
import type { HeldOutEvaluator } from '../../shared/learning/held-out-evaluator.js';
import { SeededRng } from '../../shared/learning/rng.js';
import { transferSeconds, type LinkModel } from '../link-model.js';
import type { ClientLink, ClientLinks } from './client-links.js';
import type { ClassAssignment, MissionSchedule } from '../schedules/schedule.js';
import type { FederationState } from './federation-state.js';
import type { DownlinkHistory } from './downlink-history.js';
import type { Strategy } from '../../shared/strategies/strategy.js';
import type { RunJournal } from './run-journal.js';
import { tableMessage } from './table-message.js';
import { UpdateIntake } from './update-intake.js';

export interface MissionBytes {
  up: ByteTally;
  down: ByteTally;
}

export interface ClientMissionResult {
  clientId: string;
  accuracyBefore: number;
  accuracyAfter: number;
  bytes: MissionBytes;
}

export interface MissionResult {
  mission: number;
  classesKnown: number;
  newClasses: number[];
  globalAccuracy: number;
  meanClientAccuracyBefore: number;
  meanClientAccuracyAfter: number;
  tableVersion: number;
  /** All clients together, this mission: the learning traffic (evaluation reports are counted apart, in the summary). */
  bytes: MissionBytes;
  clients: ClientMissionResult[];
  /** Taking-part clients whose update missed the deadline (merged later). */
  late: string[];
  /**
   * With a link model: the simulated seconds this mission's traffic takes, for the slowest client
   * (clients transfer in parallel). Learning traffic only.
   */
  simulatedTransferSeconds?: number;
  wallMs: number;
}

/** What the journal keeps of a finished mission: enough to report it, and to go on from the next one. */
export interface MissionRecord {
  result: MissionResult;
  /** This mission's row of the accuracy matrix: [group, accuracy]. */
  matrixRow: [number, number][];
  /** SHA-256 of the mission's assignment, to check that a resumed schedule replays it. */
  planHash: string;
  /** Updates owed (past a deadline and not yet come) at the end of this mission. */
  owed: { clientId: string; mission: number }[];
  /** Each client's byte counts at the end of this mission. */
  meters: Record<string, ByteMeterEntries>;
}

export interface RunOutcome {
  missions: MissionResult[];
  /** Why the mission loop stopped. */
  endReason: 'mission limit' | 'field data exhausted';
  matrix: AccuracyMatrix;
  /** assignments[mission][client] */
  assignments: ClassAssignment[][][];
  finalEvalClasses: number[];
  /** The global accuracy once the late updates of the last missions were merged (when there were any). */
  globalAccuracyAfterLateUpdates: number | undefined;
  /** Owed updates that never came before the end (clients that dropped out of a mission). */
  lostUpdates: { clientId: string; mission: number }[];
}

export interface MissionRunnerOptions {
  /** The clients, through whatever transport carries them. */
  links: ClientLinks;
  state: FederationState;
  /**
   * The state's durable journal: updates are acked once it holds them, each finished mission is
   * recorded in it, and a run whose journal already holds missions goes on after the last of them.
   */
  journal: RunJournal<MissionRecord>;
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
  log?: (line: string) => void;
}

type Phase = 'idle' | 'learning' | 'evaluating';

/**
 * The synchronous federated-reconnaissance loop. For each mission: hand out assignments; wait
 * until every client's delta is applied (at most once) and it has evaluated before the merge;
 * send each client the table classes changed since the version it holds; evaluate the global
 * table; wait for every client's evaluation after the merge.
 * A client that reconnects in the middle (a replacement process) is brought back in step.
 */
export class MissionRunner {
  private readonly progress = new EventEmitter();
  private failure: Error | undefined;
  private mission = -1;
  private phase: Phase = 'idle';
  private finished = false;
  private participants: string[] = [];
  private readonly participationRng: SeededRng;
  private readonly evaluationRng: SeededRng;
  /** This mission's clients that evaluate their own table; all when undefined. */
  private evaluated: Set<string> | undefined;
  private missionMessages = new Map<string, { classId: number; indices: Uint8Array }[]>();
  private evalClasses: number[] = [];
  /** Updates owed by clients that missed a deadline, as (client, mission). */
  private owed: { clientId: string; mission: number }[] = [];
  /** Latest embedding counts each client reported (a replacement process starts again from 0). */
  readonly embeddingCounts = new Map<string, { computed: number; fromCache: number }>();
  private readonly reports = { 'before-merge': new Map<string, ClassCounts>(), 'after-merge': new Map<string, ClassCounts>() };
  private onAsyncUpdate: ((clientId: string, mission: number) => void) | undefined;
  private tableCache: { version: number; byFrom: Map<number, Outgoing<CoordinatorToClient['table']>> } = { version: -1, byFrom: new Map() };
  private asyncJoin: ((session: ClientLink) => void) | undefined;
  private endReason = '';
  private readonly toldShutdown = new Set<string>();
  /** What the clients hold, for a `delta+` uplink. */
  private readonly history: DownlinkHistory | undefined;
  private readonly intake: UpdateIntake;

  constructor(private readonly o: MissionRunnerOptions) {
    this.progress.setMaxListeners(0);
    this.participationRng = new SeededRng(o.seed).fork('participation');
    this.evaluationRng = new SeededRng(o.seed).fork('evaluation-sample');
    this.history = o.journal.history;
    const intake = new UpdateIntake(o.state, o.uplink.codec, this.history, o.journal);
    this.intake = intake;
    intake.on('applied', (clientId, update) => {
      this.progress.emit('change');
      this.onAsyncUpdate?.(clientId, update.mission);
    });
    intake.on('failed', (err) => this.fail(new Error(`cannot make the state durable: ${err.message}`)));
    o.links.on('update', (session, update) => intake.take(session.clientId!, update, session));
    o.links.on('report', (session, report) => this.onReport(session, report));
    o.links.on('joined', (session) => this.onJoined(session));
    o.links.on('left', (session, reason) => {
      if (!this.finished) this.log(`client ${session.clientId} disconnected (${reason})`);
    });
  }

  /** Stops the run with an error; the pending wait rejects with it. */
  fail(error: Error): void {
    this.failure ??= error;
    this.progress.emit('change');
  }

  async run(): Promise<RunOutcome> {
    if (this.o.async) return this.runAsync(this.o.async);
    const o = this.o;
    await this.allConnected();
    const matrix = new AccuracyMatrix();
    const missions: MissionResult[] = [];
    const assignments: ClassAssignment[][][] = [];
    const known = new Set<number>();
    const groups: number[][] = [];
    let endReason: RunOutcome['endReason'] = 'mission limit';

    // A resumed run: the schedule and every seeded draw replay the finished missions, which must
    // come out as recorded; their results come from the journal.
    for (const [k, record] of o.journal.missions.entries()) {
      const participants = this.drawParticipants();
      const plan = o.schedule.next(participants.map((id) => o.clientIds.indexOf(id)));
      if (!plan || planHash(plan) !== record.planHash) {
        throw new Error(`cannot resume: mission ${k} does not come out of the schedule as the saved run recorded it (was the scenario, seed or data changed?)`);
      }
      this.drawEvaluated(participants);
      assignments.push(plan);
      const newClasses = [...new Set(plan.flat().map((a) => a.classId))].filter((c) => !known.has(c)).sort((a, b) => a - b);
      for (const c of newClasses) known.add(c);
      groups.push(newClasses);
      for (const [j, accuracy] of record.matrixRow) matrix.set(k, j, accuracy);
      missions.push(record.result);
      this.owed = record.owed.map((x) => ({ ...x }));
    }
    if (o.journal.missions.length > 0 || o.state.version > 0) {
      this.log(`resuming after mission ${o.journal.missions.length} of the saved run, at table version ${o.state.version}`);
      // Replacement clients start empty: each gets the table it would hold, before its next mission.
      for (const id of o.clientIds) {
        const session = o.links.session(id);
        if (session) this.sendTable(session);
      }
    }

    while (missions.length < o.missionLimit) {
      const participants = this.drawParticipants();
      const plan = o.schedule.next(participants.map((id) => o.clientIds.indexOf(id)));
      if (!plan) {
        endReason = 'field data exhausted';
        break;
      }
      const started = performance.now();
      const before = this.meterSnapshot();
      this.mission = o.schedule.missions - 1;
      const m = this.mission;
      assignments.push(plan);
      this.participants = participants;
      const newClasses = [...new Set(plan.flat().map((a) => a.classId))].filter((c) => !known.has(c)).sort((a, b) => a - b);
      for (const c of newClasses) known.add(c);
      groups.push(newClasses);
      this.evalClasses = [...known].sort((a, b) => a - b);
      this.missionMessages = new Map(participants.map((id, i) => [id, plan[i]!.map((a) => ({ classId: a.classId, indices: packU32(a.indices) }))]));
      this.reports['before-merge'].clear();
      this.reports['after-merge'].clear();
      this.evaluated = this.drawEvaluated(participants);

      this.phase = 'learning';
      for (const id of participants) this.sendMission(id);
      const onTime = (id: string): boolean => this.contributed(id, m) && this.reports['before-merge'].has(id);
      const needed = Math.ceil(o.quorum * participants.length);
      let pastDeadline = false;
      const deadline = o.deadlineMs === undefined ? undefined : setTimeout(() => {
        pastDeadline = true;
        this.progress.emit('change');
      }, o.deadlineMs);
      try {
        await this.waitFor(
          () => participants.every(onTime) || (pastDeadline && participants.filter(onTime).length >= needed),
          o.phaseMs, `to learn mission ${m}`,
          (id) => participants.includes(id) && !onTime(id),
        );
      } finally {
        clearTimeout(deadline);
      }
      // Clients past the deadline are merged when their updates arrive; this mission goes on without them.
      const merged = participants.filter(onTime);
      if (o.strategy.learner === 'coordinator') await this.poolCentrally(m, participants, plan, merged);
      if (o.strategy.merge === 'round-average') o.state.closeRound();
      const late = participants.filter((id) => !onTime(id));
      for (const id of late) this.owed.push({ clientId: id, mission: m });
      // No client may hold a table version that a crash could take back, nor get a table before its ack.
      await o.journal.flush();
      await this.intake.settled();

      this.phase = 'evaluating';
      // Clients that sat this mission out get nothing: their table catches up when they next take part.
      for (const id of merged) this.sendTableAndEvaluate(id);
      const global = await o.evaluator.evaluate(o.state.global, this.evalClasses);
      const matrixRow: [number, number][] = [];
      groups.forEach((g, j) => {
        if (g.length === 0) return;
        const accuracy = accuracyOf(global, new Set(g));
        matrix.set(m, j, accuracy);
        matrixRow.push([j, accuracy]);
      });
      const evaluating = merged.filter((id) => this.evaluates(id));
      await this.waitFor(
        () => evaluating.every((id) => this.reports['after-merge'].has(id)),
        o.phaseMs, `to evaluate mission ${m}`,
        (id) => evaluating.includes(id) && !this.reports['after-merge'].has(id),
      );
      this.phase = 'idle';

      const after = this.meterSnapshot();
      // Clients outside the evaluation sample have no accuracy (NaN, null in the results).
      const clients = merged.map((id) => ({
        clientId: id,
        accuracyBefore: this.evaluates(id) ? accuracyOf(this.reports['before-merge'].get(id)!) : NaN,
        accuracyAfter: this.evaluates(id) ? accuracyOf(this.reports['after-merge'].get(id)!) : NaN,
        bytes: diffBytes(before.get(id), after.get(id)!),
      }));
      const result: MissionResult = {
        mission: m,
        classesKnown: known.size,
        newClasses,
        globalAccuracy: accuracyOf(global),
        meanClientAccuracyBefore: mean(clients.filter((c) => this.evaluates(c.clientId)).map((c) => c.accuracyBefore)),
        meanClientAccuracyAfter: mean(clients.filter((c) => this.evaluates(c.clientId)).map((c) => c.accuracyAfter)),
        tableVersion: o.state.version,
        bytes: sumBytes(o.clientIds.map((id) => diffBytes(before.get(id), after.get(id)!))),
        clients,
        late,
        wallMs: performance.now() - started,
      };
      if (o.link) {
        const link = o.link;
        result.simulatedTransferSeconds = Math.max(0, ...o.clientIds.map((id) => {
          const b = diffBytes(before.get(id), after.get(id)!);
          return transferSeconds(addTally(b.up, b.down), link(id));
        }));
      }
      missions.push(result);
      o.journal.recordMission({
        result, matrixRow, planHash: planHash(plan), owed: this.owed.map((x) => ({ ...x })),
        meters: Object.fromEntries(o.clientIds.map((id) => [id, o.links.meter(id).entries()])),
      });
      await o.journal.flush();
      if ((m + 1) % (o.snapshotEveryMissions ?? 25) === 0) await o.journal.snapshot();
      o.onMission?.(result);
    }
    // Updates still owed by clients that missed a deadline are waited for (up to drainMs); what
    // never comes (a client that dropped out of the mission) is reported, not waited for forever.
    const came = (x: { clientId: string; mission: number }): boolean => o.journal.delivered(x.clientId, x.mission);
    try {
      await this.waitFor(() => this.owed.every(came), o.drainMs ?? o.phaseMs, 'to deliver late updates', (id) => this.owed.some((x) => x.clientId === id && !came(x)));
    } catch (err) {
      if (this.failure) throw err;
    }
    const lostUpdates = this.owed.filter((x) => !came(x));
    const lateMerged = this.owed.length > 0 ? accuracyOf(await o.evaluator.evaluate(o.state.global, this.evalClasses)) : undefined;
    this.finished = true;
    this.endReason = endReason;
    for (const id of o.clientIds) this.shutDown(id);
    return { missions, endReason, matrix, assignments, finalEvalClasses: this.evalClasses, globalAccuracyAfterLateUpdates: lateMerged, lostUpdates };
  }

  private onReport(session: ClientLink, report: ReportMessage): void {
    this.embeddingCounts.set(session.clientId!, { computed: report.embeddingsComputed, fromCache: report.embeddingsCached });
    if (report.mission !== this.mission) return;
    const counts: ClassCounts = { classIds: unpackU32(report.classIds), correct: unpackU32(report.correct), total: unpackU32(report.total) };
    this.reports[report.phase].set(session.clientId!, counts);
    this.progress.emit('change');
  }

  private onJoined(session: ClientLink): void {
    const id = session.clientId!;
    this.progress.emit('change');
    // A client that was cut off when the run ended learns it now, when it comes back.
    if (this.finished) {
      this.shutDown(id);
      return;
    }
    if (this.asyncJoin) {
      this.asyncJoin(session);
      return;
    }
    if (this.phase === 'idle' || !this.participants.includes(id)) return;
    if (session.heldVersion < this.o.state.version) this.sendTable(session);
    if (this.phase === 'learning' && (!this.contributed(id, this.mission) || !this.reports['before-merge'].has(id))) this.sendMission(id);
    if (this.phase === 'evaluating' && !this.reports['after-merge'].has(id)) this.sendTableAndEvaluate(id);
  }

  /**
   * Asynchronous federated reconnaissance: each client gets its next mission as soon as its last
   * update is merged, with no barrier between clients; the coordinator merges on arrival and sends
   * every client the changed classes every `everyMs` or every `everyUpdates` merged updates,
   * evaluating the global table each time (one record per broadcast). At the end every client
   * gets the final table and evaluates it.
   */
  private async runAsync(cadence: { everyMs?: number | undefined; everyUpdates?: number | undefined }): Promise<RunOutcome> {
    const o = this.o;
    await this.allConnected();
    const rounds: ClassAssignment[][][] = [];
    while (rounds.length < o.missionLimit) {
      const plan = o.schedule.next();
      if (!plan) break;
      rounds.push(plan);
    }
    const endReason: RunOutcome['endReason'] = rounds.length < o.missionLimit ? 'field data exhausted' : 'mission limit';
    const knownBy: number[][] = [];
    const seen = new Set<number>();
    for (const plan of rounds) {
      for (const a of plan.flat()) seen.add(a.classId);
      knownBy.push([...seen].sort((a, b) => a - b));
    }
    const matrix = new AccuracyMatrix();
    const records: MissionResult[] = [];
    const groups: number[][] = [];
    const recorded = new Set<number>();
    const roundsHash = planHash(rounds.flat());
    // A resumed run: the broadcasts so far come from the journal; each client goes on after the
    // last mission it has an applied update of.
    for (const [b, record] of o.journal.missions.entries()) {
      if (record.planHash !== roundsHash) throw new Error('cannot resume: the schedule does not come out as the saved run recorded it (was the scenario, seed or data changed?)');
      records.push(record.result);
      groups.push(record.result.newClasses);
      for (const c of record.result.newClasses) recorded.add(c);
      for (const [j, accuracy] of record.matrixRow) matrix.set(b, j, accuracy);
    }
    if (o.journal.missions.length > 0 || o.state.version > 0) {
      this.log(`resuming after ${o.journal.missions.length} broadcasts of the saved run, at table version ${o.state.version}`);
    }
    let snapshot = this.meterSnapshot();
    let lastVersion = -1;
    let sinceBroadcast = 0;
    let queue: Promise<void> = Promise.resolve();
    const index = new Map(o.clientIds.map((id, i) => [id, i]));
    this.participants = [...o.clientIds];
    this.phase = 'learning';

    const sendNext = (id: string): void => {
      const k = o.journal.latestMission(id) + 1;
      if (k >= rounds.length) return;
      o.links.session(id)?.send('mission', {
        mission: k,
        assignment: rounds[k]![index.get(id)!]!.map((a) => ({ classId: a.classId, indices: packU32(a.indices) })),
        evalClasses: packU32(knownBy[k]!),
      });
    };
    const broadcast = (): Promise<void> => (queue = queue.then(async () => {
      if (o.state.version === lastVersion) return;
      await o.journal.flush();
      await this.intake.settled();
      lastVersion = o.state.version;
      sinceBroadcast = 0;
      const started = performance.now();
      for (const id of o.clientIds) {
        const session = o.links.session(id);
        if (session) this.sendTable(session);
      }
      const classes = o.state.global.classIds();
      const fresh = classes.filter((c) => !recorded.has(c));
      for (const c of fresh) recorded.add(c);
      groups.push(fresh);
      const global = await o.evaluator.evaluate(o.state.global, classes);
      const b = records.length;
      const matrixRow: [number, number][] = [];
      groups.forEach((g, j) => {
        if (g.length === 0) return;
        const accuracy = accuracyOf(global, new Set(g));
        matrix.set(b, j, accuracy);
        matrixRow.push([j, accuracy]);
      });
      const after = this.meterSnapshot();
      const result: MissionResult = {
        mission: b, classesKnown: classes.length, newClasses: fresh, globalAccuracy: accuracyOf(global),
        meanClientAccuracyBefore: NaN, meanClientAccuracyAfter: NaN, tableVersion: o.state.version,
        bytes: sumBytes(o.clientIds.map((id) => diffBytes(snapshot.get(id), after.get(id)!))), clients: [], late: [],
        wallMs: performance.now() - started,
      };
      snapshot = after;
      records.push(result);
      o.journal.recordMission({
        result, matrixRow, planHash: roundsHash, owed: [],
        meters: Object.fromEntries(o.clientIds.map((id) => [id, o.links.meter(id).entries()])),
      });
      await o.journal.flush();
      if ((b + 1) % (o.snapshotEveryMissions ?? 25) === 0) await o.journal.snapshot();
      o.onMission?.(result);
    }));
    this.onAsyncUpdate = (id) => {
      sendNext(id);
      sinceBroadcast++;
      if (cadence.everyUpdates !== undefined && sinceBroadcast >= cadence.everyUpdates) void broadcast();
    };
    this.asyncJoin = (session) => {
      this.sendTable(session);
      if (this.phase === 'learning') sendNext(session.clientId!);
      else if (!this.reports['after-merge'].has(session.clientId!)) this.sendTableAndEvaluate(session.clientId!);
    };
    const timer = cadence.everyMs === undefined ? undefined : setInterval(() => void broadcast(), cadence.everyMs);
    try {
      for (const id of o.clientIds) sendNext(id);
      const finished = (id: string): boolean => o.journal.latestMission(id) >= rounds.length - 1;
      await this.waitFor(() => o.clientIds.every(finished), o.phaseMs * Math.max(1, rounds.length), 'to finish their missions', (id) => !finished(id));
    } finally {
      clearInterval(timer);
    }
    await broadcast();
    await queue;

    // The final table, evaluated by every client.
    this.phase = 'evaluating';
    this.mission = rounds.length;
    this.evalClasses = knownBy.at(-1) ?? [];
    this.reports['after-merge'].clear();
    for (const id of o.clientIds) this.sendTableAndEvaluate(id);
    await this.waitFor(() => o.clientIds.every((id) => this.reports['after-merge'].has(id)), o.phaseMs, 'to evaluate the final table', (id) => !this.reports['after-merge'].has(id));
    const last = records.at(-1);
    if (last) {
      last.clients = o.clientIds.map((id) => {
        const counts = this.reports['after-merge'].get(id)!;
        return { clientId: id, accuracyBefore: NaN, accuracyAfter: accuracyOf(counts), bytes: { up: zeroTally(), down: zeroTally() } };
      });
      last.meanClientAccuracyAfter = mean(last.clients.map((c) => c.accuracyAfter));
    }
    this.phase = 'idle';
    this.finished = true;
    this.endReason = endReason;
    for (const id of o.clientIds) this.shutDown(id);
    return { missions: records, endReason, matrix, assignments: rounds, finalEvalClasses: this.evalClasses, globalAccuracyAfterLateUpdates: undefined, lostUpdates: [] };
  }

  private allConnected(): Promise<void> {
    const { clientIds, links, connectMs } = this.o;
    const connected = (id: string): boolean => links.session(id)?.connected === true;
    return this.waitFor(() => clientIds.every(connected), connectMs, 'to connect', (id) => !connected(id));
  }

  /** Whether a client's update for mission m is applied (or due from no client: the strategy's clients send none). */
  private contributed(clientId: string, m: number): boolean {
    return this.o.strategy.learner !== 'clients' || this.o.journal.delivered(clientId, m);
  }

  /** Clients not yet told that the run is over (they were cut off when it ended). */
  shutdownPending(): number {
    return this.finished ? this.o.clientIds.filter((id) => !this.toldShutdown.has(id)).length : this.o.clientIds.length;
  }

  /** Tells a connected client that the run is over. */
  private shutDown(clientId: string): void {
    const session = this.o.links.session(clientId);
    if (!session?.connected) return;
    session.send('shutdown', { reason: `run finished: ${this.endReason}` });
    this.toldShutdown.add(clientId);
  }

  /** strategy centralized: the mission's examples, pooled, become one update of the coordinator's own. */
  private async poolCentrally(m: number, participants: string[], plan: ClassAssignment[][], merged: string[]): Promise<void> {
    const { centralize, state, links } = this.o;
    if (!centralize) throw new Error('the centralized strategy needs the coordinator to embed the pooled data');
    const pooled = new PrototypeTable(state.dim);
    for (const [i, id] of participants.entries()) {
      if (!merged.includes(id)) continue;
      for (const a of plan[i]!) {
        pooled.addEmbeddings(a.classId, await centralize.embed(a.indices), a.indices.length);
        links.meter(id).count('up', 'raw-data', a.indices.length * centralize.bytesPerImage, a.indices.length * centralize.bytesPerImage);
      }
    }
    const classIds = pooled.classIds();
    const means = new Float64Array(classIds.length * state.dim);
    classIds.forEach((id, i) => means.set(pooled.prototype(id)!, i * state.dim));
    state.applyUpdate('centralized', m + 1, { classIds, counts: classIds.map((id) => pooled.get(id)!.count), means, mission: m });
  }

  private sendMission(clientId: string): void {
    this.o.links.session(clientId)?.send('mission', {
      mission: this.mission,
      // A client whose update for this mission is already merged (a replacement process, or a
      // resumed run) must not learn those examples again: it only evaluates.
      assignment: this.o.journal.delivered(clientId, this.mission) ? [] : this.missionMessages.get(clientId) ?? [],
      // A client outside the evaluation sample is asked to evaluate nothing.
      evalClasses: packU32(this.evaluates(clientId) ? this.evalClasses : []),
    });
  }

  private sendTableAndEvaluate(clientId: string): void {
    const session = this.o.links.session(clientId);
    if (!session) return;
    this.sendTable(session);
    if (this.evaluates(clientId)) session.send('evaluate', { mission: this.mission, evalClasses: packU32(this.evalClasses) });
  }

  /** Whether a client evaluates its own table in this mission (every client without a sample). */
  private evaluates(clientId: string): boolean {
    return this.evaluated === undefined || this.evaluated.has(clientId);
  }

  /** This mission's evaluation sample: a seeded `evaluationSample` of the participants, or all. */
  private drawEvaluated(participants: string[]): Set<string> | undefined {
    const k = this.o.evaluationSample;
    if (k === undefined || k >= participants.length) return undefined;
    return new Set(this.evaluationRng.sample(participants.length, k).map((i) => participants[i]!));
  }

  /** Sends only the classes changed since the version the client holds; nothing when it is current. */
  private sendTable(session: ClientLink): void {
    const { state } = this.o;
    if (session.heldVersion >= state.version) return;
    session.send('table', this.tableFrom(session.heldVersion));
    session.heldVersion = state.version;
  }

  /**
   * The table message from a version to the current one. Clients that hold the same version get
   * the same message, so it is built once per (from, to) pair and table version.
   */
  private tableFrom(fromVersion: number): Outgoing<CoordinatorToClient['table']> {
    const { state, downlink } = this.o;
    if (this.tableCache.version !== state.version) this.tableCache = { version: state.version, byFrom: new Map() };
    let message = this.tableCache.byFrom.get(fromVersion);
    if (message) return message;
    message = tableMessage(state, fromVersion, downlink, this.history);
    this.tableCache.byFrom.set(fromVersion, message);
    return message;
  }

  private meterSnapshot(): Map<string, MissionBytes> {
    return new Map(this.o.clientIds.map((id) => {
      const meter: ByteMeter = this.o.links.meter(id);
      return [id, { up: meter.totals('up', isLearningTraffic), down: meter.totals('down', isLearningTraffic) }];
    }));
  }

  /** This mission's clients: all of them, or a seeded sample of `participation` of them. */
  private drawParticipants(): string[] {
    const { clientIds, participation } = this.o;
    if (participation >= 1) return [...clientIds];
    const n = Math.max(1, Math.round(participation * clientIds.length));
    return this.participationRng.sample(clientIds.length, n).sort((a, b) => a - b).map((i) => clientIds[i]!);
  }

  /** Resolves when `done()` holds; on timeout, the error names the clients `missing` picks out. */
  private waitFor(done: () => boolean, ms: number, what: string, missing: (clientId: string) => boolean): Promise<void> {
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

  private log(line: string): void {
    this.o.log?.(line);
  }
}

function diffBytes(before: MissionBytes | undefined, after: MissionBytes): MissionBytes {
  return { up: addTally(after.up, before?.up ?? zeroTally(), -1), down: addTally(after.down, before?.down ?? zeroTally(), -1) };
}

function sumBytes(list: MissionBytes[]): MissionBytes {
  return list.reduce((t, b) => ({ up: addTally(t.up, b.up), down: addTally(t.down, b.down) }), { up: zeroTally(), down: zeroTally() });
}

function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** SHA-256 of a mission's assignment (class ids and train indices per client, in order). */
function planHash(plan: ClassAssignment[][]): string {
  return createHash('sha256').update(JSON.stringify(plan)).digest('hex');
}
