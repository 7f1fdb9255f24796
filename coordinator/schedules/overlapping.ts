import { SeededRng } from '../../shared/learning/rng.js';
import type { FedReconOptions } from './fed-recon.js';
import { allClients, type ClassAssignment, type MissionSchedule } from './schedule.js';
import { TrainPool } from './train-pool.js';

/**
 * Several clients learn the same class at different times: the field classes are cut, in a
 * seeded order, into blocks of `classesPerClient`; client i learns block t − i·lag (cyclically) in
 * mission t, so each block reaches every client, `lag` missions apart, each time with fresh
 * images. The run ends when the images run out.
 *
 * @example
 * const s = new OverlappingSchedule(labels, fieldClasses, 3, { classesPerClient: 2, shotsPerClass: 5 }, 7, 2);
 * s.next(); // client 0 learns block 0, client 1 block −2, client 2 block −4 (mod the number of blocks)
 */
export class OverlappingSchedule implements MissionSchedule {
  private readonly pool: TrainPool;
  private readonly blocks: number[][];
  private missionIndex = 0;

  constructor(
    trainLabels: ArrayLike<number>,
    fieldClasses: readonly number[],
    readonly clientCount: number,
    readonly options: FedReconOptions,
    seed: number,
    readonly lag: number,
    /** Cut the blocks from the classes in the listed order instead of a seeded shuffle. */
    fixedClassOrder = false,
  ) {
    const rng = new SeededRng(seed).fork('overlapping-schedule');
    this.pool = new TrainPool(trainLabels, fieldClasses, rng);
    const shuffled = rng.shuffle([...fieldClasses]);
    const order = fixedClassOrder ? [...fieldClasses] : shuffled;
    const per = options.classesPerClient;
    this.blocks = Array.from({ length: Math.floor(order.length / per) }, (_, b) => order.slice(b * per, (b + 1) * per));
    if (this.blocks.length === 0) throw new RangeError(`overlapping schedule: ${fieldClasses.length} field classes make no block of ${per}`);
  }

  get missions(): number {
    return this.missionIndex;
  }

  next(participants: readonly number[] = allClients(this.clientCount)): ClassAssignment[][] | undefined {
    const { shotsPerClass } = this.options;
    const draw = this.pool.draw();
    const plan: ClassAssignment[][] = [];
    const n = this.blocks.length;
    for (const client of participants) {
      const block = this.blocks[(((this.missionIndex - client * this.lag) % n) + n) % n]!;
      if (!block.every((c) => draw.has(c, shotsPerClass))) return undefined;
      plan.push(block.map((c) => draw.take(c, shotsPerClass)));
    }
    draw.commit();
    this.missionIndex++;
    return plan;
  }
}
