import { accuracyOf } from '../../shared/learning/metrics/class-accuracy.js';
import { zeroTally } from '../../shared/protocol/byte-accounting.js';
import { packU32 } from '../../shared/protocol/messages.js';
import type { ClassAssignment } from '../schedules/schedule.js';
import type { ClientLink } from './client-links.js';
import { planHash, type ClientMissionResult, type MissionRecord } from './mission-results.js';
import type { MissionRunner } from './mission-runner.js';
import type { Pace, Round } from './pace.js';

/**
 * Asynchronous federated reconnaissance: each client gets its next mission as soon as its last
 * update is merged, with no barrier between clients; the coordinator merges on arrival, and a
 * round ends every `everyMs` or every `everyUpdates` merged updates with a broadcast of the
 * changed classes to every client and an evaluation of the global table (one record per
 * broadcast). At the end every client gets the final table and evaluates it.
 */
export class AsyncMerging implements Pace {
  private readonly rounds: ClassAssignment[][][] = [];
  private readonly knownBy: number[][] = [];
  private readonly knownSets: Set<number>[] = [];
  private readonly hash: string;
  private readonly index: Map<string, number>;
  private readonly recorded = new Set<number>();
  private lastVersion = -1;
  private sinceBroadcast = 0;
  private learning = true;
  private started = false;

  constructor(private readonly runner: MissionRunner, private readonly cadence: { everyMs?: number | undefined; everyUpdates?: number | undefined }) {
    const o = runner.o;
    while (this.rounds.length < o.missionLimit) {
      const plan = o.schedule.next();
      if (!plan) break;
      this.rounds.push(plan);
    }
    const seen = new Set<number>();
    for (const plan of this.rounds) {
      for (const a of plan.flat()) seen.add(a.classId);
      this.knownBy.push([...seen].sort((a, b) => a - b));
    }
    this.hash = planHash(this.rounds.flat());
    this.index = new Map(o.clientIds.map((id, i) => [id, i]));
  }

  /** The broadcasts so far; each client goes on after the last mission it has a merged update of. */
  restore(records: readonly MissionRecord[]): void {
    for (const record of records) {
      if (record.planHash !== this.hash) throw new Error('cannot resume: the schedule does not come out as the saved run recorded it (was the scenario, seed or data changed?)');
      for (const c of record.result.newClasses) this.recorded.add(c);
    }
    // A resumed client may resend its update of the mission it was on as soon as it is welcomed.
    for (const id of this.runner.o.clientIds) this.assign(id, this.runner.o.journal.latestMission(id) + 1);
  }

  /** Keeps every client busy and resolves at the next broadcast: every `everyMs`, or every `everyUpdates` merged updates. */
  async next(index: number): Promise<Round | undefined> {
    const { runner } = this;
    const o = runner.o;
    if (!this.started) {
      this.started = true;
      for (const id of o.clientIds) this.sendNext(id);
    }
    const finished = (id: string): boolean => o.journal.latestMission(id) >= this.rounds.length - 1 || !runner.active(id);
    if (this.learning) {
      let due = false;
      const timer = this.cadence.everyMs === undefined ? undefined : setTimeout(() => {
        due = true;
        runner.changed();
      }, this.cadence.everyMs);
      try {
        await runner.waitFor(
          () => due || o.clientIds.every(finished) || (this.cadence.everyUpdates !== undefined && this.sinceBroadcast >= this.cadence.everyUpdates),
          o.phaseMs * Math.max(1, this.rounds.length), 'to finish their missions', (id) => !finished(id),
        );
      } finally {
        clearTimeout(timer);
      }
      if (o.clientIds.every(finished)) this.learning = false;
    }
    // Nothing new since the last broadcast: wait for more, or stop when everyone is done.
    if (o.state.version === this.lastVersion) return this.learning ? this.next(index) : undefined;
    this.lastVersion = o.state.version;
    this.sinceBroadcast = 0;
    const classes = o.state.global.classIds();
    const fresh = classes.filter((c) => !this.recorded.has(c));
    for (const c of fresh) this.recorded.add(c);
    return { index, newClasses: fresh, evalClasses: classes, late: [], planHash: this.hash };
  }

  sendTables(): void {
    for (const id of this.runner.o.clientIds) {
      const link = this.runner.o.links.session(id);
      if (link) this.runner.sendTable(link);
    }
  }

  async clientResults(): Promise<ClientMissionResult[]> {
    return [];
  }

  owed(): { clientId: string; mission: number }[] {
    return [];
  }

  /** Any mission's work may be out (a client goes on at its own pace); the last report is on the final table, numbered after them. */
  latestReportable(): number {
    return this.rounds.length;
  }

  /** The final table, evaluated by every client. */
  async finish(): ReturnType<Pace['finish']> {
    const { runner } = this;
    const o = runner.o;
    const reports = runner.reports;
    const evalClasses = this.knownBy.at(-1) ?? [];
    runner.reportsOf = this.rounds.length;
    reports['after-merge'].clear();
    const active = o.clientIds.filter((id) => runner.active(id));
    for (const id of active) this.sendTableAndEvaluate(id);
    await runner.waitFor(() => active.every((id) => reports['after-merge'].has(id)), o.phaseMs, 'to evaluate the final table', (id) => active.includes(id) && !reports['after-merge'].has(id));
    const finalClients = active.map((id) => ({
      clientId: id, accuracyBefore: NaN, accuracyAfter: accuracyOf(reports['after-merge'].get(id)!), bytes: { up: zeroTally(), down: zeroTally() },
    }));
    return {
      endReason: this.rounds.length < o.missionLimit ? 'field data exhausted' : 'mission limit',
      assignments: this.rounds, finalEvalClasses: evalClasses, globalAccuracyAfterLateUpdates: undefined, lostUpdates: [], finalClients,
    };
  }

  joined(link: ClientLink): void {
    // Clients that connect before the first round get their work with everyone else's.
    if (!this.started) return;
    this.runner.sendTable(link);
    if (this.learning) this.sendNext(link.clientId!);
    else if (!this.runner.reports['after-merge'].has(link.clientId!)) this.sendTableAndEvaluate(link.clientId!);
  }

  applied(clientId: string): void {
    this.sendNext(clientId);
    this.sinceBroadcast++;
  }

  /** A client's next mission: the one after the last it has a merged update of. */
  private sendNext(id: string): void {
    const k = this.runner.o.journal.latestMission(id) + 1;
    if (k >= this.rounds.length || !this.runner.active(id)) return;
    this.assign(id, k);
    this.runner.o.links.session(id)?.send('mission', {
      mission: k,
      assignment: this.rounds[k]![this.index.get(id)!]!.map((a) => ({ classId: a.classId, indices: packU32(a.indices) })),
      evalClasses: packU32(this.knownBy[k]!),
    });
  }

  /** Books mission k's work for a client (once): its update is checked against it. */
  private assign(id: string, k: number): void {
    const { runner } = this;
    if (k >= this.rounds.length || runner.o.strategy.learner !== 'clients' || !runner.active(id) || runner.assignments.expected(id, k)) return;
    this.knownSets[k] ??= new Set(this.knownBy[k]);
    runner.assignments.assign(id, k, this.rounds[k]![this.index.get(id)!]!, this.knownSets[k]);
  }

  private sendTableAndEvaluate(clientId: string): void {
    const link = this.runner.o.links.session(clientId);
    if (!link) return;
    this.runner.sendTable(link);
    link.send('evaluate', { mission: this.rounds.length, evalClasses: packU32(this.knownBy.at(-1) ?? []) });
  }
}
