import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataFileError, type ImageSet, type LabelledDataset } from './labelled-dataset.js';
import { isFile } from './data-folder.js';

export type CifarVariant = 'cifar10' | 'cifar100';

export interface CifarOptions {
  /** CIFAR-100 only: the 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: 'fine' | 'coarse';
}

/** Where a CIFAR binary release was found and which of its files are there. */
export interface CifarFiles {
  variant: CifarVariant;
  /** The folder holding the .bin files. */
  dir: string;
  train: string[];
  test: string[];
  /** Class-name files present, e.g. batches.meta.txt. */
  meta: Record<string, string>;
}

const IMAGE_BYTES = 32 * 32 * 3;

interface VariantSpec {
  title: string;
  subdir: string;
  train: string[];
  test: string[];
  labelBytes: number;
}

const VARIANTS: Record<CifarVariant, VariantSpec> = {
  cifar10: {
    title: 'CIFAR-10',
    subdir: 'cifar-10-batches-bin',
    train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
    test: ['test_batch.bin'],
    labelBytes: 1,
  },
  cifar100: {
    title: 'CIFAR-100',
    subdir: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    labelBytes: 2,
  },
};

const META_FILES = ['batches.meta.txt', 'fine_label_names.txt', 'coarse_label_names.txt'];

/**
 * Bytes per record: label byte(s) then a 32×32 RGB image stored as three 1024-byte planes.
 *
 * @example
 * cifarRecordSize('cifar10');  // 3073
 * cifarRecordSize('cifar100'); // 3074
 */
export function cifarRecordSize(variant: CifarVariant): number {
  return VARIANTS[variant].labelBytes + IMAGE_BYTES;
}


/**
 * The folder (`dir` itself or the release's sub-folder) holding any of a variant's .bin files.
 *
 * @example
 * findCifarDir('/data/cifar10', 'cifar10'); // '/data/cifar10/cifar-10-batches-bin'
 */
export function findCifarDir(dir: string, variant: CifarVariant): string | undefined {
  const spec = VARIANTS[variant];
  const names = [...spec.train, ...spec.test];
  return [dir, join(dir, spec.subdir)].find((d) => names.some((n) => isFile(join(d, n))));
}

/**
 * Finds a CIFAR-10 or CIFAR-100 binary release in `dir` or in its `cifar-10-batches-bin/` /
 * `cifar-100-binary/` sub-folder. Throws a `DataFileError` listing any missing .bin file.
 *
 * @example
 * locateCifar('/data/cifar10'); // { variant: 'cifar10', dir: '/data/cifar10/cifar-10-batches-bin', ... }
 */
export function locateCifar(dataDir: string, variant?: CifarVariant): CifarFiles {
  const dir = resolve(dataDir);
  let chosen: CifarVariant;
  let found: string | undefined;
  if (variant !== undefined) {
    chosen = variant;
    found = findCifarDir(dir, variant);
  } else {
    const ten = findCifarDir(dir, 'cifar10');
    const hundred = findCifarDir(dir, 'cifar100');
    if (ten !== undefined && hundred !== undefined) {
      throw new DataFileError(dir, `holds both CIFAR-10 (${ten}) and CIFAR-100 (${hundred}) files; point at one of those folders`);
    }
    chosen = hundred !== undefined ? 'cifar100' : 'cifar10';
    found = ten ?? hundred;
  }
  const spec = VARIANTS[chosen];
  if (found === undefined) {
    const wanted = variant === undefined
      ? `${VARIANTS.cifar10.train[0]} … ${VARIANTS.cifar10.test[0]} (CIFAR-10) or ${VARIANTS.cifar100.train[0]}, ${VARIANTS.cifar100.test[0]} (CIFAR-100)`
      : [...spec.train, ...spec.test].join(', ');
    const subdirs = variant === undefined ? `${VARIANTS.cifar10.subdir}/ or ${VARIANTS.cifar100.subdir}/` : `${spec.subdir}/`;
    throw new DataFileError(dir, `no ${variant === undefined ? 'CIFAR' : spec.title} data: expected ${wanted} here or in ${subdirs}`);
  }
  const missing = [...spec.train, ...spec.test].filter((n) => !isFile(join(found, n)));
  if (missing.length > 0) throw new DataFileError(found, `${spec.title} data is missing: ${missing.join(', ')}`);
  const meta: Record<string, string> = {};
  for (const name of META_FILES) if (isFile(join(found, name))) meta[name] = join(found, name);
  return {
    variant: chosen,
    dir: found,
    train: spec.train.map((n) => join(found, n)),
    test: spec.test.map((n) => join(found, n)),
    meta,
  };
}

/**
 * The number of records in a .bin file, from its size; throws when the size is not whole records.
 *
 * @example
 * cifarRecordCount('/data/cifar10/test_batch.bin', 'cifar10'); // 10000
 */
export function cifarRecordCount(file: string, variant: CifarVariant): number {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new DataFileError(file, `cannot read file (${(err as Error).message})`);
  }
  return recordCountOf(file, size, variant);
}

