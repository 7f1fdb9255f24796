import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdx, readIdxFile } from './idx.js';
import { DataFileError, type ImageSet, type LabelledDataset } from './labelled-dataset.js';

/**
 * The "protofed image pack": a folder holding a whole labelled dataset in four files, so that
 * thousands of classes load in milliseconds instead of walking thousands of PNG files.
 *
 * - `images.idx.gz`: IDX u8, `[N, rows, cols]` (greyscale) or `[N, rows, cols, channels]`;
 *   ink is bright (255) on a dark (0) background, like MNIST.
 * - `labels.idx.gz`: IDX i32 `[N]`, class ids indexing `classNames`.
 * - `split.idx.gz`: IDX u8 `[N]`, 0 = train, 1 = test.
 * - `dataset.json`: the manifest below.
 */
export const IMAGE_PACK_FORMAT = 'protofed-image-pack';
export const IMAGE_PACK_VERSION = 1;

export const IMAGE_PACK_FILES = {
  images: 'images.idx.gz',
  labels: 'labels.idx.gz',
  split: 'split.idx.gz',
  manifest: 'dataset.json',
} as const;

/** Where the data came from, for the people who use it. */
export interface ImagePackCredit {
  /** What is credited, e.g. an npm package such as '@fontsource/noto-sans'. */
  source: string;
  /** Human-readable name, e.g. 'Noto Sans'. */
  name?: string;
  version?: string;
  authors?: string;
  license?: string;
  licenseUrl?: string;
  copyright?: string;
}

/** The optional parts of `dataset.json`: how the data was made and whom to credit. */
export interface ImagePackMeta {
  generator?: Record<string, unknown>;
  credits?: ImagePackCredit[];
}

/** The `dataset.json` of an image pack. */
export interface ImagePackManifest extends ImagePackMeta {
  format: typeof IMAGE_PACK_FORMAT;
  version: typeof IMAGE_PACK_VERSION;
  name: string;
  classNames: string[];
  classGroups: string[];
  baseClasses: number[];
}

/** A dataset read from an image pack: kind 'pack', with the manifest's generator and credits. */
export interface ImagePackDataset extends LabelledDataset {
  kind: 'pack';
  meta: ImagePackMeta;
}

const GZIP_LEVEL = 9;

/**
 * Writes `dataset` as an image pack in `dir` (created if needed): train images first, then test
 * images, each in their order. Overwrites the four pack files; other files in `dir` are left alone.
 *
 * @example
 * writeImagePack('data/my-pack', { ...dataset, meta: { credits: [{ source: 'my-lab' }] } });
 * const again = readImagePack('data/my-pack'); // same classes, images and labels
 */
