import type { ImageSet } from './labelled-dataset.js';

/** Copies the images at `indices` into one contiguous buffer, in the given order. */
export function gatherImages(set: ImageSet, indices: ArrayLike<number>): Uint8Array {
  const size = set.rows * set.cols * set.channels;
  const out = new Uint8Array(indices.length * size);
  for (let i = 0; i < indices.length; i++) {
    const idx = indices[i]!;
    if (!Number.isInteger(idx) || idx < 0 || idx >= set.count) {
      throw new RangeError(`image index ${idx} is outside the set of ${set.count} images`);
    }
    out.set(set.images.subarray(idx * size, (idx + 1) * size), i * size);
  }
  return out;
}

/** The indices of each label's images, in file order. */
export function indicesByClass(set: ImageSet): Map<number, number[]> {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < set.count; i++) {
    const label = set.labels[i]!;
    let list = byClass.get(label);
    if (!list) byClass.set(label, (list = []));
    list.push(i);
  }
  return byClass;
}
