import { PrototypeTable } from '../../shared/learning/prototype-table.js';
import { accuracyOf } from '../../shared/learning/metrics/class-accuracy.js';
import { SeededRng } from '../../shared/learning/rng.js';
import { zeroTally } from '../../shared/protocol/byte-accounting.js';
import { packU32 } from '../../shared/protocol/messages.js';
import type { ClassAssignment } from '../schedules/schedule.js';
import type { ClientLink } from './client-links.js';
import { planHash, type ClientMissionResult, type MissionRecord } from './mission-results.js';
import type { MissionRunner } from './mission-runner.js';
import type { Pace, Round } from './pace.js';

type Phase = 'idle' | 'learning' | 'evaluating';

/**
 * Synchronous federated reconnaissance: each mission hands every participant its assignment,
 * and closes once every participant's delta is merged (at most once) and it has evaluated before
 * the merge; with a deadline, once the deadline has passed and a quorum has. Then every merged
 * client gets the table classes changed since the version it holds and evaluates them. Clients
 * past the deadline owe their update, merged when it comes; the end of the run waits for them (up
 * to drainMs). A client that reconnects in the middle (a replacement process) is brought back in
 * step.
 */
export class SyncMissions implements Pace {
  private readonly participationRng: SeededRng;
  private readonly evaluationRng: SeededRng;
  private mission = -1;
  private phase: Phase = 'idle';
  private participants: string[] = [];
  private plan: ClassAssignment[][] = [];
  /** This mission's clients that evaluate their own table; all when undefined. */
  private evaluated: Set<string> | undefined;
  private merged: string[] = [];
  private evalClasses: number[] = [];
  private newClasses: number[] = [];
  private readonly known = new Set<number>();
  private readonly assignments: ClassAssignment[][][] = [];
  /** Updates owed by clients that missed a deadline, as (client, mission). */
  private owedUpdates: { clientId: string; mission: number }[] = [];
  private endReason: 'mission limit' | 'field data exhausted' = 'mission limit';
  /** The mission `restore` opened ahead of the first `next` (true), or found none left (false). */
  private opened: boolean | undefined;
  /** A resumed run: replacement clients get the table they would hold before the first mission. */
  private resumed = false;

  constructor(private readonly runner: MissionRunner) {
    this.participationRng = new SeededRng(runner.o.seed).fork('participation');
    this.evaluationRng = new SeededRng(runner.o.seed).fork('evaluation-sample');
  }

  /** The schedule and every seeded draw replay the finished missions, which must come out as recorded. */
  restore(records: readonly MissionRecord[]): void {
    const o = this.runner.o;
    const owed = records.at(-1)?.owed ?? [];
    const owedMissions = new Set(owed.map((x) => x.mission));
    const owedWork = new Map<number, { participants: string[]; plan: ClassAssignment[][]; known: Set<number> }>();
    for (const [k, record] of records.entries()) {
      const participants = this.drawParticipants();
      const plan = o.schedule.next(participants.map((id) => o.clientIds.indexOf(id)));
      if (!plan || planHash(plan) !== record.planHash) {
        throw new Error(`cannot resume: mission ${k} does not come out of the schedule as the saved run recorded it (was the scenario, seed or data changed?)`);
      }
      this.drawEvaluated(participants);
      this.assignments.push(plan);
      for (const a of plan.flat()) this.known.add(a.classId);
      if (owedMissions.has(k)) owedWork.set(k, { participants, plan, known: new Set(this.known) });
      this.owedUpdates = record.owed.map((x) => ({ ...x }));
    }
    for (const x of owed) {
      const work = owedWork.get(x.mission)!;
      this.runner.assignments.assign(x.clientId, x.mission, work.plan[work.participants.indexOf(x.clientId)]!, work.known);
    }
    if (records.length > 0 || o.state.version > 0) {
      // The clients of a resumed run may resend their update of the interrupted mission as soon
      // as they are welcomed: it is opened (and its work assigned) before any client can say hello.
      this.resumed = true;
      this.opened = this.open(records.length);
    }
  }

