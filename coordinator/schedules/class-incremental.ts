import { SeededRng } from '../../shared/learning/rng.js';
import type { FedReconOptions } from './fed-recon.js';
import { allClients, type ClassAssignment, type MissionSchedule } from './schedule.js';

/**
 * The class-incremental protocol (Javed & White 2019; Avalanche's split benchmarks): classes
 * arrive in one order, seeded or fixed, and each class is learned exactly once, by one client,
 * from `shotsPerClass` train images. In every mission each client takes the next
 * `classesPerClient` classes of the order. The run ends when the classes run out.
 *
 * @example
 * const s = new ClassIncrementalSchedule(labels, fieldClasses, 1, { classesPerClient: 1, shotsPerClass: 15 }, 7, false);
 * s.next(); // [[{ classId, indices: [15 train images] }]]
 */
export class ClassIncrementalSchedule implements MissionSchedule {
  private readonly order: number[];
  private readonly byClass = new Map<number, number[]>();
  private position = 0;
  private missionIndex = 0;

  constructor(
    trainLabels: ArrayLike<number>,
    fieldClasses: readonly number[],
    readonly clientCount: number,
    readonly options: FedReconOptions,
    seed: number,
    fixedClassOrder: boolean,
  ) {
    const rng = new SeededRng(seed).fork('class-incremental-schedule');
    this.order = fixedClassOrder ? [...fieldClasses] : rng.shuffle([...fieldClasses]);
    const field = new Set(fieldClasses);
    for (let i = 0; i < trainLabels.length; i++) {
      const label = trainLabels[i]!;
      if (!field.has(label)) continue;
      let list = this.byClass.get(label);
      if (!list) this.byClass.set(label, (list = []));
      list.push(i);
    }
    for (const list of this.byClass.values()) rng.shuffle(list);
    // Classes with too few train images cannot be learned at this shot count.
    this.order = this.order.filter((c) => (this.byClass.get(c)?.length ?? 0) >= options.shotsPerClass);
  }

  get missions(): number {
    return this.missionIndex;
  }

  /** The class order this run follows. */
  get classOrder(): readonly number[] {
    return this.order;
  }

  next(participants: readonly number[] = allClients(this.clientCount)): ClassAssignment[][] | undefined {
    const { classesPerClient, shotsPerClass } = this.options;
    if (this.position + classesPerClient * participants.length > this.order.length) return undefined;
    const plan: ClassAssignment[][] = [];
    for (let k = 0; k < participants.length; k++) {
      const classes = this.order.slice(this.position, this.position + classesPerClient);
      this.position += classesPerClient;
      plan.push(classes.map((classId) => ({ classId, indices: this.byClass.get(classId)!.slice(0, shotsPerClass) })));
    }
    this.missionIndex++;
    return plan;
  }
}
