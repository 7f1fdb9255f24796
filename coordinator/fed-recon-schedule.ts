import { SeededRng } from '../shared/rng.js';

/** The examples one client learns in one mission: train-set indices per class. */
export interface ClassAssignment {
  classId: number;
  indices: number[];
}

export interface FedReconOptions {
  classesPerClient: number;
  shotsPerClass: number;
}

/** Hands out missions: one list of class assignments per client, until it runs out. */
export interface MissionSchedule {
  /** Missions handed out so far. */
  readonly missions: number;
  /** The next mission's assignment (one entry per taking-part client), or undefined when the data is used up. */
  next(clients?: number): ClassAssignment[][] | undefined;
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
  private readonly pools = new Map<number, number[]>();
  private readonly rng: SeededRng;
  private missionIndex = 0;

  constructor(
    trainLabels: ArrayLike<number>,
    readonly fieldClasses: readonly number[],
    readonly clientCount: number,
    readonly options: FedReconOptions,
    seed: number,
  ) {
    this.rng = new SeededRng(seed).fork('fed-recon-schedule');
    const field = new Set(fieldClasses);
    for (const c of fieldClasses) this.pools.set(c, []);
    for (let i = 0; i < trainLabels.length; i++) {
      const label = trainLabels[i]!;
      if (field.has(label)) this.pools.get(label)!.push(i);
    }
    for (const c of fieldClasses) this.rng.shuffle(this.pools.get(c)!);
  }

  /** The number of missions handed out so far. */
  get missions(): number {
    return this.missionIndex;
  }

  /**
   * The next mission's assignment, one entry per client, or undefined when some client could
   * not be given a full mission (the field pool is used up). A mission is all or nothing.
   */
  next(clients = this.clientCount): ClassAssignment[][] | undefined {
    const { classesPerClient, shotsPerClass } = this.options;
    const taken = new Map<number, number>();
    const plan: ClassAssignment[][] = [];
    for (let client = 0; client < clients; client++) {
      const eligible = this.fieldClasses.filter(
        (c) => this.pools.get(c)!.length - (taken.get(c) ?? 0) >= shotsPerClass,
      );
      if (eligible.length < classesPerClient) return undefined;
      const picks = this.rng.sample(eligible.length, classesPerClient).map((i) => eligible[i]!);
      picks.sort((a, b) => a - b);
      plan.push(
        picks.map((classId) => {
          const start = taken.get(classId) ?? 0;
          taken.set(classId, start + shotsPerClass);
          return { classId, indices: this.pools.get(classId)!.slice(start, start + shotsPerClass) };
        }),
      );
    }
    for (const [classId, n] of taken) this.pools.get(classId)!.splice(0, n);
    this.missionIndex++;
    return plan;
  }
}
