import type { ImageSet } from './labelled-dataset.js';

/** Half ink: a pixel at or above it counts as part of a stroke. */
export const STROKE_THRESHOLD = 128;

/**
 * The number of 8-connected groups of pixels at or above `threshold` in one grey image of `set`:
 * a glyph's separate strokes (an 'i' has 2). A pen thin enough to break a stroke, or thick enough
 * to merge two, changes it.
 */
export function strokeComponents(set: ImageSet, index: number, threshold = STROKE_THRESHOLD): number {
  if (set.channels !== 1) throw new RangeError(`strokeComponents needs grey images, got ${set.channels} channels`);
  if (!Number.isInteger(index) || index < 0 || index >= set.count) throw new RangeError(`image index ${index} is outside the set of ${set.count} images`);
  const { rows, cols } = set;
  const image = set.images.subarray(index * rows * cols, (index + 1) * rows * cols);
  const seen = new Uint8Array(rows * cols);
  const stack: number[] = [];
  let count = 0;
  for (let start = 0; start < image.length; start++) {
    if (seen[start] || image[start]! < threshold) continue;
    count++;
    seen[start] = 1;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      const y = Math.floor(p / cols);
      const x = p - y * cols;
      for (let yy = Math.max(0, y - 1); yy <= Math.min(rows - 1, y + 1); yy++) {
        for (let xx = Math.max(0, x - 1); xx <= Math.min(cols - 1, x + 1); xx++) {
          const q = yy * cols + xx;
          if (!seen[q] && image[q]! >= threshold) {
            seen[q] = 1;
            stack.push(q);
          }
        }
      }
    }
  }
  return count;
}

/** What drawing the same instances with another pen did to them. */
export interface StrokeChanges {
  /** Mean over instances of the drawn image's ink (sum of grey levels) over the reference's. */
  inkRatio: number;
  /** Per instance: its number of strokes (strokeComponents) differs from the reference's. */
  changed: boolean[];
  /** The share of instances changed. */
  changedShare: number;
}

/**
 * Compares `drawn` with `reference` instance by instance (the same drawers, image i of each): how
 * much ink is left, and which instances a pen broke or merged strokes of. Both sets must hold the
 * same number of grey images of one size.
 *
 * @example
 * const { changedShare } = strokeChanges(fieldTest, thinPenTest); // 0.529 for the glyph field classes two pen steps thinner
 */
export function strokeChanges(reference: ImageSet, drawn: ImageSet, threshold = STROKE_THRESHOLD): StrokeChanges {
  if (reference.count !== drawn.count || reference.rows !== drawn.rows || reference.cols !== drawn.cols || reference.channels !== drawn.channels) {
    throw new RangeError(`strokeChanges compares the same instances: got ${reference.count} images of ${reference.rows}×${reference.cols}×${reference.channels} against ${drawn.count} of ${drawn.rows}×${drawn.cols}×${drawn.channels}`);
  }
  const pixels = reference.rows * reference.cols * reference.channels;
  let ratioSum = 0;
  const changed: boolean[] = [];
  for (let i = 0; i < reference.count; i++) {
    let inkReference = 0;
    let inkDrawn = 0;
    for (let k = i * pixels; k < (i + 1) * pixels; k++) {
      inkReference += reference.images[k]!;
      inkDrawn += drawn.images[k]!;
    }
    ratioSum += inkReference > 0 ? inkDrawn / inkReference : 1;
    changed.push(strokeComponents(reference, i, threshold) !== strokeComponents(drawn, i, threshold));
  }
  const n = Math.max(1, reference.count);
  return { inkRatio: ratioSum / n, changed, changedShare: changed.filter(Boolean).length / n };
}
