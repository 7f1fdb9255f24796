import type { AssignedWork } from '../../shared/strategies/strategy.js';
import type { ClassAssignment } from '../schedules/schedule.js';

/**
 * The work each client was handed and has not delivered yet, by (client, mission): an update is
 * taken only for a mission its client was assigned, and only as that mission's work. An entry
 * is settled when its update is applied, so the book holds at most the open missions.
 *
 * @example
 * book.assign('c0', 3, plan, new Set(evalClasses));
 * book.expected('c0', 3); // { mission: 3, counts: Map { 7 => 10 }, total: 10, known }
 * book.settle('c0', 3);
 */
export class AssignmentBook {
  private readonly open = new Map<string, Map<number, AssignedWork>>();

  /** Hands `plan` to a client for `mission` (`known`: the mission's classes, one set shared by its clients); an empty plan asks for no update. */
  assign(clientId: string, mission: number, plan: readonly ClassAssignment[], known: ReadonlySet<number>): void {
    if (plan.length === 0) return;
    const counts = new Map<number, number>();
    let total = 0;
    for (const a of plan) {
      counts.set(a.classId, (counts.get(a.classId) ?? 0) + a.indices.length);
      total += a.indices.length;
    }
    let missions = this.open.get(clientId);
    if (!missions) this.open.set(clientId, (missions = new Map()));
    missions.set(mission, { mission, counts, total, known });
  }

  /** The work a client owes for a mission, or undefined when it was not assigned or is delivered. */
  expected(clientId: string, mission: number): AssignedWork | undefined {
    return this.open.get(clientId)?.get(mission);
  }

  /** The client left the run: it owes nothing. */
  forgetClient(clientId: string): void {
    this.open.delete(clientId);
  }

  /** The mission's update is applied: nothing more is owed for it. */
  settle(clientId: string, mission: number): void {
    const missions = this.open.get(clientId);
    if (!missions) return;
    missions.delete(mission);
    if (missions.size === 0) this.open.delete(clientId);
  }
}
