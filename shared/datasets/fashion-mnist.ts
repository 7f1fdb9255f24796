import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findIdxFiles, loadIdxFolder } from './idx-folder.js';
import { packageRoot, protofedDataDir } from './data-home.js';
import { DataFileError, type LabelledDataset } from './labelled-dataset.js';

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
    const { missing } = findIdxFiles(dir);
    if (missing.length > 0) {
      throw new DataFileError(dir, `Fashion-MNIST data directory is missing: ${missing.join(', ')}`);
    }
    return { dir, kind: 'custom' };
  }

  const systemDir = resolve(FASHION_MNIST_SYSTEM_DIR);
  if (findIdxFiles(systemDir).missing.length === 0) return { dir: systemDir, kind: 'full' };
  const fetched = protofedDataDir('fashion-mnist');
  if (findIdxFiles(fetched).missing.length === 0) return { dir: fetched, kind: 'full' };

  const subsetDir = resolve(fashionMnistSubsetDir());
  const { missing } = findIdxFiles(subsetDir);
  if (missing.length > 0) {
    throw new DataFileError(
      subsetDir,
      `Fashion-MNIST not found: ${systemDir} is incomplete and the embedded subset is missing ${missing.join(', ')}`,
    );
  }
  return { dir: subsetDir, kind: 'embedded-subset' };
}

export function loadFashionMnist(dataDir?: string): FashionMnistDataset {
  const { dir, kind } = locateFashionMnist(dataDir);
  return { ...loadIdxFolder(dir, { name: 'fashion-mnist', classNames: [...FASHION_MNIST_CLASSES] }), kind };
}