export function writeImagePack(dir: string, dataset: LabelledDataset & { meta?: ImagePackMeta }): void {
  const { train, test, classNames } = dataset;
  for (const [part, set] of [['train', train], ['test', test]] as const) {
    checkImageSetShape(set, part);
  }
  if (train.count > 0 && test.count > 0 && (train.rows !== test.rows || train.cols !== test.cols || train.channels !== test.channels)) {
    throw new Error(
      `writeImagePack: train images are ${train.rows}x${train.cols}x${train.channels} but test images are ${test.rows}x${test.cols}x${test.channels}`,
    );
  }
  const shapeSource = train.count > 0 ? train : test;
  const { rows, cols, channels } = shapeSource;
  const count = train.count + test.count;
  const classGroups = dataset.classGroups ?? classNames.map(() => '');
  if (classGroups.length !== classNames.length) {
    throw new Error(`writeImagePack: ${classGroups.length} class groups for ${classNames.length} classes`);
  }
  const baseClasses = dataset.baseClasses ?? [];
  for (const c of baseClasses) {
    if (!Number.isInteger(c) || c < 0 || c >= classNames.length) {
      throw new Error(`writeImagePack: base class ${c} is not a class id (0..${classNames.length - 1})`);
    }
  }

  const images = new Uint8Array(count * rows * cols * channels);
  images.set(train.images.subarray(0, train.count * rows * cols * channels), 0);
  images.set(test.images.subarray(0, test.count * rows * cols * channels), train.count * rows * cols * channels);
  const labels = new Int32Array(count);
  const split = new Uint8Array(count);
  for (let i = 0; i < train.count; i++) labels[i] = train.labels[i]!;
  for (let i = 0; i < test.count; i++) {
    labels[train.count + i] = test.labels[i]!;
    split[train.count + i] = 1;
  }
  for (let i = 0; i < count; i++) {
    const label = labels[i]!;
    if (label < 0 || label >= classNames.length) {
      throw new Error(`writeImagePack: image ${i} has label ${label}, outside 0..${classNames.length - 1}`);
    }
  }

  mkdirSync(dir, { recursive: true });
  const dims = channels === 1 ? [count, rows, cols] : [count, rows, cols, channels];
  writeFileSync(join(dir, IMAGE_PACK_FILES.images), gzipSync(encodeIdx({ dtype: 'u8', dims, data: images }), { level: GZIP_LEVEL }));
  writeFileSync(join(dir, IMAGE_PACK_FILES.labels), gzipSync(encodeIdx({ dtype: 'i32', dims: [count], data: labels }), { level: GZIP_LEVEL }));
  writeFileSync(join(dir, IMAGE_PACK_FILES.split), gzipSync(encodeIdx({ dtype: 'u8', dims: [count], data: split }), { level: GZIP_LEVEL }));

  const manifest: ImagePackManifest = {
    format: IMAGE_PACK_FORMAT,
    version: IMAGE_PACK_VERSION,
    name: dataset.name,
    classNames: [...classNames],
    classGroups: [...classGroups],
    baseClasses: [...baseClasses],
    ...(dataset.meta?.generator ? { generator: dataset.meta.generator } : {}),
    ...(dataset.meta?.credits ? { credits: dataset.meta.credits } : {}),
  };
  writeFileSync(join(dir, IMAGE_PACK_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
}

function checkImageSetShape(set: ImageSet, part: string): void {
  const need = set.count * set.rows * set.cols * set.channels;
  if (set.images.length < need) {
    throw new Error(`writeImagePack: ${part} set claims ${set.count} images of ${set.rows}x${set.cols}x${set.channels} but has ${set.images.length} bytes`);
  }
  if (set.labels.length < set.count) {
    throw new Error(`writeImagePack: ${part} set has ${set.count} images but ${set.labels.length} labels`);
  }
}

/**
 * True when `dir` looks like an image pack (a folder with a `dataset.json`); `readImagePack` checks the rest.
 *
 * @example
 * if (isImagePack(dir)) dataset = readImagePack(dir);
 */
export function isImagePack(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && existsSync(join(dir, IMAGE_PACK_FILES.manifest));
  } catch {
    return false;
  }
}

/**
 * Reads and validates the image pack in `dir`. Every inconsistency (a missing file, counts that
 * disagree, a label outside the classes, an unknown format or version) is a `DataFileError`
 * naming the offending file.
 *
 * @example
 * const glyphs = readImagePack('data/glyphs-28');
 * glyphs.classNames.length; // 1000+
 * glyphs.train.count;       // 15 per class
 */
export function readImagePack(dir: string): ImagePackDataset {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new DataFileError(root, 'not a folder (expected an image pack with dataset.json and three .idx.gz files)');
  }
  const manifestPath = join(root, IMAGE_PACK_FILES.manifest);
  const manifest = readManifest(manifestPath);
  const classCount = manifest.classNames.length;

  const imagesPath = join(root, IMAGE_PACK_FILES.images);
  const labelsPath = join(root, IMAGE_PACK_FILES.labels);
  const splitPath = join(root, IMAGE_PACK_FILES.split);
  for (const path of [imagesPath, labelsPath, splitPath]) {
    if (!existsSync(path)) throw new DataFileError(path, 'missing: an image pack needs images.idx.gz, labels.idx.gz, split.idx.gz and dataset.json');
  }

  const images = readIdxFile(imagesPath);
  if (images.dtype !== 'u8' || (images.dims.length !== 3 && images.dims.length !== 4)) {
    throw new DataFileError(
      imagesPath,
      `expected u8 images [count, rows, cols] or [count, rows, cols, channels], got ${images.dtype} [${images.dims.join(', ')}]`,
    );
  }
  const [count = 0, rows = 0, cols = 0, channels = 1] = images.dims;
  if (rows === 0 || cols === 0 || channels === 0) {
    throw new DataFileError(imagesPath, `image dims [${images.dims.join(', ')}] have a zero size`);
  }

  const labels = readIdxFile(labelsPath);
  if (labels.dtype !== 'i32' || labels.dims.length !== 1) {
    throw new DataFileError(labelsPath, `expected i32 labels [count], got ${labels.dtype} [${labels.dims.join(', ')}]`);
  }
  if (labels.dims[0] !== count) {
    throw new DataFileError(labelsPath, `has ${labels.dims[0]} labels but ${imagesPath} has ${count} images`);
  }
  const split = readIdxFile(splitPath);
  if (split.dtype !== 'u8' || split.dims.length !== 1) {
    throw new DataFileError(splitPath, `expected u8 split flags [count], got ${split.dtype} [${split.dims.join(', ')}]`);
  }
  if (split.dims[0] !== count) {
    throw new DataFileError(splitPath, `has ${split.dims[0]} split flags but ${imagesPath} has ${count} images`);
  }

  const labelData = labels.data as Int32Array;
  const splitData = split.data as Uint8Array;
  let trainCount = 0;
  for (let i = 0; i < count; i++) {
    const label = labelData[i]!;
    if (label < 0 || label >= classCount) {
      throw new DataFileError(labelsPath, `image ${i} has label ${label}, but ${manifestPath} lists ${classCount} classes (0..${classCount - 1})`);
    }
    const flag = splitData[i]!;
    if (flag > 1) throw new DataFileError(splitPath, `image ${i} has split flag ${flag}; expected 0 (train) or 1 (test)`);
    if (flag === 0) trainCount++;
  }

  const size = rows * cols * channels;
  const pixels = images.data as Uint8Array;
  const part = (wanted: 0 | 1, partCount: number): ImageSet => {
    const out = new Uint8Array(partCount * size);
    const outLabels = new Int32Array(partCount);
    let k = 0;
    for (let i = 0; i < count; i++) {
      if (splitData[i] !== wanted) continue;
      out.set(pixels.subarray(i * size, (i + 1) * size), k * size);
      outLabels[k] = labelData[i]!;
      k++;
    }
    return { images: out, labels: outLabels, count: partCount, rows, cols, channels };
  };

  const meta: ImagePackMeta = {};
  if (manifest.generator) meta.generator = manifest.generator;
  if (manifest.credits) meta.credits = manifest.credits;
  return {
    name: manifest.name,
    source: root,
    kind: 'pack',
    classNames: manifest.classNames,
    classGroups: manifest.classGroups,
    baseClasses: manifest.baseClasses,
    train: part(0, trainCount),
    test: part(1, count - trainCount),
    meta,
  };
}

