import { SeededRng } from '../../shared/learning/rng.js';
import type { FedReconOptions } from './fed-recon.js';
import { allClients, type ClassAssignment, type MissionSchedule } from './schedule.js';
import { TrainPool } from './train-pool.js';

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
  private readonly pool: TrainPool;
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
    this.pool = new TrainPool(trainLabels, fieldClasses, this.rng);
    this.preferences = Array.from({ length: clientCount }, () => this.rng.dirichlet(alpha, fieldClasses.length));
  }

  get missions(): number {
    return this.missionIndex;
  }

  next(participants: readonly number[] = allClients(this.clientCount)): ClassAssignment[][] | undefined {
    const { classesPerClient, shotsPerClass } = this.options;
    const draw = this.pool.draw();
    const plan: ClassAssignment[][] = [];
    for (const client of participants) {
      const weights = this.preferences[client]!;
      const eligible = this.fieldClasses.map((_, slot) => slot).filter((slot) => draw.has(this.fieldClasses[slot]!, shotsPerClass));
      if (eligible.length < classesPerClient) return undefined;
      const picks: number[] = [];
      for (let k = 0; k < classesPerClient; k++) picks.push(this.pick(eligible.filter((slot) => !picks.includes(slot)), weights));
      plan.push(picks.map((slot) => this.fieldClasses[slot]!).sort((a, b) => a - b).map((classId) => draw.take(classId, shotsPerClass)));
    }
    draw.commit();
    this.missionIndex++;
    return plan;
  }

  /** One class slot drawn by the client's weights; uniformly when its preferred classes are used up. */
  private pick(open: number[], weights: Float64Array): number {
    const total = open.reduce((sum, slot) => sum + weights[slot]!, 0);
    if (total <= 0) return open[this.rng.int(open.length)]!;
    let r = this.rng.next() * total;
    for (const slot of open) {
      r -= weights[slot]!;
      if (r < 0) return slot;
    }
    return open[open.length - 1]!;
  }
}
