import { join } from 'node:path';
import { loadIdxImageSet } from './idx.js';
import { DataFileError, type ImageSet, type LabelledDataset } from './labelled-dataset.js';
import { isFile } from './data-folder.js';

/** The four files of an MNIST-style IDX dataset (each plain or gzip). */
export const IDX_FILE_BASES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

type FileKey = keyof typeof IDX_FILE_BASES;


/** The IDX files present in `dir`, and the names of those missing. */
export function findIdxFiles(dir: string): { found: Partial<Record<FileKey, string>>; missing: string[] } {
  const found: Partial<Record<FileKey, string>> = {};
  const missing: string[] = [];
  for (const [key, base] of Object.entries(IDX_FILE_BASES) as [FileKey, string][]) {
    const path = [join(dir, base), join(dir, `${base}.gz`)].find(isFile);
    if (path) found[key] = path;
    else missing.push(`${base}(.gz)`);
  }
  return { found, missing };
}


/**
 * Loads an MNIST-style folder (Fashion-MNIST, MNIST, EMNIST): the train and t10k image and label
 * files. Class names default to the label numbers.
 *
 * @example
 * const mnist = loadIdxFolder('/usr/share/datasets/mnist', { name: 'mnist' });
 */
export function loadIdxFolder(dir: string, options: { name: string; classNames?: string[] }): LabelledDataset {
  const { found, missing } = findIdxFiles(dir);
  if (missing.length > 0) throw new DataFileError(dir, `IDX data folder is missing: ${missing.join(', ')}`);
  const { trainImages, trainLabels, testImages, testLabels } = found as Record<FileKey, string>;
  const train = loadIdxImageSet(trainImages, trainLabels);
  const test = loadIdxImageSet(testImages, testLabels);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new DataFileError(testImages, `image size ${test.rows}x${test.cols} differs from the training images' ${train.rows}x${train.cols} in ${trainImages}`);
  }
  let maxLabel = 0;
  for (const set of [train, test]) for (let i = 0; i < set.count; i++) maxLabel = Math.max(maxLabel, set.labels[i]!);
  const classNames = options.classNames ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  for (const [set, file] of [[train, trainLabels], [test, testLabels]] as [ImageSet, string][]) {
    for (let i = 0; i < set.count; i++) {
      if (set.labels[i]! >= classNames.length) {
        throw new DataFileError(file, `label ${set.labels[i]} at index ${i} is out of range for ${options.name} (0..${classNames.length - 1})`);
      }
    }
  }
  return { name: options.name, source: dir, kind: 'custom', classNames, train, test };
}
