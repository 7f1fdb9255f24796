import { existsSync } from 'node:fs';
import { loadCifar10, loadCifar100 } from './cifar.js';
import { protofedDataDir } from './data-home.js';
import { embeddedGlyphsDir } from './dataset-info.js';
import { fashionMnistSubsetDir, loadFashionMnist } from './fashion-mnist.js';
import { findIdxFiles, loadIdxFolder } from './idx-folder.js';
import { isImagePack, readImagePack } from './image-pack.js';
import { loadImageFolder } from './image-folder.js';
import { DataFileError, type LabelledDataset } from './labelled-dataset.js';
import { isOmniglotRoot, loadOmniglot } from './omniglot.js';
import { DATASET_NAMES, type DatasetName } from './dataset-names.js';

export { DATASET_NAMES, type DatasetName };

/** Which dataset to use, as a scenario names it. `dir: "embedded"` forces the copy shipped in the repo. */
export interface DatasetSpec {
  name: DatasetName;
  dir?: string | undefined;
  /** Resize to size×size (Omniglot layouts and image folders). */
  size?: number | undefined;
  /** Greyscale (1) or RGB (3), for image folders. */
  channels?: 1 | 3 | undefined;
  /** Train images per class (Omniglot layouts); the rest are test images. */
  trainPerClass?: number | undefined;
  /** CIFAR-100 label set. */
  labels?: 'fine' | 'coarse' | undefined;
}

function firstPresent(name: string, candidates: string[], present: (dir: string) => boolean, fetchable: boolean): string {
  const dir = candidates.find((d) => existsSync(d) && present(d));
  if (dir) return dir;
  const how = fetchable ? `run \`protofed data fetch ${name}\` where there is internet, or pass --data DIR` : 'pass --data DIR';
  throw new DataFileError(candidates.join(', '), `${name} was not found in any of these places; ${how}`);
}

/**
 * Loads a named dataset's train and test splits, from `dir` when given, else from where that
 * dataset is usually found (system packages, `protofed data fetch`, the copies in the repo).
 *
 * @example
 * loadDataset({ name: 'glyphs' }); // the 28×28 glyph set shipped in data/glyphs-28
 * loadDataset({ name: 'omniglot', dir: '/data/omniglot', size: 28 });
 */
export function loadDataset(spec: DatasetSpec): LabelledDataset {
  switch (spec.name) {
    case 'fashion-mnist':
      if (spec.dir === 'embedded') return { ...loadFashionMnist(fashionMnistSubsetDir()), kind: 'embedded-subset' };
      return loadFashionMnist(spec.dir);
    case 'mnist': {
      const dir = spec.dir ?? firstPresent('mnist', ['/usr/share/datasets/mnist', protofedDataDir('mnist')], (d) => findIdxFiles(d).missing.length === 0, true);
      return loadIdxFolder(dir, { name: 'mnist' });
    }
    case 'glyphs': {
      const dir = spec.dir === undefined || spec.dir === 'embedded' ? embeddedGlyphsDir() : spec.dir;
      if (isOmniglotRoot(dir)) return { ...loadOmniglot(dir, spec), name: 'glyphs' };
      return { ...readImagePack(dir), kind: dir === embeddedGlyphsDir() ? 'embedded' : 'custom' };
    }
    case 'omniglot': {
      const dir = spec.dir ?? firstPresent('omniglot', [protofedDataDir('omniglot')], (d) => isOmniglotRoot(d) || isImagePack(d), true);
      return isImagePack(dir) ? readImagePack(dir) : loadOmniglot(dir, spec);
    }
    case 'image-folder':
      if (!spec.dir) throw new DataFileError('(none)', 'the image-folder dataset needs dataset.dir (or --data DIR)');
      if (!existsSync(spec.dir)) {
        throw new DataFileError(spec.dir, 'image folder not found; put the images there (one folder per class, or images/ with train.csv/val.csv/test.csv) or pass --data DIR');
      }
      return loadImageFolder(spec.dir, spec);
    case 'cifar10':
      return loadCifar10(spec.dir ?? firstPresent('cifar10', [protofedDataDir('cifar10')], () => true, true));
    case 'cifar100':
      return loadCifar100(spec.dir ?? firstPresent('cifar100', [protofedDataDir('cifar100')], () => true, true), spec);
    default:
      throw new Error(`unknown dataset "${(spec as { name: string }).name}"; known: ${DATASET_NAMES.join(', ')}`);
  }
}
