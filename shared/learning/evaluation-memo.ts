import { createHash } from 'node:crypto';
import type { ClassCounts } from './metrics/class-accuracy.js';
import type { PrototypeTable } from './prototype-table.js';

/**
 * Evaluation results by the content of the table evaluated and the classes asked for, so that
 * the same table is never evaluated twice on the same queries: virtual clients that hold
 * identical tables (every client after a merge) share one evaluation. Bounded (least recently
 * used entries go first). Hashing a table is O(classes × dim); evaluating it is O(queries ×
 * classes × dim).
 *
 * @example
 * const memo = new EvaluationMemo();
 * const counts = await memo.get(table, classIds, () => evaluator.evaluate(table, classIds));
 */
export class EvaluationMemo {
  private readonly entries = new Map<string, Promise<ClassCounts>>();
  hits = 0;
  misses = 0;

  constructor(private readonly capacity = 64) {}

  get(table: PrototypeTable, classIds: readonly number[], evaluate: () => Promise<ClassCounts>): Promise<ClassCounts> {
    const key = fingerprint(table, classIds);
    const known = this.entries.get(key);
    if (known) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, known);
      return known;
    }
    this.misses++;
    const result = evaluate();
    this.entries.set(key, result);
    result.catch(() => this.entries.delete(key));
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return result;
  }
}

function fingerprint(table: PrototypeTable, classIds: readonly number[]): string {
  const h = createHash('sha1');
  h.update(Int32Array.from(classIds));
  for (const id of table.classIds()) {
    const s = table.get(id)!;
    h.update(Float64Array.of(id, s.count));
    h.update(s.sum);
  }
  return h.digest('hex');
}
