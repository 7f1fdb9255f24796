import type { SeededRng } from '../../shared/learning/rng.js';
import type { ClassAssignment } from './schedule.js';

/**
 * The field classes' train images, shuffled once, drawn without replacement across clients and
 * missions. A mission draws tentatively and commits only when every client got a full share, so
 * a mission is all or nothing.
 *
 * @example
 * const pool = new TrainPool(labels, fieldClasses, rng);
 * const draw = pool.draw();
 * draw.take(3, 5); // five images of class 3
 * draw.commit();
 */
export class TrainPool {
  private readonly pools = new Map<number, number[]>();

  constructor(trainLabels: ArrayLike<number>, fieldClasses: readonly number[], rng: SeededRng) {
    const field = new Set(fieldClasses);
    for (const c of fieldClasses) this.pools.set(c, []);
    for (let i = 0; i < trainLabels.length; i++) {
      const label = trainLabels[i]!;
      if (field.has(label)) this.pools.get(label)!.push(i);
    }
    for (const c of fieldClasses) rng.shuffle(this.pools.get(c)!);
  }

  /** Starts one mission's draw. */
  draw(): PoolDraw {
    return new PoolDraw(this.pools);
  }
}

/** One mission's tentative draw from a TrainPool. */
export class PoolDraw {
  private readonly taken = new Map<number, number>();

  constructor(private readonly pools: Map<number, number[]>) {}

  /** Whether `shots` more images of the class are left in this draw. */
  has(classId: number, shots: number): boolean {
    return (this.pools.get(classId)?.length ?? 0) - (this.taken.get(classId) ?? 0) >= shots;
  }

  /** The next `shots` images of a class (check `has` first). */
  take(classId: number, shots: number): ClassAssignment {
    const start = this.taken.get(classId) ?? 0;
    this.taken.set(classId, start + shots);
    return { classId, indices: this.pools.get(classId)!.slice(start, start + shots) };
  }

  /** Removes everything taken from the pool. */
  commit(): void {
    for (const [classId, n] of this.taken) this.pools.get(classId)!.splice(0, n);
  }
}
