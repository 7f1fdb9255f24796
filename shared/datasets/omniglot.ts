import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeImage, resizeArea } from './image-decode.js';
import { DataFileError, type ImageSet, type LabelledDataset, labelArrayFor } from './labelled-dataset.js';
import { isDir, listDir } from './data-folder.js';

export const OMNIGLOT_SPLITS = ['images_background', 'images_evaluation'] as const;

export type OmniglotSplit = (typeof OMNIGLOT_SPLITS)[number];

export const OMNIGLOT_DEFAULT_SIZE = 28;
export const OMNIGLOT_DEFAULT_TRAIN_PER_CLASS = 15;

export interface OmniglotOptions {
  /** Output images are `size`×`size` (default 28; the originals are 105×105). */
  size?: number;
  /** The first `trainPerClass` images of each class (by file name) are train, the rest test (default 15 of 20). */
  trainPerClass?: number;
}

/** One character of one alphabet: a class. */
export interface OmniglotClass {
  /** `<Alphabet>/<characterNN>` */
  name: string;
  alphabet: string;
  split: OmniglotSplit;
  dir: string;
  /** PNG paths, sorted by file name. */
  files: string[];
}

/** What an Omniglot root holds, found by listing folders only (no image is read). */
export interface OmniglotLayout {
  root: string;
  splits: OmniglotSplit[];
  classes: OmniglotClass[];
}

/**
 * Compares strings with runs of digits compared by value, so 'character2' < 'character10'.
 * Deterministic (no locale): other characters compare by UTF-16 code unit.
 *
 * @example
 * ['character10', 'character2'].sort(naturalCompare); // ['character2', 'character10']
 */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const xDigits = /^\d/.test(x);
    const yDigits = /^\d/.test(y);
    if (xDigits && yDigits) {
      const nx = BigInt(x);
      const ny = BigInt(y);
      if (nx !== ny) return nx < ny ? -1 : 1;
      // Same value, different zero padding: shorter first, then fall through to code-unit order.
      if (x.length !== y.length) return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

function codeUnitCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}



/**
 * True when `root` has an `images_background/` or `images_evaluation/` folder.
 *
 * @example
 * isOmniglotRoot('/data/omniglot'); // true
 */
export function isOmniglotRoot(root: string): boolean {
  return OMNIGLOT_SPLITS.some((split) => isDir(join(root, split)));
}

/**
 * Lists an Omniglot root's classes in protofed's class order (background alphabets sorted, then
 * evaluation alphabets sorted; characters in natural order) without reading any image.
 * Throws a `DataFileError` when neither split folder exists or a class folder has no PNG.
 *
 * @example
 * const layout = scanOmniglot('/data/omniglot');
 * layout.classes[0].name; // 'Alphabet_of_the_Magi/character01'
 */
export function scanOmniglot(rootDir: string): OmniglotLayout {
  const root = resolve(rootDir);
  const splits = OMNIGLOT_SPLITS.filter((split) => isDir(join(root, split)));
  if (splits.length === 0) {
    const zips = OMNIGLOT_SPLITS.map((s) => `${s}.zip`).filter((z) => existsSync(join(root, z)));
    const hint = zips.length > 0 ? `; found ${zips.join(', ')}: extract it here first` : '';
    throw new DataFileError(
      root,
      `not an Omniglot folder: neither images_background/ nor images_evaluation/ exists${hint}`,
    );
  }

  const classes: OmniglotClass[] = [];
  const seen = new Set<string>();
  for (const split of splits) {
    const splitDir = join(root, split);
    const alphabets = listDir(splitDir).filter((a) => isDir(join(splitDir, a))).sort(codeUnitCompare);
    for (const alphabet of alphabets) {
      const alphabetDir = join(splitDir, alphabet);
      const characters = listDir(alphabetDir).filter((c) => isDir(join(alphabetDir, c))).sort(naturalCompare);
      for (const character of characters) {
        const name = `${alphabet}/${character}`;
        const dir = join(alphabetDir, character);
        if (seen.has(name)) {
          throw new DataFileError(dir, `class ${name} appears in both images_background/ and images_evaluation/`);
        }
        seen.add(name);
        const files = listDir(dir)
          .filter((f) => f.toLowerCase().endsWith('.png'))
          .sort(codeUnitCompare)
          .map((f) => join(dir, f));
        if (files.length === 0) throw new DataFileError(dir, `class folder ${name} contains no PNG images`);
        classes.push({ name, alphabet, split, dir, files });
      }
    }
  }
  if (classes.length === 0) {
    throw new DataFileError(root, `no class folders found under ${splits.map((s) => `${s}/`).join(' or ')} (expected <Alphabet>/<characterNN>/*.png)`);
  }
  return { root, splits, classes };
}

function checkPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`Omniglot option ${name} must be a positive integer, got ${value}`);
}

/**
 * Loads Omniglot from its original layout (`images_background/` and/or `images_evaluation/`, then
 * `<Alphabet>/<characterNN>/*.png`) as white ink on black, resized to `size`×`size`.
 * Each character is a class; `classGroups` are alphabets; `baseClasses` are the background classes.
 *
 * @example
 * const omni = loadOmniglot('/data/omniglot', { size: 28, trainPerClass: 15 });
 * omni.classNames.length; // 1623 with both splits
 */
export function loadOmniglot(rootDir: string, options: OmniglotOptions = {}): LabelledDataset {
  const size = options.size ?? OMNIGLOT_DEFAULT_SIZE;
  const trainPerClass = options.trainPerClass ?? OMNIGLOT_DEFAULT_TRAIN_PER_CLASS;
  checkPositiveInt('size', size);
  checkPositiveInt('trainPerClass', trainPerClass);

  const layout = scanOmniglot(rootDir);
  let trainCount = 0;
  let testCount = 0;
  for (const cls of layout.classes) {
    if (cls.files.length <= trainPerClass) {
      throw new DataFileError(
        cls.dir,
        `class ${cls.name} has ${cls.files.length} images; trainPerClass ${trainPerClass} needs at least ${trainPerClass + 1} so that some are left for testing`,
      );
    }
    trainCount += trainPerClass;
    testCount += cls.files.length - trainPerClass;
  }

  const pixelsPerImage = size * size;
  const classCount = layout.classes.length;
  const blank = (count: number): ImageSet => ({
    images: new Uint8Array(count * pixelsPerImage),
    labels: labelArrayFor(classCount, count),
    count,
    rows: size,
    cols: size,
    channels: 1,
  });
  const train = blank(trainCount);
  const test = blank(testCount);

  let trainAt = 0;
  let testAt = 0;
  layout.classes.forEach((cls, classId) => {
    cls.files.forEach((file, i) => {
      const toTrain = i < trainPerClass;
      const set = toTrain ? train : test;
      const at = toTrain ? trainAt++ : testAt++;
      set.images.set(readInvertedGlyph(file, size), at * pixelsPerImage);
      set.labels[at] = classId;
    });
  });

  return {
    name: 'omniglot',
    source: layout.root,
    kind: 'custom',
    classNames: layout.classes.map((c) => c.name),
    train,
    test,
    baseClasses: layout.classes.flatMap((c, i) => (c.split === 'images_background' ? [i] : [])),
    classGroups: layout.classes.map((c) => c.alphabet),
  };
}

/** Omniglot draws black strokes on white; protofed (like MNIST) wants bright ink on black. */
function readInvertedGlyph(file: string, size: number): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new DataFileError(file, `cannot read file (${(err as Error).message})`);
  }
  const { width, height, pixels } = decodeImage(bytes, file, 1);
  for (let i = 0; i < pixels.length; i++) pixels[i] = 255 - pixels[i]!;
  return resizeArea(pixels, width, height, 1, size, size);
}
