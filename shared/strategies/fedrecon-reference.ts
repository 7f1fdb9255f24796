import type { PrototypeTable } from '../learning/prototype-table.js';
import { encodeDeltaClasses, statisticsStrategy } from './statistics.js';
import type { Strategy } from './strategy.js';

/**
 * The reference code's upload (ml4ai/fed-recon), kept to measure its flaw: the held global
 * prototype blended with the new examples, weighted by their counts, sent with the count of the
 * new examples only; the coordinator then averages it in again, so new data enters twice.
 */
export const fedreconReference: Strategy = {
  ...statisticsStrategy,
  name: 'fedrecon-reference',
  encodeUpdate: (c) => encodeDeltaClasses(c, (classId) => blendForUpload(c.held, c.delta, classId)),
};

/** The held prototype of a class blended with the new examples' mean, weighted by their counts. */
export function blendForUpload(held: PrototypeTable, delta: PrototypeTable, classId: number): Float64Array {
  const h = held.get(classId);
  const fresh = delta.get(classId)!;
  const out = new Float64Array(held.dim);
  const n = h?.count ?? 0;
  for (let i = 0; i < out.length; i++) out[i] = ((h?.sum[i] ?? 0) + fresh.sum[i]!) / (n + fresh.count);
  return out;
}
