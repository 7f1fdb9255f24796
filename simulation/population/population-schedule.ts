import type { ClassAssignment } from '../../coordinator/schedules/schedule.js';
import { SeededRng } from '../../shared/learning/rng.js';

export interface PopulationScheduleOptions {
  /** Clients in the population. */
  population: number;
  /** Clients sampled for each mission. */
  perMission: number;
  classesPerClient: number;
  shotsPerClass: number;
}

/**
 * Missions for a large population: in each mission a seeded sample of `perMission` clients takes
 * part, and each of them draws `classesPerClient` distinct field classes and `shotsPerClass`
 * distinct train images of each. With a million clients the images of a real dataset are shared:
 * draws are independent across clients and missions (with replacement), as when a small dataset
 * is partitioned among very many simulated devices.
 *
 * @example
 * const s = new PopulationSchedule(labels, fieldClasses, { population: 1e6, perMission: 1e4, classesPerClient: 2, shotsPerClass: 5 }, 7);
 * const { participants, assignments } = s.next(0);
 */
export class PopulationSchedule {
  private readonly byClass: number[][];

  constructor(
    trainLabels: ArrayLike<number>,
    private readonly fieldClasses: readonly number[],
    readonly options: PopulationScheduleOptions,
    private readonly seed: number,
  ) {
    const { population, perMission, classesPerClient, shotsPerClass } = options;
    if (!Number.isInteger(population) || population < 1) throw new RangeError(`population must be a positive integer, got ${population}`);
    if (!Number.isInteger(perMission) || perMission < 1 || perMission > population) {
      throw new RangeError(`clients per mission must be an integer in 1..${population} (the population), got ${perMission}`);
    }
    if (classesPerClient > fieldClasses.length) throw new RangeError(`${classesPerClient} classes per client, but only ${fieldClasses.length} field classes`);
    const index = new Map(fieldClasses.map((c, i) => [c, i]));
    this.byClass = fieldClasses.map(() => []);
    for (let i = 0; i < trainLabels.length; i++) {
      const at = index.get(trainLabels[i]!);
      if (at !== undefined) this.byClass[at]!.push(i);
    }
    const short = fieldClasses.filter((_, i) => this.byClass[i]!.length < shotsPerClass);
    if (short.length > 0) throw new RangeError(`field class ${short[0]} has fewer than ${shotsPerClass} train images`);
  }

  /** Mission `m`: the sampled clients in ascending order, and what each of them learns. */
  next(mission: number): { participants: number[]; assignments: ClassAssignment[][] } {
    const rng = new SeededRng(this.seed).fork(`population-mission-${mission}`);
    const { population, perMission, classesPerClient, shotsPerClass } = this.options;
    const participants = rng.sample(population, perMission).sort((a, b) => a - b);
    const assignments = participants.map(() => rng.sample(this.fieldClasses.length, classesPerClient).sort((a, b) => a - b).map((at) => {
      const images = this.byClass[at]!;
      return { classId: this.fieldClasses[at]!, indices: rng.sample(images.length, shotsPerClass).map((i) => images[i]!) };
    }));
    return { participants, assignments };
  }
}