  async next(index: number): Promise<Round | undefined> {
    const { runner } = this;
    const o = runner.o;
    if (this.resumed) {
      this.resumed = false;
      // Replacement clients start empty: each gets the table it would hold, before its next mission.
      for (const id of o.clientIds) {
        const link = o.links.session(id);
        if (link) runner.sendTable(link);
      }
    }
    const opened = this.opened ?? this.open(index);
    this.opened = undefined;
    if (!opened) return undefined;
    const { participants, plan, newClasses } = this;
    const m = this.mission;

    this.phase = 'learning';
    runner.o.onPhase?.(m, 'learning');
    for (const id of participants) this.sendMission(id);
    // A client that left the run is waited for no more.
    const onTime = (id: string): boolean => !runner.active(id) || (this.contributed(id, m) && runner.reports['before-merge'].has(id));
    const needed = Math.ceil(o.quorum * participants.length);
    let pastDeadline = false;
    const deadline = o.deadlineMs === undefined ? undefined : setTimeout(() => {
      pastDeadline = true;
      runner.changed();
    }, o.deadlineMs);
    try {
      await runner.waitFor(
        () => participants.every(onTime) || (pastDeadline && participants.filter(onTime).length >= needed),
        o.phaseMs, `to learn mission ${m}`,
        (id) => participants.includes(id) && !onTime(id),
      );
    } finally {
      clearTimeout(deadline);
    }
    // Clients past the deadline are merged when their updates arrive; this mission goes on without them.
    this.merged = participants.filter((id) => onTime(id) && runner.active(id));
    if (o.strategy.learner === 'coordinator') await this.poolCentrally(m);
    const late = participants.filter((id) => !onTime(id));
    for (const id of late) this.owedUpdates.push({ clientId: id, mission: m });
    return { index, newClasses, evalClasses: this.evalClasses, late, planHash: planHash(plan) };
  }

  /** Draws mission `index`'s participants and plan and assigns their work; false when none is left. */
  private open(index: number): boolean {
    const { runner } = this;
    const o = runner.o;
    if (index >= o.missionLimit) return false;
    const participants = this.drawParticipants();
    const plan = o.schedule.next(participants.map((id) => o.clientIds.indexOf(id)));
    if (!plan) {
      this.endReason = 'field data exhausted';
      return false;
    }
    const m = o.schedule.missions - 1;
    this.mission = m;
    this.assignments.push(plan);
    this.participants = participants;
    this.plan = plan;
    this.newClasses = [...new Set(plan.flat().map((a) => a.classId))].filter((c) => !this.known.has(c)).sort((a, b) => a - b);
    for (const c of this.newClasses) this.known.add(c);
    this.evalClasses = [...this.known].sort((a, b) => a - b);
    runner.reportsOf = m;
    runner.reports['before-merge'].clear();
    runner.reports['after-merge'].clear();
    this.evaluated = this.drawEvaluated(participants);
    if (o.strategy.learner === 'clients') {
      const known = new Set(this.evalClasses);
      for (const [i, id] of participants.entries()) {
        if (!o.journal.delivered(id, m)) runner.assignments.assign(id, m, plan[i]!, known);
      }
    }
    return true;
  }

  sendTables(): void {
    this.phase = 'evaluating';
    this.runner.o.onPhase?.(this.mission, 'evaluating');
    // Clients that sat this mission out get nothing: their table catches up when they next take part.
    for (const id of this.merged) this.sendTableAndEvaluate(id);
  }

  async clientResults(): Promise<ClientMissionResult[]> {
    const { runner } = this;
    const reports = runner.reports;
    const evaluating = this.merged.filter((id) => this.evaluates(id));
    await runner.waitFor(
      () => evaluating.every((id) => reports['after-merge'].has(id)),
      runner.o.phaseMs, `to evaluate mission ${this.mission}`,
      (id) => evaluating.includes(id) && !reports['after-merge'].has(id),
    );
    this.phase = 'idle';
    // Clients outside the evaluation sample have no accuracy (NaN, null in the results).
    return this.merged.map((id) => ({
      clientId: id,
      accuracyBefore: this.evaluates(id) ? accuracyOf(reports['before-merge'].get(id)!) : NaN,
      accuracyAfter: this.evaluates(id) ? accuracyOf(reports['after-merge'].get(id)!) : NaN,
      bytes: { up: zeroTally(), down: zeroTally() },
    }));
  }

  owed(): { clientId: string; mission: number }[] {
    return this.owedUpdates.map((x) => ({ ...x }));
  }

