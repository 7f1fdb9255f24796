import { SeededRng } from '../../shared/learning/rng.js';
import { allClients, type ClassAssignment, type MissionSchedule } from './schedule.js';
import { TrainPool } from './train-pool.js';

export interface FedReconOptions {
  classesPerClient: number;
  shotsPerClass: number;
}

/**
 * The federated-reconnaissance mission schedule (Hendryx et al. 2021): in each mission every
 * client draws `classesPerClient` distinct field classes and `shotsPerClass` train images of each.
 * Images are drawn without replacement from one pool shared by all clients and missions, so a
 * class comes back with fresh images until its pool runs dry. Seeded: the same seed, field
 * classes and client order give the same schedule.
 *
 * @example
 * const s = new FedReconSchedule(trainLabels, [0, 1, 2, 3], 2, { classesPerClient: 2, shotsPerClass: 5 }, 7);
 * s.next(); // [[{ classId, indices }, …] for client 0, … for client 1] or undefined once exhausted
 */
export class FedReconSchedule implements MissionSchedule {
  private readonly pool: TrainPool;
  private readonly rng: SeededRng;
  private missionIndex = 0;

  constructor(
    trainLabels: ArrayLike<number>,
    readonly fieldClasses: readonly number[],
    readonly clientCount: number,
    readonly options: FedReconOptions,
    seed: number,
    /** Take classes in the listed order (a curriculum, cycling) instead of drawing them. */
    readonly fixedClassOrder = false,
  ) {
    this.rng = new SeededRng(seed).fork('fed-recon-schedule');
    this.pool = new TrainPool(trainLabels, fieldClasses, this.rng);
  }

  /** With a fixed class order: where the next client starts taking classes. */
  private cursor = 0;

  /** The number of missions handed out so far. */
  get missions(): number {
    return this.missionIndex;
  }

  /**
   * The next mission's assignment, one entry per taking-part client, or undefined when some
   * client could not be given a full mission (the field pool is used up). All or nothing.
   */
  next(participants: readonly number[] = allClients(this.clientCount)): ClassAssignment[][] | undefined {
    const { classesPerClient, shotsPerClass } = this.options;
    const draw = this.pool.draw();
    const plan: ClassAssignment[][] = [];
    for (let k = 0; k < participants.length; k++) {
      const eligible = this.fieldClasses.filter((c) => draw.has(c, shotsPerClass));
      if (eligible.length < classesPerClient) return undefined;
      const picks = this.fixedClassOrder ? this.inOrder(eligible, classesPerClient) : this.rng.sample(eligible.length, classesPerClient).map((i) => eligible[i]!).sort((a, b) => a - b);
      plan.push(picks.map((classId) => draw.take(classId, shotsPerClass)));
    }
    draw.commit();
    this.missionIndex++;
    return plan;
  }

  /** The next `n` eligible classes from the cursor, in the field order (cycling); the cursor moves past them. */
  private inOrder(eligible: number[], n: number): number[] {
    const position = new Map(this.fieldClasses.map((c, i) => [c, i]));
    const ring = [...eligible].sort((a, b) => {
      const pa = (position.get(a)! - this.cursor + this.fieldClasses.length) % this.fieldClasses.length;
      const pb = (position.get(b)! - this.cursor + this.fieldClasses.length) % this.fieldClasses.length;
      return pa - pb;
    });
    const picks = ring.slice(0, n);
    this.cursor = (position.get(picks.at(-1)!)! + 1) % this.fieldClasses.length;
    return picks.sort((a, b) => a - b);
  }
}
