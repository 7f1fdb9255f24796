import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { findCifarDir, locateCifar, readCifarLabels, type CifarVariant } from './cifar.js';
import { packageRoot, protofedDataDir } from './data-home.js';
import { findIdxFiles, IDX_FILE_BASES } from './idx-folder.js';
import { isImagePack, readImagePack } from './image-pack.js';
import { FASHION_MNIST_SYSTEM_DIR, fashionMnistSubsetDir, locateFashionMnist } from './fashion-mnist.js';
import { isGzip, readIdxFile } from './idx.js';
import { readImageFile } from './image-decode.js';
import { hasCsvSplits, scanImageFolder } from './image-folder.js';
import { DataFileError } from './labelled-dataset.js';
import { OMNIGLOT_DEFAULT_TRAIN_PER_CLASS, isOmniglotRoot, scanOmniglot } from './omniglot.js';
import { isFile, isDir } from './data-folder.js';

export type DatasetFormat = 'idx' | 'image-pack' | 'omniglot' | 'cifar10' | 'cifar100' | 'image-folder' | 'image-folder-csv';

/** A summary of a dataset folder, as `protofed data info` prints it. */
export interface DatasetInfo {
  format: DatasetFormat;
  /** The folder the data files are in (may be a sub-folder of the one asked about). */
  source: string;
  classes: number;
  images: number;
  /** Train and test images as protofed's loader splits them with its default options. */
  train: number;
  test: number;
  /** The size of the stored images (before any resizing a loader does). */
  imageSize: { rows: number; cols: number; channels: number };
  imagesPerClass: { min: number; max: number; mean: number };
  /** The splits the data comes in: file or folder names such as 'images_background' or 'test_batch'. */
  splits: string[];
  /** The number of class groups (Omniglot alphabets, CIFAR-100 superclasses), when there are any. */
  groups?: number;
}

/** The four IDX files of an MNIST-style folder, or undefined when any is missing. */
function idxFiles(dir: string): Record<keyof typeof IDX_FILE_BASES, string> | undefined {
  const { found, missing } = findIdxFiles(dir);
  return missing.length === 0 ? (found as Record<keyof typeof IDX_FILE_BASES, string>) : undefined;
}

function cifarVariantIn(dir: string): CifarVariant | undefined {
  return (['cifar10', 'cifar100'] as const).find((variant) => findCifarDir(dir, variant) !== undefined);
}

function hasClassFolders(dir: string): boolean {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return false;
  }
  return entries.some((name) => {
    if (name.startsWith('.') || !isDir(join(dir, name))) return false;
    try {
      return readdirSync(join(dir, name)).some((f) => /\.(png|jpe?g)$/i.test(f));
    } catch {
      return false;
    }
  });
}

/**
 * The layout of a dataset folder, from file and folder names only. Throws a `DataFileError`
 * describing the layouts it knows when none matches.
 *
 * @example
 * detectDatasetFormat('/usr/share/datasets/fashion-mnist'); // 'idx'
 */
export function detectDatasetFormat(dataDir: string): DatasetFormat {
  const dir = resolve(dataDir);
  if (!isDir(dir)) throw new DataFileError(dir, 'dataset folder does not exist or is not a folder');
  if (idxFiles(dir)) return 'idx';
  if (isImagePack(dir)) return 'image-pack';
  const cifar = cifarVariantIn(dir);
  if (cifar) return cifar;
  if (isOmniglotRoot(dir)) return 'omniglot';
  if (hasCsvSplits(dir)) return 'image-folder-csv';
  if (hasClassFolders(dir)) return 'image-folder';
  throw new DataFileError(
    dir,
    'unrecognised dataset layout: expected the four IDX files (train-images-idx3-ubyte … t10k-labels-idx1-ubyte, optionally .gz), ' +
      'CIFAR-10/100 binary files, Omniglot (images_background/, images_evaluation/), train.csv/val.csv/test.csv, ' +
      'or one folder of PNG/JPEG images per class',
  );
}

function perClass(counts: Iterable<number>): { min: number; max: number; mean: number } {
  const list = [...counts];
  if (list.length === 0) return { min: 0, max: 0, mean: 0 };
  const total = list.reduce((a, b) => a + b, 0);
  return { min: Math.min(...list), max: Math.max(...list), mean: total / list.length };
}

