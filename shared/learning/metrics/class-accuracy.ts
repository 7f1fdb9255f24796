/** Correct and total test predictions per class, from one evaluation. */
export interface ClassCounts {
  classIds: ArrayLike<number>;
  correct: ArrayLike<number>;
  total: ArrayLike<number>;
}

/** Counts correct nearest-prototype predictions per class of the true labels. */
export function countByClass(trueLabels: ArrayLike<number>, predicted: ArrayLike<number>, classIds: readonly number[]): ClassCounts {
  const index = new Map(classIds.map((c, i) => [c, i]));
  const correct = new Uint32Array(classIds.length);
  const total = new Uint32Array(classIds.length);
  for (let i = 0; i < trueLabels.length; i++) {
    const slot = index.get(trueLabels[i]!);
    if (slot === undefined) throw new RangeError(`test label ${trueLabels[i]} is not among the evaluated classes`);
    total[slot]!++;
    if (predicted[i] === trueLabels[i]) correct[slot]!++;
  }
  return { classIds: Uint32Array.from(classIds), correct, total };
}

/**
 * Accuracy over the given classes (all classes in the counts when omitted), weighting every test
 * example equally. NaN when there is no test example.
 */
export function accuracyOf(counts: ClassCounts, only?: ReadonlySet<number>): number {
  let c = 0;
  let t = 0;
  for (let i = 0; i < counts.classIds.length; i++) {
    if (only && !only.has(counts.classIds[i]!)) continue;
    c += counts.correct[i]!;
    t += counts.total[i]!;
  }
  return t === 0 ? NaN : c / t;
}
