import type { Backbone } from './backbone.js';
import { gatherImages } from '../datasets/image-set.js';
import type { ImageSet, LabelledDataset } from '../datasets/labelled-dataset.js';

export type Split = 'train' | 'test';

export interface EmbeddingStoreStats {
  /** Embeddings computed by the backbone in this process. */
  computed: number;
  /** Embeddings served from the disk cache (each counted once). */
  fromCache: number;
}

/**
 * Embeddings of a dataset's images by index, each computed at most once, kept in memory. It
 * touches no file, so a client in a web browser uses it as it is; EmbeddingStore
 * (embedding-store.ts) adds the disk cache.
 *
 * @example
 * const embeddings = new Embeddings(backbone, data);
 * const vectors = await embeddings.embed('train', [3, 17, 42]); // 3 × dim floats
 */
export class Embeddings {
  readonly stats: EmbeddingStoreStats = { computed: 0, fromCache: 0 };
  protected readonly memory: Record<Split, Map<number, Float32Array>> = { train: new Map(), test: new Map() };
  /** Indices loaded from disk and not yet served. */
  protected readonly unservedFromDisk: Record<Split, Set<number>> = { train: new Set(), test: new Set() };

  constructor(readonly backbone: Backbone, readonly data: LabelledDataset) {}

  get dim(): number {
    return this.backbone.dim;
  }

  /**
   * The embeddings of `indices` of one split, row by row. Missing ones are computed by `via`
   * when given (a worker pool of the same model, for bulk work), else by the store's backbone.
   * `tally`, when given, counts this caller's share (several virtual clients share one store).
   */
  async embed(split: Split, indices: ArrayLike<number>, via?: Backbone, tally?: EmbeddingStoreStats): Promise<Float32Array> {
    if (via && via.modelHash !== this.backbone.modelHash) throw new Error(`cannot embed through model ${via.modelHash} into a store of ${this.backbone.modelHash}`);
    const known = this.memory[split];
    const missing: number[] = [];
    const seen = new Set<number>();
    const fromDisk = this.unservedFromDisk[split];
    for (let i = 0; i < indices.length; i++) {
      const idx = indices[i]!;
      if (fromDisk.delete(idx)) {
        this.stats.fromCache++;
        if (tally) tally.fromCache++;
      }
      if (!known.has(idx) && !seen.has(idx)) {
        seen.add(idx);
        missing.push(idx);
      }
    }
    if (missing.length > 0) {
      const set = this.set(split);
      const vectors = await (via ?? this.backbone).embed(gatherImages(set, missing), missing.length);
      this.stats.computed += missing.length;
      if (tally) tally.computed += missing.length;
      missing.forEach((idx, r) => known.set(idx, vectors.slice(r * this.dim, (r + 1) * this.dim)));
      this.persist(split, missing, vectors);
    }
    const out = new Float32Array(indices.length * this.dim);
    for (let i = 0; i < indices.length; i++) out.set(known.get(indices[i]!)!, i * this.dim);
    return out;
  }

  /** Releases what the store holds open (nothing here). */
  close(): void {}

  protected set(split: Split): ImageSet {
    return split === 'train' ? this.data.train : this.data.test;
  }

  /** Called with every batch of newly computed embeddings (a disk cache writes them). */
  protected persist(_split: Split, _indices: number[], _vectors: Float32Array): void {}
}
