import type { PrototypeTable } from './prototype-stats.js';

/** Prototypes packed for fast nearest-mean search. */
export interface PrototypeMatrix {
  classIds: Int32Array;
  /** k × dim class means, row-major. */
  means: Float64Array;
  dim: number;
}

/** Packs the means of a table (classes in ascending id order). */
export function prototypeMatrix(table: PrototypeTable): PrototypeMatrix {
  const ids = table.classIds();
  const means = new Float64Array(ids.length * table.dim);
  ids.forEach((id, r) => means.set(table.prototype(id)!, r * table.dim));
  return { classIds: Int32Array.from(ids), means, dim: table.dim };
}

/**
 * Nearest prototype by squared Euclidean distance, for `rows` embeddings.
 * Ties go to the lower class id. Returns -1 for every row when there are no prototypes.
 */
export function predictNearest(embeddings: Float32Array, rows: number, protos: PrototypeMatrix): Int32Array {
  const { dim, means, classIds } = protos;
  if (embeddings.length !== rows * dim) throw new RangeError(`expected ${rows}×${dim} embedding values, got ${embeddings.length}`);
  const k = classIds.length;
  const out = new Int32Array(rows).fill(-1);
  for (let r = 0; r < rows; r++) {
    const x = r * dim;
    let best = Infinity;
    for (let c = 0; c < k; c++) {
      const m = c * dim;
      let d = 0;
      for (let i = 0; i < dim; i++) {
        const diff = embeddings[x + i]! - means[m + i]!;
        d += diff * diff;
      }
      if (d < best) {
        best = d;
        out[r] = classIds[c]!;
      }
    }
  }
  return out;
}
