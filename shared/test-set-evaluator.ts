import type { Backbone } from './backbone.js';
import type { ImageSet } from './datasets/labelled-dataset.js';
import { gatherImages, indicesByClass } from './datasets/image-set.js';
import { countByClass, type ClassCounts } from './metrics/class-accuracy.js';
import { predictNearest, prototypeMatrix } from './nearest-prototype.js';
import { PrototypeTable } from './prototype-stats.js';

/**
 * Nearest-prototype evaluation on held-out test images. Each class's test images are
 * embedded once, on first use, and kept.
 *
 * @example
 * const ev = new TestSetEvaluator(data.test, backbone, 100);
 * const counts = await ev.evaluate(table, [0, 1, 2]);
 */
export class TestSetEvaluator {
  private readonly byClass: Map<number, number[]>;
  private readonly embedded = new Map<number, Float32Array>();

  constructor(private readonly test: ImageSet, private readonly backbone: Backbone, perClass?: number) {
    this.byClass = indicesByClass(test);
    if (perClass !== undefined) for (const [c, list] of this.byClass) this.byClass.set(c, list.slice(0, perClass));
  }

  /** Test images of one class, embedded (cached). */
  async embeddings(classId: number): Promise<Float32Array> {
    let e = this.embedded.get(classId);
    if (!e) {
      const indices = this.byClass.get(classId) ?? [];
      e = await this.backbone.embed(gatherImages(this.test, indices), indices.length);
      this.embedded.set(classId, e);
    }
    return e;
  }

  /** Classifies the test images of `classIds` by the nearest prototype among all classes of `table`. */
  async evaluate(table: PrototypeTable, classIds: readonly number[]): Promise<ClassCounts> {
    const protos = prototypeMatrix(table);
    const labels: number[] = [];
    const predicted: number[] = [];
    for (const c of classIds) {
      const e = await this.embeddings(c);
      const rows = e.length / this.backbone.dim;
      const pred = predictNearest(e, rows, protos);
      for (let r = 0; r < rows; r++) {
        labels.push(c);
        predicted.push(pred[r]!);
      }
    }
    return countByClass(labels, predicted, classIds);
  }
}
