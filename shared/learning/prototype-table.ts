/**
 * Per-class sufficient statistics: a count and a float64 sum of embeddings.
 * The prototype of a class is `sum / count`. Merging adds statistics, so it is
 * commutative and associative (FederationState unlearns a contribution by adding up the others again).
 */
export interface ClassStats {
  count: number;
  sum: Float64Array;
}

/**
 * A table of class statistics of one fixed embedding dimension.
 *
 * @example
 * const t = new PrototypeTable(64);
 * t.addEmbeddings(3, embeddings, 10); // ten 64-d rows of class 3
 * t.prototype(3); // their mean
 */
export class PrototypeTable {
  private readonly stats = new Map<number, ClassStats>();

  constructor(readonly dim: number) {
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`embedding dim must be a positive integer, got ${dim}`);
  }

  get size(): number {
    return this.stats.size;
  }

  /** Class ids in ascending order. */
  classIds(): number[] {
    return [...this.stats.keys()].sort((a, b) => a - b);
  }

  has(classId: number): boolean {
    return this.stats.has(classId);
  }

  get(classId: number): ClassStats | undefined {
    return this.stats.get(classId);
  }

  /** Adds `rows` embeddings of one class, stored row-major in `embeddings`. */
  addEmbeddings(classId: number, embeddings: ArrayLike<number>, rows: number): void {
    if (embeddings.length !== rows * this.dim) {
      throw new RangeError(`expected ${rows}×${this.dim} values, got ${embeddings.length}`);
    }
    if (rows === 0) return;
    const s = this.entry(classId);
    for (let r = 0; r < rows; r++) {
      const base = r * this.dim;
      for (let i = 0; i < this.dim; i++) s.sum[i]! += embeddings[base + i]!;
    }
    s.count += rows;
  }

  /** Adds `count` examples whose mean is `rows[offset .. offset + dim)` (one row of a decoded update). */
  addScaledRow(classId: number, count: number, rows: Float64Array, offset: number): void {
    if (offset < 0 || offset + this.dim > rows.length) throw new RangeError(`row at ${offset} is outside ${rows.length} values`);
    const s = this.entry(classId);
    const sum = s.sum;
    for (let i = 0; i < sum.length; i++) sum[i]! += count * rows[offset + i]!;
    s.count += count;
  }

  /**
   * The statistics of a class, created empty when missing, for callers that add into the sum
   * themselves (the merge adds codec bytes straight into it); they must keep count and sum in step.
   */
  statsFor(classId: number): ClassStats {
    return this.entry(classId);
  }

  /** Adds a count and a sum. */
  addSum(classId: number, count: number, sum: ArrayLike<number>): void {
    this.checkVector(sum);
    const s = this.entry(classId);
    for (let i = 0; i < this.dim; i++) s.sum[i]! += sum[i]!;
    s.count += count;
  }

  /** Adds every class of `other` to this table. */
  merge(other: PrototypeTable): void {
    this.checkDim(other);
    for (const [id, s] of other.stats) this.addSum(id, s.count, s.sum);
  }

  /** The class mean, or undefined for an unknown class. */
  prototype(classId: number): Float64Array | undefined {
    const s = this.stats.get(classId);
    if (!s) return undefined;
    const out = new Float64Array(this.dim);
    for (let i = 0; i < this.dim; i++) out[i] = s.sum[i]! / s.count;
    return out;
  }

  /** Replaces a class with the given count and mean (used for tables received from a coordinator). */
  setMean(classId: number, count: number, mean: ArrayLike<number>): void {
    this.checkVector(mean);
    const sum = new Float64Array(this.dim);
    for (let i = 0; i < this.dim; i++) sum[i] = count * mean[i]!;
    this.stats.set(classId, { count, sum });
  }

  /** Sets a class's statistics to exactly these (a restored snapshot); the sum is copied. */
  restore(classId: number, count: number, sum: ArrayLike<number>): void {
    this.checkVector(sum);
    this.stats.set(classId, { count, sum: Float64Array.from(sum) });
  }

  clone(): PrototypeTable {
    const copy = new PrototypeTable(this.dim);
    for (const [id, s] of this.stats) copy.stats.set(id, { count: s.count, sum: Float64Array.from(s.sum) });
    return copy;
  }

  delete(classId: number): void {
    this.stats.delete(classId);
  }

  private entry(classId: number): ClassStats {
    let s = this.stats.get(classId);
    if (!s) {
      s = { count: 0, sum: new Float64Array(this.dim) };
      this.stats.set(classId, s);
    }
    return s;
  }

  private checkVector(v: ArrayLike<number>): void {
    if (v.length !== this.dim) throw new RangeError(`expected a ${this.dim}-d vector, got ${v.length}-d`);
  }

  private checkDim(other: PrototypeTable): void {
    if (other.dim !== this.dim) throw new RangeError(`cannot combine a ${other.dim}-d table with a ${this.dim}-d table`);
  }
}
