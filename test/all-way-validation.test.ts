import { describe, expect, it } from 'vitest';
import type { ImageSet } from '../shared/datasets/labelled-dataset.js';
import { AllWayValidation } from '../pretrain/all-way-validation.js';

/** `classes` classes of `per` 2×2 images whose first pixel is the class id and the second the image's rank in its class. */
function tinySet(classes: number, per: number): ImageSet {
  const images = new Uint8Array(classes * per * 4);
  const labels = new Uint16Array(classes * per);
  for (let c = 0; c < classes; c++) {
    for (let k = 0; k < per; k++) {
      labels[c * per + k] = c;
      images[(c * per + k) * 4] = c;
      images[(c * per + k) * 4 + 1] = k;
    }
  }
  return { images, labels, count: labels.length, rows: 2, cols: 2, channels: 1 };
}

describe('all-way validation', () => {
  const set = tinySet(6, 8);
  const v = new AllWayValidation([set], [1, 3, 4, 5]);

  it('takes the last quarter of each class as queries and the rest as support', () => {
    expect(v.supportCount).toEqual([6, 6, 6, 6]);
    expect(v.queryCount).toEqual([2, 2, 2, 2]);
    // Support first (class by class, images in order), then the queries.
    expect(Array.from(v.images.subarray(0, 2))).toEqual([1, 0]);
    expect(Array.from(v.images.subarray(24 * 4, 24 * 4 + 2))).toEqual([1, 6]);
  });

  it('scores 1 for an embedding that separates the classes and chance for one that sees only the rank', async () => {
    const byClass = async (images: Uint8Array, n: number): Promise<Float32Array> => Float32Array.from({ length: n }, (_, i) => images[i * 4]! * 10);
    expect(await v.accuracy(byClass)).toBe(1);
    // Only the image's rank: every prototype is the same, so ties go to the first class (1 of 4 right).
    const byRank = async (images: Uint8Array, n: number): Promise<Float32Array> => Float32Array.from({ length: n }, (_, i) => images[i * 4 + 1]!);
    expect(await v.accuracy(byRank)).toBe(0.25);
  });
});
