// Builds data/fashion-mnist-subset/ from the full Fashion-MNIST in /usr/share/datasets/fashion-mnist/:
// the first 500 training and the first 100 test images of each class, in original file order.
// Usage: npx tsx data/make-fashion-mnist-subset.ts [sourceDir]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { FASHION_MNIST_SYSTEM_DIR, loadFashionMnist } from '../shared/datasets/fashion-mnist.js';
import { encodeIdx } from '../shared/datasets/idx.js';
import type { ImageSet } from '../shared/datasets/labelled-dataset.js';

const TRAIN_PER_CLASS = 500;
const TEST_PER_CLASS = 100;

function firstPerClass(set: ImageSet, perClass: number, numClasses: number): ImageSet {
  const taken = new Array<number>(numClasses).fill(0);
  const keep: number[] = [];
  for (let i = 0; i < set.count; i++) {
    const label = set.labels[i] ?? 0;
    if ((taken[label] ?? 0) < perClass) {
      taken[label] = (taken[label] ?? 0) + 1;
      keep.push(i);
    }
  }
  taken.forEach((n, c) => {
    if (n < perClass) throw new Error(`class ${c} has only ${n} images, need ${perClass}`);
  });

  const pixels = set.rows * set.cols * set.channels;
  const images = new Uint8Array(keep.length * pixels);
  const labels = new Uint8Array(keep.length);
  keep.forEach((src, dst) => {
    images.set(set.images.subarray(src * pixels, (src + 1) * pixels), dst * pixels);
    labels[dst] = set.labels[src] ?? 0;
  });
  return { images, labels, count: keep.length, rows: set.rows, cols: set.cols, channels: set.channels };
}

function writeSet(dir: string, prefix: string, set: ImageSet): void {
  const imagesIdx = encodeIdx({ dtype: 'u8', dims: [set.count, set.rows, set.cols], data: set.images });
  const labelsIdx = encodeIdx({ dtype: 'u8', dims: [set.count], data: Uint8Array.from(set.labels) });
  // gzipSync writes mtime 0, so the output is byte-for-byte reproducible.
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), gzipSync(imagesIdx, { level: 9 }));
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(labelsIdx, { level: 9 }));
}

const sourceDir = process.argv[2] ?? FASHION_MNIST_SYSTEM_DIR;
const outDir = fileURLToPath(new URL('./fashion-mnist-subset/', import.meta.url));
const full = loadFashionMnist(sourceDir);
const numClasses = full.classNames.length;
const train = firstPerClass(full.train, TRAIN_PER_CLASS, numClasses);
const test = firstPerClass(full.test, TEST_PER_CLASS, numClasses);

mkdirSync(outDir, { recursive: true });
writeSet(outDir, 'train', train);
writeSet(outDir, 't10k', test);
console.log(`wrote ${train.count} train + ${test.count} test images from ${full.source} to ${outDir}`);