function readManifest(path: string): ImagePackManifest {
  if (!existsSync(path)) {
    throw new DataFileError(path, 'missing: an image pack needs dataset.json next to its .idx.gz files');
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new DataFileError(path, `not valid JSON (${(err as Error).message})`);
  }
  const fail = (reason: string): never => {
    throw new DataFileError(path, reason);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('expected a JSON object');
  const obj = json as Record<string, unknown>;
  if (obj.format !== IMAGE_PACK_FORMAT) {
    fail(`unknown format ${JSON.stringify(obj.format)}; expected "${IMAGE_PACK_FORMAT}"`);
  }
  if (obj.version !== IMAGE_PACK_VERSION) {
    fail(`unsupported ${IMAGE_PACK_FORMAT} version ${JSON.stringify(obj.version)}; this protofed reads version ${IMAGE_PACK_VERSION}`);
  }
  if (typeof obj.name !== 'string' || obj.name === '') fail('"name" must be a non-empty string');
  const classNames = obj.classNames;
  if (!Array.isArray(classNames) || classNames.length === 0 || !classNames.every((n) => typeof n === 'string')) {
    fail('"classNames" must be a non-empty array of strings');
  }
  const names = classNames as string[];
  const classGroups = obj.classGroups ?? names.map(() => '');
  if (!Array.isArray(classGroups) || !classGroups.every((g) => typeof g === 'string')) {
    fail('"classGroups" must be an array of strings');
  }
  if ((classGroups as string[]).length !== names.length) {
    fail(`"classGroups" has ${(classGroups as string[]).length} entries for ${names.length} classes`);
  }
  const baseClasses = obj.baseClasses ?? [];
  if (!Array.isArray(baseClasses)) fail('"baseClasses" must be an array of class ids');
  const seen = new Set<number>();
  for (const c of baseClasses as unknown[]) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c >= names.length) {
      fail(`"baseClasses" holds ${JSON.stringify(c)}, not a class id in 0..${names.length - 1}`);
    }
    if (seen.has(c as number)) fail(`"baseClasses" lists class ${c as number} twice`);
    seen.add(c as number);
  }
  if (obj.generator !== undefined && (typeof obj.generator !== 'object' || obj.generator === null || Array.isArray(obj.generator))) {
    fail('"generator" must be an object');
  }
  if (obj.credits !== undefined && (!Array.isArray(obj.credits) || !obj.credits.every((c) => typeof c === 'object' && c !== null && typeof (c as { source?: unknown }).source === 'string'))) {
    fail('"credits" must be an array of objects with a "source" string');
  }
  return {
    format: IMAGE_PACK_FORMAT,
    version: IMAGE_PACK_VERSION,
    name: obj.name as string,
    classNames: names,
    classGroups: classGroups as string[],
    baseClasses: baseClasses as number[],
    ...(obj.generator !== undefined ? { generator: obj.generator as Record<string, unknown> } : {}),
    ...(obj.credits !== undefined ? { credits: obj.credits as ImagePackCredit[] } : {}),
  };
}
