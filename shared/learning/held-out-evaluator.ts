import { indicesByClass } from '../datasets/image-set.js';
import type { Embeddings, EmbeddingStoreStats } from '../embedding/embeddings.js';
import type { EvaluationMemo } from './evaluation-memo.js';
import { countByClass, type ClassCounts } from './metrics/class-accuracy.js';
import { predictNearestOnTensors, prototypeMatrix } from './nearest-prototype.js';
import type { PrototypeTable } from './prototype-table.js';

/** How a table classifies query embeddings: one class id per row. */
export type Classifier = (table: PrototypeTable, queries: Float32Array, rows: number, dim: number) => Promise<Int32Array>;

/** The nearest prototype by squared Euclidean distance. */
export const nearestPrototype: Classifier = (table, queries, rows) => predictNearestOnTensors(queries, rows, prototypeMatrix(table));

/**
 * Evaluation on held-out test images, embedded through the store (so each is computed at most
 * once), by the nearest prototype or the classifier of the run's strategy.
 *
 * @example
 * const ev = new HeldOutEvaluator(store, 100);
 * const counts = await ev.evaluate(table, [0, 1, 2]);
 */
export class HeldOutEvaluator {
  private readonly byClass: Map<number, number[]>;

  /**
   * `tally`, when given, counts the embeddings this evaluator computes or reads from the cache;
   * `memo`, when given, shares evaluations of identical tables with other evaluators.
   */
  constructor(
    private readonly store: Embeddings,
    perClass?: number,
    private readonly tally?: EmbeddingStoreStats,
    private readonly memo?: EvaluationMemo,
    private readonly classify: Classifier = nearestPrototype,
  ) {
    this.byClass = indicesByClass(store.data.test);
    if (perClass !== undefined) for (const [c, list] of this.byClass) this.byClass.set(c, list.slice(0, perClass));
  }

  /** The test-image indices evaluated for one class. */
  testIndices(classId: number): number[] {
    return this.byClass.get(classId) ?? [];
  }

  /** Test images of one class, embedded. */
  embeddings(classId: number): Promise<Float32Array> {
    return this.store.embed('test', this.testIndices(classId), undefined, this.tally);
  }

  /**
   * Classifies the test images of `classIds` among all classes of `table`, with this evaluator's
   * classifier (the nearest prototype unless the strategy has its own).
   */
  evaluate(table: PrototypeTable, classIds: readonly number[]): Promise<ClassCounts> {
    return this.memo ? this.memo.get(table, classIds, () => this.compute(table, classIds)) : this.compute(table, classIds);
  }

  private async compute(table: PrototypeTable, classIds: readonly number[]): Promise<ClassCounts> {
    const dim = this.store.dim;
    if (table.dim !== dim && table.dim !== dim + 1) throw new RangeError(`cannot evaluate a ${table.dim}-d table on ${dim}-d embeddings`);
    const parts = await Promise.all(classIds.map((c) => this.embeddings(c)));
    const rows = parts.reduce((n, e) => n + e.length / this.store.dim, 0);
    const queries = new Float32Array(rows * this.store.dim);
    const labels = new Int32Array(rows);
    let at = 0;
    parts.forEach((e, i) => {
      queries.set(e, at * this.store.dim);
      labels.fill(classIds[i]!, at, at + e.length / this.store.dim);
      at += e.length / this.store.dim;
    });
    const predicted = await this.classify(table, queries, rows, dim);
    return countByClass(labels, predicted, classIds);
  }
}