/** Reads an IDX file's header (count, rows, cols) without decompressing or reading the whole file. */
function idxImageHeader(path: string): { dims: number[] } {
  let head: Buffer;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new DataFileError(path, `cannot read file (${(err as Error).message})`);
  }
  try {
    head = Buffer.alloc(Math.min(64 * 1024, statSync(path).size));
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  let raw: Uint8Array = head;
  if (isGzip(head)) {
    try {
      raw = gunzipSync(head, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      throw new DataFileError(path, `corrupt gzip data (${(err as Error).message})`);
    }
  }
  if (raw.length < 16) throw new DataFileError(path, `truncated IDX header: ${raw.length} bytes, need 16`);
  if (raw[0] !== 0 || raw[1] !== 0 || raw[2] !== 0x08 || raw[3] !== 3) {
    throw new DataFileError(path, 'not an IDX image file: expected the magic number of 3-dimensional u8 data [count, rows, cols]');
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return { dims: [view.getUint32(4), view.getUint32(8), view.getUint32(12)] };
}

function describeIdx(dir: string): DatasetInfo {
  const files = idxFiles(dir)!;
  const counts = new Map<number, number>();
  let train = 0;
  let test = 0;
  for (const [imagesKey, labelsKey] of [['trainImages', 'trainLabels'], ['testImages', 'testLabels']] as const) {
    const labels = readIdxFile(files[labelsKey]);
    if (labels.dtype !== 'u8' || labels.dims.length !== 1) {
      throw new DataFileError(files[labelsKey], `not an IDX label file: expected 1-dimensional u8 data, got ${labels.dims.length}-dimensional ${labels.dtype}`);
    }
    const n = labels.dims[0]!;
    const header = idxImageHeader(files[imagesKey]);
    if (header.dims[0] !== n) {
      throw new DataFileError(files[labelsKey], `label count ${n} does not match image count ${header.dims[0]} in ${files[imagesKey]}`);
    }
    for (const label of labels.data) counts.set(label, (counts.get(label) ?? 0) + 1);
    if (imagesKey === 'trainImages') train = n;
    else test = n;
  }
  const header = idxImageHeader(files.trainImages);
  return {
    format: 'idx',
    source: dir,
    classes: counts.size,
    images: train + test,
    train,
    test,
    imageSize: { rows: header.dims[1]!, cols: header.dims[2]!, channels: 1 },
    imagesPerClass: perClass(counts.values()),
    splits: ['train', 't10k'],
  };
}

function describeCifar(dir: string, variant: CifarVariant): DatasetInfo {
  const files = locateCifar(dir, variant);
  const classCount = variant === 'cifar10' ? 10 : 100;
  const counts = new Array<number>(classCount).fill(0);
  let train = 0;
  let test = 0;
  for (const file of [...files.train, ...files.test]) {
    const { labels } = readCifarLabels(file, variant);
    for (const label of labels) counts[label]!++;
    if (files.train.includes(file)) train += labels.length;
    else test += labels.length;
  }
  const info: DatasetInfo = {
    format: variant,
    source: files.dir,
    classes: classCount,
    images: train + test,
    train,
    test,
    imageSize: { rows: 32, cols: 32, channels: 3 },
    imagesPerClass: perClass(counts),
    splits: [...files.train, ...files.test].map((f) => basename(f, '.bin')),
  };
  if (variant === 'cifar100') info.groups = 20;
  return info;
}

function describeOmniglot(dir: string): DatasetInfo {
  const layout = scanOmniglot(dir);
  const sizes = layout.classes.map((c) => c.files.length);
  const first = readImageFile(layout.classes[0]!.files[0]!, 1);
  const train = sizes.reduce((n, s) => n + Math.min(s, OMNIGLOT_DEFAULT_TRAIN_PER_CLASS), 0);
  const images = sizes.reduce((a, b) => a + b, 0);
  return {
    format: 'omniglot',
    source: layout.root,
    classes: layout.classes.length,
    images,
    train,
    test: images - train,
    imageSize: { rows: first.height, cols: first.width, channels: 1 },
    imagesPerClass: perClass(sizes),
    splits: [...layout.splits],
    groups: new Set(layout.classes.map((c) => c.alphabet)).size,
  };
}

function describePack(dir: string): DatasetInfo {
  const pack = readImagePack(dir);
  const counts = new Array<number>(pack.classNames.length).fill(0);
  for (const set of [pack.train, pack.test]) for (let i = 0; i < set.count; i++) counts[set.labels[i]!]!++;
  return {
    format: 'image-pack',
    source: dir,
    classes: pack.classNames.length,
    images: pack.train.count + pack.test.count,
    train: pack.train.count,
    test: pack.test.count,
    imageSize: { rows: pack.train.rows, cols: pack.train.cols, channels: pack.train.channels },
    imagesPerClass: perClass(counts),
    splits: ['train', 'test'],
    ...(pack.classGroups ? { groups: new Set(pack.classGroups).size } : {}),
  };
}

function describeImageFolder(dir: string, format: 'image-folder' | 'image-folder-csv'): DatasetInfo {
  const layout = scanImageFolder(dir, { checkFiles: false });
  const counts = new Array<number>(layout.classNames.length).fill(0);
  for (const item of [...layout.train, ...layout.test]) counts[item.classId]!++;
  const firstItem = layout.train[0] ?? layout.test[0];
  let imageSize = { rows: 0, cols: 0, channels: 3 };
  if (firstItem) {
    let file = firstItem.file;
    if (layout.mode === 'csv' && !isFile(file)) {
      // Unchecked CSV rows point into images/; the image may instead be in <label>/.
      file = join(layout.root, layout.classNames[firstItem.classId]!, relative(join(layout.root, 'images'), file));
    }
    const img = readImageFile(file, 3);
    let grey = true;
    for (let i = 0; i < img.pixels.length && grey; i += 3) {
      grey = img.pixels[i] === img.pixels[i + 1] && img.pixels[i] === img.pixels[i + 2];
    }
    imageSize = { rows: img.height, cols: img.width, channels: grey ? 1 : 3 };
  }
  const info: DatasetInfo = {
    format,
    source: layout.root,
    classes: layout.classNames.length,
    images: layout.train.length + layout.test.length,
    train: layout.train.length,
    test: layout.test.length,
    imageSize,
    imagesPerClass: perClass(counts),
    splits: [...layout.csvSplits],
  };
  if (layout.classGroups) info.groups = new Set(layout.classGroups).size;
  return info;
}

/**
 * Detects a dataset folder's format and summarises it, reading headers and labels but decoding at
 * most one image (for the image size of image folders and Omniglot).
 *
 * @example
 * const info = describeDataset('/usr/share/datasets/fashion-mnist');
 * info.format; // 'idx'
 * info.images; // 70000
 */
export function describeDataset(dataDir: string): DatasetInfo {
  const dir = resolve(dataDir);
  const format = detectDatasetFormat(dir);
  switch (format) {
    case 'idx':
      return describeIdx(dir);
    case 'cifar10':
    case 'cifar100':
      return describeCifar(dir, format);
    case 'omniglot':
      return describeOmniglot(dir);
    case 'image-pack':
      return describePack(dir);
    case 'image-folder':
    case 'image-folder-csv':
      return describeImageFolder(dir, format);
  }
}

export type KnownDatasetName = 'glyphs' | 'fashion-mnist' | 'mnist' | 'omniglot' | 'cifar10' | 'cifar100' | 'mini-imagenet';

/** A dataset protofed knows by name, and where it looks for it. */
export interface KnownDataset {
  name: KnownDatasetName;
  title: string;
  /** The layouts that count as this dataset being present. */
  formats: DatasetFormat[];
  /** Whether `protofed data fetch` can download it. */
  fetchable: boolean;
  /** The folders searched, in order, with the kind of copy each would be. */
  locations(env?: NodeJS.ProcessEnv): { dir: string; kind: string }[];
}


export const KNOWN_DATASETS: readonly KnownDataset[] = Object.freeze([
  {
    name: 'glyphs',
    title: 'protofed glyphs: 1,987 character classes of 42 scripts, 28x28 grey (Omniglot-style)',
    formats: ['image-pack', 'omniglot'],
    fetchable: false,
    locations: () => [{ dir: embeddedGlyphsDir(), kind: 'embedded' }],
  },
  {
    name: 'fashion-mnist',
    title: 'Fashion-MNIST (Zalando), 10 classes, 28x28 grey',
    formats: ['idx'],
    fetchable: true,
    locations: (env?: NodeJS.ProcessEnv) => [
      { dir: resolve(FASHION_MNIST_SYSTEM_DIR), kind: 'full' },
      { dir: protofedDataDir('fashion-mnist', env), kind: 'full' },
      { dir: resolve(fashionMnistSubsetDir()), kind: 'embedded-subset' },
    ],
  },
  {
    name: 'mnist',
    title: 'MNIST digits, 10 classes, 28x28 grey',
    formats: ['idx'],
    fetchable: true,
    locations: (env?: NodeJS.ProcessEnv) => [
      { dir: '/usr/share/datasets/mnist', kind: 'full' },
      { dir: protofedDataDir('mnist', env), kind: 'full' },
    ],
  },
  {
    name: 'omniglot',
    title: 'Omniglot, 1623 handwritten characters of 50 alphabets, 105x105',
    formats: ['omniglot'],
    fetchable: true,
    locations: (env?: NodeJS.ProcessEnv) => [{ dir: protofedDataDir('omniglot', env), kind: 'full' }],
  },
  {
    name: 'cifar10',
    title: 'CIFAR-10, 10 classes, 32x32 RGB',
    formats: ['cifar10'],
    fetchable: true,
    locations: (env?: NodeJS.ProcessEnv) => [{ dir: protofedDataDir('cifar10', env), kind: 'full' }],
  },
  {
    name: 'cifar100',
    title: 'CIFAR-100, 100 classes in 20 superclasses, 32x32 RGB',
    formats: ['cifar100'],
    fetchable: true,
    locations: (env?: NodeJS.ProcessEnv) => [{ dir: protofedDataDir('cifar100', env), kind: 'full' }],
  },
  {
    name: 'mini-imagenet',
    title: 'mini-ImageNet, 100 classes of 600 images (CSV splits or class folders)',
    formats: ['image-folder-csv', 'image-folder'],
    fetchable: false,
    locations: (env?: NodeJS.ProcessEnv) => [{ dir: protofedDataDir('mini-imagenet', env), kind: 'full' }],
  },
]);

/** Whether a known dataset was found, and where. */
export interface DatasetListing {
  name: KnownDatasetName;
  title: string;
  present: boolean;
  /** The first folder searched that holds it. */
  dir?: string;
  kind?: string;
  /** Every folder searched, in order. */
  searched: string[];
  fetchable: boolean;
}

function holds(dataset: KnownDataset, dir: string): boolean {
  if (dataset.name === 'fashion-mnist') {
    try {
      locateFashionMnist(dir);
      return true;
    } catch {
      return false;
    }
  }
  try {
    return dataset.formats.includes(detectDatasetFormat(dir));
  } catch {
    return false;
  }
}

/**
 * For each known dataset, whether it is present and in which folder, looking only at file names.
 *
 * @example
 * listDatasets().find((d) => d.name === 'fashion-mnist'); // { present: true, kind: 'full', ... }
 */
export function listDatasets(env: NodeJS.ProcessEnv = process.env): DatasetListing[] {
  return KNOWN_DATASETS.map((dataset) => {
    const locations = dataset.locations(env);
    const hit = locations.find((loc) => holds(dataset, loc.dir));
    const listing: DatasetListing = {
      name: dataset.name,
      title: dataset.title,
      present: hit !== undefined,
      searched: locations.map((l) => l.dir),
      fetchable: dataset.fetchable,
    };
    if (hit) {
      listing.dir = hit.dir;
      listing.kind = hit.kind;
    }
    return listing;
  });
}

/** The glyph set shipped in the repo (see data/glyphs-28/README.md). */
export function embeddedGlyphsDir(): string {
  return join(packageRoot() ?? '.', 'data', 'glyphs-28');
}
