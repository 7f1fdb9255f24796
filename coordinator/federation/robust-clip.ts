import type { PrototypeTable } from '../../shared/learning/prototype-table.js';

/** How far an update's class means may reach (L2): from the origin, and from the class's global prototype. */
export interface ClipBounds {
  maxNorm?: number | undefined;
  maxDeviation?: number | undefined;
}

/**
 * Clips each class mean of an update (`means`, one row of `dim` per class) in place: first to
 * `maxDeviation` from the class's current global prototype (when the class is known), then to
 * `maxNorm`. A mean inside the bounds is left as it is, bit for bit. Returns how many were clipped.
 *
 * @example
 * clipMeans([3], means, 64, state.global, { maxNorm: 12 }); // 1 when |means| > 12
 */
export function clipMeans(classIds: ArrayLike<number>, means: Float64Array, dim: number, global: PrototypeTable, bounds: ClipBounds): number {
  let clipped = 0;
  for (let c = 0; c < classIds.length; c++) {
    const at = c * dim;
    let changed = false;
    const prototype = bounds.maxDeviation === undefined ? undefined : global.prototype(classIds[c]!);
    if (prototype) {
      let d2 = 0;
      for (let i = 0; i < dim; i++) d2 += (means[at + i]! - prototype[i]!) ** 2;
      const d = Math.sqrt(d2);
      if (d > bounds.maxDeviation!) {
        const k = bounds.maxDeviation! / d;
        for (let i = 0; i < dim; i++) means[at + i] = prototype[i]! + (means[at + i]! - prototype[i]!) * k;
        changed = true;
      }
    }
    if (bounds.maxNorm !== undefined) {
      let n2 = 0;
      for (let i = 0; i < dim; i++) n2 += means[at + i]! ** 2;
      const n = Math.sqrt(n2);
      if (n > bounds.maxNorm) {
        const k = bounds.maxNorm / n;
        for (let i = 0; i < dim; i++) means[at + i]! *= k;
        changed = true;
      }
    }
    if (changed) clipped++;
  }
  return clipped;
}
