import type { ImageSet } from '../shared/datasets/labelled-dataset.js';
import { gatherImages } from '../shared/datasets/image-set.js';

/**
 * All-way nearest-mean accuracy on held-out classes, the measure bench/backbone-quality.ts applies
 * to the field classes: every class's prototype is the mean embedding of its support images, and
 * each query image is classified among all the classes at once. Episode accuracy at 5 or 20 ways
 * saturates near 1 long before this stops improving, so this is what picks the checkpoint.
 *
 * Each class's images are taken from `sets` in order (a dataset's train split, then its test
 * split); the last quarter (at least one) are the queries, so on a glyph set the queries are
 * exactly the test split, as on the field classes.
 *
 * @example
 * const v = new AllWayValidation([data.train, data.test], validationClasses);
 * const accuracy = await v.accuracy((images, n) => embed(images, n));
 */
export class AllWayValidation {
  /** Support images, then query images, class by class within each. */
  readonly images: Uint8Array;
  readonly supportCount: number[];
  readonly queryCount: number[];
  readonly count: number;

  constructor(sets: readonly ImageSet[], readonly classes: readonly number[]) {
    const wanted = new Map(classes.map((c, i) => [c, i]));
    const pool: { set: ImageSet; index: number }[][] = classes.map(() => []);
    for (const set of sets) {
      for (let i = 0; i < set.count; i++) {
        const slot = wanted.get(set.labels[i]!);
        if (slot !== undefined) pool[slot]!.push({ set, index: i });
      }
    }
    const few = classes.filter((_, i) => pool[i]!.length < 2);
    if (few.length > 0) throw new RangeError(`all-way validation needs 2 images per class or more; class ${few[0]} has ${pool[classes.indexOf(few[0]!)]!.length}`);
    this.queryCount = pool.map((p) => Math.max(1, Math.round(p.length / 4)));
    this.supportCount = pool.map((p, i) => p.length - this.queryCount[i]!);
    const support = pool.flatMap((p, i) => p.slice(0, this.supportCount[i]));
    const query = pool.flatMap((p, i) => p.slice(this.supportCount[i]));
    const ordered = [...support, ...query];
    this.count = ordered.length;
    const size = sets[0]!.rows * sets[0]!.cols * sets[0]!.channels;
    this.images = new Uint8Array(this.count * size);
    ordered.forEach(({ set, index }, k) => this.images.set(gatherImages(set, [index]), k * size));
  }

  /**
   * The fraction of queries whose nearest prototype (squared Euclidean) is their own class.
   * `embed` maps `n` images (uint8, in order) to n × dim embeddings.
   */
  async accuracy(embed: (images: Uint8Array, n: number) => Promise<Float32Array>): Promise<number> {
    const vectors = await embed(this.images, this.count);
    const dim = vectors.length / this.count;
    const k = this.classes.length;
    const protos = new Float64Array(k * dim);
    let row = 0;
    for (let c = 0; c < k; c++) {
      const n = this.supportCount[c]!;
      for (let r = 0; r < n; r++, row++) {
        for (let j = 0; j < dim; j++) protos[c * dim + j]! += vectors[row * dim + j]! / n;
      }
    }
    const norms = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += protos[c * dim + j]! ** 2;
      norms[c] = s;
    }
    let correct = 0;
    let queries = 0;
    for (let c = 0; c < k; c++) {
      for (let q = 0; q < this.queryCount[c]!; q++, row++, queries++) {
        // argmin ‖x − p‖² = argmin ‖p‖² − 2 x·p
        let best = -1;
        let bestScore = Infinity;
        for (let p = 0; p < k; p++) {
          let dot = 0;
          for (let j = 0; j < dim; j++) dot += vectors[row * dim + j]! * protos[p * dim + j]!;
          const score = norms[p]! - 2 * dot;
          if (score < bestScore) {
            bestScore = score;
            best = p;
          }
        }
        if (best === c) correct++;
      }
    }
    return correct / queries;
  }
}
