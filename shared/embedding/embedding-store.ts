import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Backbone } from './backbone.js';
import { Embeddings, type EmbeddingStoreStats, type Split } from './embeddings.js';
import type { ImageSet, LabelledDataset } from '../datasets/labelled-dataset.js';

export type { Split, EmbeddingStoreStats };

/** Where embeddings are cached unless told otherwise: $PROTOFED_CACHE or ~/.cache/protofed. */
export function defaultCacheDir(): string {
  return join(process.env.PROTOFED_CACHE ?? join(homedir(), '.cache', 'protofed'), 'embeddings');
}

/**
 * Embeddings of a dataset's images by index, each computed at most once per model: in memory,
 * and on disk when a cache folder is given. The disk key is a hash of the model hash, the
 * dataset's content and the split, so a changed model or changed data never reuses stale
 * vectors. Every process appends to its own shard file, so concurrent client processes never
 * corrupt each other's writes; a shard cut short by a crash loses only its last record.
 *
 * @example
 * const store = new EmbeddingStore(backbone, data, { cacheDir: defaultCacheDir() });
 * const vectors = await store.embed('train', [3, 17, 42]); // 3 × dim floats
 */
export class EmbeddingStore extends Embeddings {
  private readonly shards: Partial<Record<Split, { dir: string; fd?: number }>> = {};

  constructor(backbone: Backbone, data: LabelledDataset, options: { cacheDir?: string | undefined } = {}) {
    super(backbone, data);
    // Pixels cost a copy to "compute"; caching them would only fill the disk.
    if (options.cacheDir && backbone.name !== 'pixels') {
      for (const split of ['train', 'test'] as const) {
        const dir = join(options.cacheDir, cacheKey(backbone, data, split));
        this.shards[split] = { dir };
        this.loadShards(split, dir);
      }
    }
  }

  override close(): void {
    for (const shard of Object.values(this.shards)) {
      if (shard?.fd !== undefined) closeSync(shard.fd);
      if (shard) shard.fd = undefined;
    }
  }

  private loadShards(split: Split, dir: string): void {
    if (!existsSync(dir)) return;
    const record = 4 + this.dim * 4;
    const count = this.set(split).count;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.shard'))) {
      const bytes = readFileSync(join(dir, file));
      const whole = Math.floor(bytes.byteLength / record);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let r = 0; r < whole; r++) {
        const idx = view.getUint32(r * record, true);
        if (idx >= count || this.memory[split].has(idx)) continue;
        const v = new Float32Array(this.dim);
        for (let i = 0; i < this.dim; i++) v[i] = view.getFloat32(r * record + 4 + i * 4, true);
        this.memory[split].set(idx, v);
        this.unservedFromDisk[split].add(idx);
      }
    }
  }

  protected override persist(split: Split, indices: number[], vectors: Float32Array): void {
    const shard = this.shards[split];
    if (!shard) return;
    if (shard.fd === undefined) {
      mkdirSync(shard.dir, { recursive: true });
      shard.fd = openSync(join(shard.dir, `${process.pid}-${randomBytes(4).toString('hex')}.shard`), 'a');
    }
    const record = 4 + this.dim * 4;
    const buf = Buffer.alloc(indices.length * record);
    indices.forEach((idx, r) => {
      buf.writeUInt32LE(idx, r * record);
      for (let i = 0; i < this.dim; i++) buf.writeFloatLE(vectors[r * this.dim + i]!, r * record + 4 + i * 4);
    });
    writeSync(shard.fd, buf);
  }
}

const contentHashes = new WeakMap<ImageSet, string>();

/** Hash of the model (and of the engine, when it changes the float results), the split's pixels and labels, and the split name. */
function cacheKey(backbone: Backbone, data: LabelledDataset, split: Split): string {
  const set = split === 'train' ? data.train : data.test;
  let content = contentHashes.get(set);
  if (!content) {
    content = createHash('sha256')
      .update(`${set.count}:${set.rows}x${set.cols}x${set.channels};`)
      .update(set.images)
      .update(Buffer.from(set.labels.buffer, set.labels.byteOffset, set.labels.byteLength))
      .digest('hex');
    contentHashes.set(set, content);
  }
  const model = backbone.engine ? `${backbone.modelHash}+${backbone.engine}` : backbone.modelHash;
  return createHash('sha256').update(`${model}|${data.name}|${split}|${content}`).digest('hex').slice(0, 32);
}
