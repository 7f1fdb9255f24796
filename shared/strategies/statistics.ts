import { predictNearestOnTensors, prototypeMatrix } from '../learning/nearest-prototype.js';
import type { PrototypeTable } from '../learning/prototype-table.js';
import { encodeUpdateClasses } from '../protocol/update-blocks.js';
import type { Strategy, UpdateContext, ViewContext } from './strategy.js';
import { sameClassesAndCounts } from './update-checks.js';

/**
 * What strategies that exchange per-class statistics share: tables as wide as the embeddings,
 * summed by the coordinator, evaluated by the nearest prototype, the client's view being its held
 * table plus its own statistics not in it yet.
 */
export const statisticsStrategy = {
  tableDim: (dim: number): number => dim,
  merge: 'sum',
  learner: 'clients',
  keepsRows: false,
  updateEntries: 'classes',
  population: false,
  judgedBy: 'global table',
  checkUpdate: sameClassesAndCounts,
  view: (c: ViewContext): PrototypeTable => {
    const view = c.held.clone();
    view.merge(c.own());
    return view;
  },
  classify: (table: PrototypeTable, queries: Float32Array, rows: number): Promise<Int32Array> => predictNearestOnTensors(queries, rows, prototypeMatrix(table)),
} as const satisfies Partial<Strategy>;

/** Each class of the delta as the vector `vectorOf` gives, minus the held reference under `delta+`. */
export function encodeDeltaClasses(c: UpdateContext, vectorOf: (classId: number) => Float64Array): Uint8Array {
  return encodeUpdateClasses(c.delta, c.uplink, (classId) => {
    const vector = vectorOf(classId);
    const ref = c.reference(classId);
    if (ref) for (let d = 0; d < vector.length; d++) vector[d]! -= ref[d]!;
    return vector;
  });
}
