/**
 * The merge of the reference code (ml4ai/fed-recon), kept only to measure its flaw against ours.
 *
 * A client blends the global prototype it holds with its new examples and uploads the blend
 * with the count of its new examples; the coordinator then averages that blend into the global
 * prototype again, weighted by that count. New data so enters twice: with n examples behind
 * the global prototype and k new ones, their mean gets weight about (k/(n+k))² instead of k/(n+k).
 * Do not use this for learning: protofed sends deltas (client/delta-ledger.ts).
 */
export interface BlendedPrototype {
  count: number;
  mean: Float64Array;
}

/** What a reference client uploads: its held prototype blended with the mean of k new examples. */
export function blendForUpload(held: BlendedPrototype | undefined, newMean: ArrayLike<number>, k: number): BlendedPrototype {
  const mean = Float64Array.from(newMean);
  if (!held) return { count: k, mean };
  const n = held.count;
  for (let i = 0; i < mean.length; i++) mean[i] = (n * held.mean[i]! + k * mean[i]!) / (n + k);
  return { count: k, mean };
}

/** The reference coordinator's count-weighted online average of an uploaded blend. */
export function mergeBlended(global: BlendedPrototype | undefined, upload: BlendedPrototype): BlendedPrototype {
  if (!global) return { count: upload.count, mean: Float64Array.from(upload.mean) };
  const n = global.count;
  const k = upload.count;
  const mean = new Float64Array(global.mean.length);
  for (let i = 0; i < mean.length; i++) mean[i] = (n * global.mean[i]! + k * upload.mean[i]!) / (n + k);
  return { count: n + k, mean };
}
