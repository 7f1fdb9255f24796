import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadIdxImageSet } from './idx.js';
import { DataFileError, type ImageSet, type LabelledDataset } from './labelled-dataset.js';

export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

export const FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist/';

export type FashionMnistKind = 'full' | 'embedded-subset' | 'custom';

export interface FashionMnistDataset extends LabelledDataset {
  kind: FashionMnistKind;
}

const FILE_BASES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

type FileKey = keyof typeof FILE_BASES;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function findFiles(dir: string): { found: Partial<Record<FileKey, string>>; missing: string[] } {
  const found: Partial<Record<FileKey, string>> = {};
  const missing: string[] = [];
  for (const [key, base] of Object.entries(FILE_BASES) as [FileKey, string][]) {
    const path = [join(dir, base), join(dir, `${base}.gz`)].find(isFile);
    if (path) found[key] = path;
    else missing.push(`${base}(.gz)`);
  }
  return { found, missing };
}

/** Repo root = nearest ancestor of this module holding package.json (works from source and from dist/). */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function fashionMnistSubsetDir(): string {
  const root = packageRoot();
  if (root === undefined) {
    return fileURLToPath(new URL('../../data/fashion-mnist-subset/', import.meta.url));
  }
  return join(root, 'data', 'fashion-mnist-subset');
}

export function locateFashionMnist(dataDir?: string): { dir: string; kind: FashionMnistKind } {
  if (dataDir !== undefined) {
    const dir = resolve(dataDir);
    if (!existsSync(dir)) {
      throw new DataFileError(dir, 'Fashion-MNIST data directory does not exist');
    }
    const { missing } = findFiles(dir);
    if (missing.length > 0) {
      throw new DataFileError(dir, `Fashion-MNIST data directory is missing: ${missing.join(', ')}`);
    }
    return { dir, kind: 'custom' };
  }

  const systemDir = resolve(FASHION_MNIST_SYSTEM_DIR);
  if (findFiles(systemDir).missing.length === 0) return { dir: systemDir, kind: 'full' };

  const subsetDir = resolve(fashionMnistSubsetDir());
  const { missing } = findFiles(subsetDir);
  if (missing.length > 0) {
    throw new DataFileError(
      subsetDir,
      `Fashion-MNIST not found: ${systemDir} is incomplete and the embedded subset is missing ${missing.join(', ')}`,
    );
  }
  return { dir: subsetDir, kind: 'embedded-subset' };
}

function checkLabels(set: ImageSet, labelsPath: string): void {
  const numClasses = FASHION_MNIST_CLASSES.length;
  for (let i = 0; i < set.count; i++) {
    const label = set.labels[i] ?? 0;
    if (label >= numClasses) {
      throw new DataFileError(
        labelsPath,
        `label ${label} at index ${i} is out of range for Fashion-MNIST (0..${numClasses - 1})`,
      );
    }
  }
}

export function loadFashionMnist(dataDir?: string): FashionMnistDataset {
  const { dir, kind } = locateFashionMnist(dataDir);
  const { found } = findFiles(dir);
  const { trainImages, trainLabels, testImages, testLabels } = found as Record<FileKey, string>;

  const train = loadIdxImageSet(trainImages, trainLabels);
  const test = loadIdxImageSet(testImages, testLabels);
  checkLabels(train, trainLabels);
  checkLabels(test, testLabels);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new DataFileError(
      testImages,
      `image size ${test.rows}x${test.cols} differs from the training images' ${train.rows}x${train.cols} in ${trainImages}`,
    );
  }

  return {
    name: 'fashion-mnist',
    source: dir,
    kind,
    classNames: [...FASHION_MNIST_CLASSES],
    train,
    test,
  };
}
