import { SeededRng } from '../shared/rng.js';
import type { ClassAssignment, FedReconOptions, MissionSchedule } from './fed-recon-schedule.js';

/**
 * Non-IID label skew (Hsu et al. 2019): every client has its own class distribution drawn from
 * a symmetric Dirichlet(α) over the field classes. In each mission a client draws
 * `classesPerClient` distinct classes by its distribution (among those with images left) and
 * `shotsPerClass` images of each, without replacement from one shared pool. Small α: each client
 * sees a few classes over and over; large α: close to the uniform fed-recon draw.
 *
 * @example
 * const s = new DirichletSchedule(labels, fieldClasses, 5, { classesPerClient: 2, shotsPerClass: 5 }, 7, 0.1);
 */
export class DirichletSchedule implements MissionSchedule {
  private readonly pools = new Map<number, number[]>();
  private readonly rng: SeededRng;
  /** Per client, its probability of each field class (same order as fieldClasses). */
  readonly preferences: Float64Array[];
  private missionIndex = 0;

  constructor(
    trainLabels: ArrayLike<number>,
    readonly fieldClasses: readonly number[],
    readonly clientCount: number,
    readonly options: FedReconOptions,
    seed: number,
    readonly alpha: number,
  ) {
    this.rng = new SeededRng(seed).fork('dirichlet-schedule');
    const field = new Set(fieldClasses);
    for (const c of fieldClasses) this.pools.set(c, []);
    for (let i = 0; i < trainLabels.length; i++) if (field.has(trainLabels[i]!)) this.pools.get(trainLabels[i]!)!.push(i);
    for (const c of fieldClasses) this.rng.shuffle(this.pools.get(c)!);
    this.preferences = Array.from({ length: clientCount }, () => this.rng.dirichlet(alpha, fieldClasses.length));
  }

  get missions(): number {
    return this.missionIndex;
  }

  next(clients = this.clientCount): ClassAssignment[][] | undefined {
    const { classesPerClient, shotsPerClass } = this.options;
    const taken = new Map<number, number>();
    const plan: ClassAssignment[][] = [];
    for (let client = 0; client < clients; client++) {
      const weights = this.preferences[client % this.preferences.length]!;
      const left = (slot: number): boolean => this.pools.get(this.fieldClasses[slot]!)!.length - (taken.get(this.fieldClasses[slot]!) ?? 0) >= shotsPerClass;
      const eligible = this.fieldClasses.map((_, slot) => slot).filter(left);
      if (eligible.length < classesPerClient) return undefined;
      const picks: number[] = [];
      for (let k = 0; k < classesPerClient; k++) {
        const open = eligible.filter((slot) => !picks.includes(slot));
        const total = open.reduce((sum, slot) => sum + weights[slot]!, 0);
        let chosen = open[open.length - 1]!;
        if (total > 0) {
          let r = this.rng.next() * total;
          for (const slot of open) {
            r -= weights[slot]!;
            if (r < 0) {
              chosen = slot;
              break;
            }
          }
        } else {
          // The client's preferred classes are used up: any class with images left will do.
          chosen = open[this.rng.int(open.length)]!;
        }
        picks.push(chosen);
      }
      plan.push(picks.map((slot) => this.fieldClasses[slot]!).sort((a, b) => a - b).map((classId) => {
        const start = taken.get(classId) ?? 0;
        taken.set(classId, start + shotsPerClass);
        return { classId, indices: this.pools.get(classId)!.slice(start, start + shotsPerClass) };
      }));
    }
    for (const [classId, n] of taken) this.pools.get(classId)!.splice(0, n);
    this.missionIndex++;
    return plan;
  }
}