  /**
   * Updates still owed by clients that missed a deadline are waited for (up to drainMs); what
   * never comes (a client that dropped out of the mission) is reported, not waited for forever.
   */
  async finish(): ReturnType<Pace['finish']> {
    const { runner } = this;
    const o = runner.o;
    const came = (x: { clientId: string; mission: number }): boolean => o.journal.delivered(x.clientId, x.mission) || !runner.active(x.clientId);
    try {
      await runner.waitFor(() => this.owedUpdates.every(came), o.drainMs ?? o.phaseMs, 'to deliver late updates', (id) => this.owedUpdates.some((x) => x.clientId === id && !came(x)));
    } catch (err) {
      // A timeout only means that some updates never came; a failure of the run stops it.
      if (runner.failed) throw err;
    }
    const lostUpdates = this.owedUpdates.filter((x) => !came(x) && runner.active(x.clientId));
    const lateMerged = this.owedUpdates.length > 0 ? accuracyOf(await o.evaluator.evaluate(o.state.global, this.evalClasses)) : undefined;
    return { endReason: this.endReason, assignments: this.assignments, finalEvalClasses: this.evalClasses, globalAccuracyAfterLateUpdates: lateMerged, lostUpdates };
  }

  joined(link: ClientLink): void {
    const id = link.clientId!;
    if (this.phase === 'idle' || !this.participants.includes(id)) return;
    if (link.heldVersion < this.runner.o.state.version) this.runner.sendTable(link);
    if (this.phase === 'learning' && (!this.contributed(id, this.mission) || !this.runner.reports['before-merge'].has(id))) this.sendMission(id);
    if (this.phase === 'evaluating' && !this.runner.reports['after-merge'].has(id)) this.sendTableAndEvaluate(id);
  }

  /** Whether a client's update for mission m is applied (or due from no client: the strategy's clients send none). */
  private contributed(clientId: string, m: number): boolean {
    return this.runner.o.strategy.learner !== 'clients' || this.runner.o.journal.delivered(clientId, m);
  }

  /** strategy centralized: the mission's examples, pooled, become one update of the coordinator's own. */
  private async poolCentrally(m: number): Promise<void> {
    const { centralize, state, links } = this.runner.o;
    if (!centralize) throw new Error('the centralized strategy needs the coordinator to embed the pooled data');
    const pooled = new PrototypeTable(state.dim);
    for (const [i, id] of this.participants.entries()) {
      if (!this.merged.includes(id)) continue;
      for (const a of this.plan[i]!) {
        pooled.addEmbeddings(a.classId, await centralize.embed(a.indices), a.indices.length);
        links.meter(id).count('up', 'raw-data', a.indices.length * centralize.bytesPerImage, a.indices.length * centralize.bytesPerImage);
      }
    }
    const classIds = pooled.classIds();
    const means = new Float64Array(classIds.length * state.dim);
    classIds.forEach((id, i) => means.set(pooled.prototype(id)!, i * state.dim));
    state.applyUpdate('centralized', m + 1, { classIds, counts: classIds.map((id) => pooled.get(id)!.count), means, mission: m });
  }

  latestReportable(): number {
    return this.runner.reportsOf;
  }

  private sendMission(clientId: string): void {
    if (!this.runner.active(clientId)) return;
    const i = this.participants.indexOf(clientId);
    this.runner.o.links.session(clientId)?.send('mission', {
      mission: this.mission,
      // A client whose update for this mission is already merged (a replacement process, or a
      // resumed run) must not learn those examples again: it only evaluates.
      assignment: this.runner.o.journal.delivered(clientId, this.mission) || i < 0
        ? []
        : this.plan[i]!.map((a) => ({ classId: a.classId, indices: packU32(a.indices) })),
      // A client outside the evaluation sample is asked to evaluate nothing.
      evalClasses: packU32(this.evaluates(clientId) ? this.evalClasses : []),
    });
  }

  private sendTableAndEvaluate(clientId: string): void {
    const link = this.runner.o.links.session(clientId);
    if (!link) return;
    this.runner.sendTable(link);
    if (this.evaluates(clientId)) link.send('evaluate', { mission: this.mission, evalClasses: packU32(this.evalClasses) });
  }

  /** Whether a client evaluates its own table in this mission (every client without a sample). */
  private evaluates(clientId: string): boolean {
    return this.evaluated === undefined || this.evaluated.has(clientId);
  }

  /** This mission's evaluation sample: a seeded `evaluationSample` of the participants, or all. */
  private drawEvaluated(participants: string[]): Set<string> | undefined {
    const k = this.runner.o.evaluationSample;
    if (k === undefined || k >= participants.length) return undefined;
    return new Set(this.evaluationRng.sample(participants.length, k).map((i) => participants[i]!));
  }

  /** This mission's clients: all of them, or a seeded sample of `participation` of them. */
  private drawParticipants(): string[] {
    const { clientIds, participation } = this.runner.o;
    if (participation >= 1) return [...clientIds];
    const n = Math.max(1, Math.round(participation * clientIds.length));
    return this.participationRng.sample(clientIds.length, n).sort((a, b) => a - b).map((i) => clientIds[i]!);
  }
}
