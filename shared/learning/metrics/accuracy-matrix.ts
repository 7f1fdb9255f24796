/**
 * The continual-learning accuracy matrix `a[k][j]`: accuracy after mission k on class group j
 * (the classes first learned in mission j). Missions and groups are 0-based here.
 * A mission that brought no new class has no group; its column stays empty and is skipped.
 *
 * @example
 * const m = new AccuracyMatrix();
 * m.set(0, 0, 0.9); m.set(1, 0, 0.8); m.set(1, 1, 0.7);
 * m.forgetting(1); // 0.1
 */
export class AccuracyMatrix {
  private readonly rows: (number | undefined)[][] = [];

  set(mission: number, group: number, accuracy: number): void {
    if (group > mission) throw new RangeError(`group ${group} cannot be evaluated after mission ${mission}: it is learned later`);
    (this.rows[mission] ??= [])[group] = accuracy;
  }

  get(mission: number, group: number): number | undefined {
    return this.rows[mission]?.[group];
  }

  /** Missions recorded so far. */
  get missions(): number {
    return this.rows.length;
  }

  /** `a` as a dense array, with null where a group is empty or not yet learned. */
  toJSON(): (number | null)[][] {
    return Array.from({ length: this.rows.length }, (_, k) => {
      const row = this.rows[k] ?? [];
      return Array.from({ length: row.length }, (_, j) => row[j] ?? null);
    });
  }

  /** A_k: mean accuracy over the non-empty groups learned up to mission k. */
  averageAccuracy(k: number): number {
    return mean((this.rows[k] ?? []).filter((a): a is number => a !== undefined));
  }

  /** Average incremental accuracy: the mean of A_k over all recorded missions that have a group. */
  averageIncrementalAccuracy(): number {
    return mean(Array.from({ length: this.rows.length }, (_, k) => this.averageAccuracy(k)).filter((a) => !Number.isNaN(a)));
  }

  /**
   * Forgetting after mission k (Chaudhry et al. 2018, max-based): for each group j < k,
   * the best accuracy it had after any mission l in j..k−1, minus its accuracy now; averaged over those groups.
   */
  forgetting(k: number): number {
    const drops: number[] = [];
    for (let j = 0; j < k; j++) {
      const now = this.get(k, j);
      if (now === undefined) continue;
      let best = -Infinity;
      for (let l = j; l < k; l++) best = Math.max(best, this.get(l, j) ?? -Infinity);
      if (best !== -Infinity) drops.push(best - now);
    }
    return mean(drops);
  }

  /** Backward transfer (Lopez-Paz & Ranzato 2017): mean of a[T−1][i] − a[i][i] over groups i < T−1. */
  backwardTransfer(): number {
    const last = this.rows.length - 1;
    const diffs: number[] = [];
    for (let i = 0; i < last; i++) {
      const end = this.get(last, i);
      const start = this.get(i, i);
      if (end !== undefined && start !== undefined) diffs.push(end - start);
    }
    return mean(diffs);
  }
}

function mean(values: number[]): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}