function recordCountOf(file: string, size: number, variant: CifarVariant): number {
  const recordSize = cifarRecordSize(variant);
  if (size === 0) throw new DataFileError(file, 'empty file: no CIFAR records');
  if (size % recordSize !== 0) {
    throw new DataFileError(
      file,
      `truncated or not a ${VARIANTS[variant].title} binary file: ${size} bytes is not a multiple of the ${recordSize}-byte record size ` +
        `(${Math.floor(size / recordSize)} whole records and ${size % recordSize} bytes over)`,
    );
  }
  return size / recordSize;
}

interface LabelField {
  name: string;
  offset: number;
  classes: number;
}

function labelFields(variant: CifarVariant): LabelField[] {
  return variant === 'cifar10'
    ? [{ name: 'label', offset: 0, classes: 10 }]
    : [
        { name: 'coarse label', offset: 0, classes: 20 },
        { name: 'fine label', offset: 1, classes: 100 },
      ];
}

/**
 * Reads just the label bytes of a .bin file (checking each is in range), a chunk of records at a
 * time, so that counting images per class never holds the images in memory.
 *
 * @example
 * readCifarLabels('/data/cifar10/test_batch.bin', 'cifar10').labels.length; // 10000
 */
export function readCifarLabels(file: string, variant: CifarVariant): { coarse?: Uint8Array; labels: Uint8Array } {
  const count = cifarRecordCount(file, variant);
  const recordSize = cifarRecordSize(variant);
  const fields = labelFields(variant);
  const out = fields.map(() => new Uint8Array(count));
  const perChunk = 2048;
  const chunk = Buffer.alloc(perChunk * recordSize);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new DataFileError(file, `cannot read file (${(err as Error).message})`);
  }
  try {
    for (let first = 0; first < count; first += perChunk) {
      const n = Math.min(perChunk, count - first);
      const got = readSync(fd, chunk, 0, n * recordSize, first * recordSize);
      if (got !== n * recordSize) throw new DataFileError(file, `file shrank while reading: short read at record ${first}`);
      checkLabels(chunk, file, fields, first, n, recordSize, out);
    }
  } finally {
    closeSync(fd);
  }
  return variant === 'cifar10' ? { labels: out[0]! } : { coarse: out[0]!, labels: out[1]! };
}

function checkLabels(
  bytes: Uint8Array,
  file: string,
  fields: LabelField[],
  firstRecord: number,
  count: number,
  recordSize: number,
  out: Uint8Array[],
): void {
  for (let r = 0; r < count; r++) {
    fields.forEach((field, f) => {
      const label = bytes[r * recordSize + field.offset]!;
      if (label >= field.classes) {
        throw new DataFileError(file, `record ${firstRecord + r}: ${field.name} ${label} is out of range 0..${field.classes - 1}`);
      }
      out[f]![firstRecord + r] = label;
    });
  }
}

function readBinFile(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new DataFileError(file, `cannot read file (${(err as Error).message})`);
  }
}

function extractLabels(bytes: Uint8Array, file: string, variant: CifarVariant, count: number): { coarse?: Uint8Array; labels: Uint8Array } {
  const fields = labelFields(variant);
  const out = fields.map(() => new Uint8Array(count));
  checkLabels(bytes, file, fields, 0, count, cifarRecordSize(variant), out);
  return variant === 'cifar10' ? { labels: out[0]! } : { coarse: out[0]!, labels: out[1]! };
}

interface ParsedSplit {
  images: Uint8Array;
  fine: Uint8Array;
  coarse?: Uint8Array;
  count: number;
}

function readSplit(files: string[], variant: CifarVariant): ParsedSplit {
  const recordSize = cifarRecordSize(variant);
  const labelBytes = VARIANTS[variant].labelBytes;
  const parts = files.map((file) => {
    const bytes = readBinFile(file);
    const count = recordCountOf(file, bytes.length, variant);
    return { bytes, count, ...extractLabels(bytes, file, variant, count) };
  });
  const total = parts.reduce((n, p) => n + p.count, 0);
  const images = new Uint8Array(total * IMAGE_BYTES);
  const fine = new Uint8Array(total);
  const coarse = variant === 'cifar100' ? new Uint8Array(total) : undefined;
  let at = 0;
  for (const part of parts) {
    fine.set(part.labels, at);
    if (coarse && part.coarse) coarse.set(part.coarse, at);
    for (let r = 0; r < part.count; r++) {
      // Planar R, G, B (1024 bytes each) to interleaved RGB.
      const src = r * recordSize + labelBytes;
      const dst = (at + r) * IMAGE_BYTES;
      for (let p = 0; p < 1024; p++) {
        images[dst + 3 * p] = part.bytes[src + p]!;
        images[dst + 3 * p + 1] = part.bytes[src + 1024 + p]!;
        images[dst + 3 * p + 2] = part.bytes[src + 2048 + p]!;
      }
    }
    at += part.count;
  }
  return coarse ? { images, fine, coarse, count: total } : { images, fine, count: total };
}

