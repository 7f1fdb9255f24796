import { indicesByClass } from '../datasets/image-set.js';
import type { EmbeddingStore, EmbeddingStoreStats } from '../embedding/embedding-store.js';
import type { EvaluationMemo } from './evaluation-memo.js';
import { countByClass, type ClassCounts } from './metrics/class-accuracy.js';
import { predictNearestOnTensors, prototypeMatrix } from './nearest-prototype.js';
import { headRowsOf, predictLinearOnTensors } from './linear-head.js';
import { PrototypeTable } from './prototype-table.js';

/**
 * Nearest-prototype evaluation on held-out test images, embedded through the store (so each
 * is computed at most once).
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
    private readonly store: EmbeddingStore,
    perClass?: number,
    private readonly tally?: EmbeddingStoreStats,
    private readonly memo?: EvaluationMemo,
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
   * Classifies the test images of `classIds` by the nearest prototype among all classes of
   * `table`; a table one wider than the embeddings is a linear head (weights then bias per class,
   * the fedavg-head baseline) and classifies by the highest score instead.
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
    const predicted = table.dim === dim
      ? await predictNearestOnTensors(queries, rows, prototypeMatrix(table))
      : await predictLinearOnTensors(queries, rows, headRowsOf(table), dim);
    return countByClass(labels, predicted, classIds);
  }
}
