import type { ImageSet } from '../shared/datasets/labelled-dataset.js';
import { gatherImages } from '../shared/datasets/image-set.js';
import type { SeededRng } from '../shared/learning/rng.js';

export interface EpisodeShape {
  ways: number;
  shots: number;
  queries: number;
}

/** One N-way K-shot episode: support images class by class, then query images class by class. */
export interface Episode {
  /** ways × (shots + queries) images: for each way, its shots then its queries. */
  images: Uint8Array;
  classes: number[];
}

/**
 * Draws few-shot episodes from a pool of images per class: `ways` distinct classes, and for each
 * `shots + queries` distinct images.
 *
 * @example
 * const sampler = new EpisodeSampler([data.train, data.test], baseClasses, { ways: 5, shots: 5, queries: 15 });
 * const episode = sampler.next(rng);
 */
export class EpisodeSampler {
  private readonly pool: { set: ImageSet; index: number }[][];

  constructor(sets: readonly ImageSet[], readonly classes: readonly number[], readonly shape: EpisodeShape) {
    const wanted = new Map(classes.map((c, i) => [c, i]));
    this.pool = classes.map(() => []);
    for (const set of sets) {
      for (let i = 0; i < set.count; i++) {
        const slot = wanted.get(set.labels[i]!);
        if (slot !== undefined) this.pool[slot]!.push({ set, index: i });
      }
    }
    const need = shape.shots + shape.queries;
    const short = classes.filter((_, i) => this.pool[i]!.length < need);
    if (classes.length < shape.ways) {
      throw new RangeError(`${shape.ways}-way episodes need at least ${shape.ways} classes, but only ${classes.length} are available`);
    }
    if (short.length > 0) {
      throw new RangeError(`${shape.shots}-shot ${shape.queries}-query episodes need ${need} images per class; ${short.length} classes have fewer (e.g. class ${short[0]})`);
    }
  }

  next(rng: SeededRng): Episode {
    const { ways, shots, queries } = this.shape;
    const picked = rng.sample(this.classes.length, ways);
    const parts: Uint8Array[] = [];
    for (const slot of picked) {
      const images = this.pool[slot]!;
      for (const k of rng.sample(images.length, shots + queries)) {
        const { set, index } = images[k]!;
        parts.push(gatherImages(set, [index]));
      }
    }
    const size = parts[0]!.length;
    const out = new Uint8Array(parts.length * size);
    parts.forEach((p, i) => out.set(p, i * size));
    return { images: out, classes: picked.map((s) => this.classes[s]!) };
  }
}