function readNames(file: string | undefined, expected: number, title: string): string[] {
  if (file === undefined) return Array.from({ length: expected }, (_, i) => String(i));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataFileError(file, `cannot read file (${(err as Error).message})`);
  }
  const names = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (names.length !== expected) {
    throw new DataFileError(file, `lists ${names.length} class names; ${title} has ${expected}`);
  }
  return names;
}

function toImageSet(split: ParsedSplit, labels: Uint8Array): ImageSet {
  return { images: split.images, labels: Uint16Array.from(labels), count: split.count, rows: 32, cols: 32, channels: 3 };
}

/**
 * Loads the CIFAR-10 binary release (`data_batch_1..5.bin`, `test_batch.bin`) with class names
 * from `batches.meta.txt` when present.
 *
 * @example
 * const c10 = loadCifar10('/data/cifar10'); // also finds /data/cifar10/cifar-10-batches-bin/
 * c10.train.count; // 50000
 */
export function loadCifar10(dataDir: string): LabelledDataset {
  const files = locateCifar(dataDir, 'cifar10');
  const train = readSplit(files.train, 'cifar10');
  const test = readSplit(files.test, 'cifar10');
  return {
    name: 'cifar10',
    source: files.dir,
    kind: 'custom',
    classNames: readNames(files.meta['batches.meta.txt'], 10, 'CIFAR-10'),
    train: toImageSet(train, train.fine),
    test: toImageSet(test, test.fine),
  };
}

/**
 * Loads the CIFAR-100 binary release (`train.bin`, `test.bin`) with fine (default) or coarse labels.
 * With fine labels, `classGroups` holds each class's coarse superclass.
 *
 * @example
 * const c100 = loadCifar100('/data/cifar100', { labels: 'coarse' });
 * c100.classNames.length; // 20
 */
export function loadCifar100(dataDir: string, options: CifarOptions = {}): LabelledDataset {
  const which = options.labels ?? 'fine';
  if (which !== 'fine' && which !== 'coarse') throw new RangeError(`CIFAR-100 option labels must be 'fine' or 'coarse', got '${String(which)}'`);
  const files = locateCifar(dataDir, 'cifar100');
  const train = readSplit(files.train, 'cifar100');
  const test = readSplit(files.test, 'cifar100');
  const coarseNames = readNames(files.meta['coarse_label_names.txt'], 20, 'CIFAR-100 (coarse)');

  if (which === 'coarse') {
    return {
      name: 'cifar100',
      source: files.dir,
      kind: 'custom',
      classNames: coarseNames,
      train: toImageSet(train, train.coarse!),
      test: toImageSet(test, test.coarse!),
    };
  }

  const dataset: LabelledDataset = {
    name: 'cifar100',
    source: files.dir,
    kind: 'custom',
    classNames: readNames(files.meta['fine_label_names.txt'], 100, 'CIFAR-100 (fine)'),
    train: toImageSet(train, train.fine),
    test: toImageSet(test, test.fine),
  };
  // Each fine class belongs to one superclass; only claim groups when the data agrees.
  const groupOf = new Int16Array(100).fill(-1);
  let consistent = true;
  for (const split of [train, test]) {
    for (let i = 0; i < split.count && consistent; i++) {
      const f = split.fine[i]!;
      const c = split.coarse![i]!;
      if (groupOf[f] === -1) groupOf[f] = c;
      else if (groupOf[f] !== c) consistent = false;
    }
  }
  if (consistent && groupOf.every((g) => g >= 0)) dataset.classGroups = Array.from(groupOf, (g) => coarseNames[g]!);
  return dataset;
}

/**
 * Loads whichever CIFAR binary release `dataDir` holds (see `locateCifar`).
 *
 * @example
 * loadCifar('/data/cifar-100-binary', { labels: 'fine' }).name; // 'cifar100'
 */
export function loadCifar(dataDir: string, options: CifarOptions & { variant?: CifarVariant } = {}): LabelledDataset {
  const { variant } = locateCifar(dataDir, options.variant);
  return variant === 'cifar10' ? loadCifar10(dataDir) : loadCifar100(dataDir, options);
}
