import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeImage, resizeArea } from './image-decode.js';
import { DataFileError, type ImageSet, type LabelledDataset, labelArrayFor } from './labelled-dataset.js';
import { isFile, isDir, listDir } from './data-folder.js';
import { checkFraction, codeUnitCompare, isImageName, splitByFraction, trainCountFor, type ImageFolderItem } from './class-folders.js';

export { trainCountFor, type ImageFolderItem };

export interface ImageFolderOptions {
  /** Output images are `size`×`size`; by default the size of the first image (rows × cols). */
  size?: number;
  /** 1 for greyscale, 3 for RGB (default 3). */
  channels?: 1 | 3;
  /** Share of each class's images (by sorted file name) that goes to train (default 0.8). */
  trainFraction?: number;
}

/** The CSV split files recognised in a root, in reading order. */
export const CSV_SPLITS = ['train', 'val', 'test'] as const;

export type CsvSplit = (typeof CSV_SPLITS)[number];

/**
 * What an image folder holds, found without decoding any image.
 * `mode` is 'folders' for one folder per class, 'csv' for mini-ImageNet style split files.
 */
export interface ImageFolderLayout {
  root: string;
  mode: 'folders' | 'csv';
  classNames: string[];
  /** The CSV files found (csv mode), e.g. ['train', 'val', 'test']. */
  csvSplits: CsvSplit[];
  /** How train and test were formed: by `trainFraction` within each class, or by the CSV file of each row. */
  splitBy: 'fraction' | 'csv';
  train: ImageFolderItem[];
  test: ImageFolderItem[];
  /** csv mode with classes split across files: the classes of train.csv. */
  baseClasses?: number[];
  /** csv mode with classes split across files: the CSV split ('train', 'val', 'test') of each class. */
  classGroups?: string[];
}

export interface ScanImageFolderOptions {
  trainFraction?: number;
  /** Check that every CSV row's image exists (default true). */
  checkFiles?: boolean;
}

/**
 * True when `root` holds train.csv, val.csv or test.csv.
 *
 * @example
 * hasCsvSplits('/data/mini-imagenet'); // true
 */
export function hasCsvSplits(root: string): boolean {
  return CSV_SPLITS.some((split) => isFile(join(root, `${split}.csv`)));
}

function scanClassFolders(root: string, fraction: number): ImageFolderLayout {
  const classNames = listDir(root).filter((name) => isDir(join(root, name))).sort(codeUnitCompare);
  if (classNames.length === 0) {
    throw new DataFileError(root, 'no class folders found (expected one folder of PNG or JPEG images per class, or train.csv/test.csv)');
  }
  const filesByClass = classNames.map((name) => {
    const dir = join(root, name);
    const files = listDir(dir).filter(isImageName).sort(codeUnitCompare);
    if (files.length === 0) throw new DataFileError(dir, `class folder "${name}" contains no PNG or JPEG images`);
    return files.map((f) => join(dir, f));
  });
  return { root, mode: 'folders', classNames, csvSplits: [], splitBy: 'fraction', ...splitByFraction(filesByClass, fraction) };
}

/** Splits one CSV line into fields; double quotes may wrap a field, with "" for a literal quote. */
function parseCsvLine(line: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return undefined;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') return undefined;
    } else {
      const comma = line.indexOf(',', i);
      const end = comma === -1 ? line.length : comma;
      field = line.slice(i, end);
      i = end;
    }
    fields.push(field.trim());
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

interface CsvRow {
  filename: string;
  label: string;
  line: number;
}

function readCsv(path: string): CsvRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataFileError(path, `cannot read file (${(err as Error).message})`);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerIndex = lines.findIndex((l) => l.trim() !== '');
  if (headerIndex === -1) throw new DataFileError(path, 'empty CSV file: expected a "filename,label" header');
  const header = parseCsvLine(lines[headerIndex]!.trim())?.map((h) => h.toLowerCase());
  if (!header || header.length !== 2 || header[0] !== 'filename' || header[1] !== 'label') {
    throw new DataFileError(path, `line ${headerIndex + 1}: expected the header "filename,label", got "${lines[headerIndex]!.trim()}"`);
  }
  const rows: CsvRow[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (text === '') continue;
    const fields = parseCsvLine(text);
    const line = i + 1;
    if (!fields || fields.length !== 2) {
      throw new DataFileError(path, `line ${line}: expected 2 fields "filename,label", got "${text}"`);
    }
    const [filename, label] = fields as [string, string];
    if (filename === '' || label === '') throw new DataFileError(path, `line ${line}: empty filename or label in "${text}"`);
    rows.push({ filename, label, line });
  }
  return rows;
}

function scanCsvSplits(root: string, fraction: number, checkFiles: boolean): ImageFolderLayout {
  const csvSplits = CSV_SPLITS.filter((split) => isFile(join(root, `${split}.csv`)));
  const rowsBySplit = new Map<CsvSplit, CsvRow[]>();
  const firstSeen = new Map<string, string>();
  for (const split of csvSplits) {
    const csv = join(root, `${split}.csv`);
    const rows = readCsv(csv);
    for (const row of rows) {
      const where = `line ${row.line} of ${split}.csv`;
      const previous = firstSeen.get(row.filename);
      if (previous !== undefined) {
        throw new DataFileError(csv, `line ${row.line}: image "${row.filename}" is listed twice (also on ${previous})`);
      }
      firstSeen.set(row.filename, where);
    }
    rowsBySplit.set(split, rows);
  }

  const classNames = [...new Set([...rowsBySplit.values()].flat().map((r) => r.label))].sort(codeUnitCompare);
  if (classNames.length === 0) {
    throw new DataFileError(root, `${csvSplits.map((s) => `${s}.csv`).join(', ')} list no images`);
  }
  const classId = new Map(classNames.map((name, i) => [name, i]));

  const resolveFile = (split: CsvSplit, row: CsvRow): string => {
    const candidates = [join(root, 'images', row.filename), join(root, row.label, row.filename)];
    if (!checkFiles) return candidates[0]!;
    const found = candidates.find(isFile);
    if (found === undefined) {
      throw new DataFileError(
        join(root, `${split}.csv`),
        `line ${row.line}: image file "${row.filename}" not found (looked for ${candidates.join(' and ')})`,
      );
    }
    return found;
  };

  // Which CSV files each class appears in decides how train/test are formed.
  const splitsOfClass = classNames.map(() => new Set<CsvSplit>());
  for (const [split, rows] of rowsBySplit) for (const row of rows) splitsOfClass[classId.get(row.label)!]!.add(split);
  const classesDisjoint = splitsOfClass.every((s) => s.size === 1);

  if (classesDisjoint) {
    // mini-ImageNet (Ravi & Larochelle): the CSVs split the classes (64 / 16 / 20), not the images,
    // so each class's own images are split by fraction and train.csv's classes are the base classes.
    const filesByClass: string[][] = classNames.map(() => []);
    const namesByClass: string[][] = classNames.map(() => []);
    for (const [split, rows] of rowsBySplit) {
      for (const row of rows) {
        const id = classId.get(row.label)!;
        filesByClass[id]!.push(resolveFile(split, row));
        namesByClass[id]!.push(row.filename);
      }
    }
    const sorted = filesByClass.map((files, id) => {
      const order = files.map((_, i) => i).sort((a, b) => codeUnitCompare(namesByClass[id]![a]!, namesByClass[id]![b]!));
      return order.map((i) => files[i]!);
    });
    const classGroups = splitsOfClass.map((s) => [...s][0]!);
    const layout: ImageFolderLayout = { root, mode: 'csv', classNames, csvSplits, splitBy: 'fraction', ...splitByFraction(sorted, fraction) };
    if (csvSplits.length > 1) {
      layout.classGroups = classGroups;
      layout.baseClasses = classGroups.flatMap((g, i) => (g === 'train' ? [i] : []));
    }
    return layout;
  }

  // The CSVs split the images of shared classes: train.csv is train; val.csv and test.csv are held out.
  const train: ImageFolderItem[] = [];
  const test: ImageFolderItem[] = [];
  for (const [split, rows] of rowsBySplit) {
    for (const row of rows) (split === 'train' ? train : test).push({ file: resolveFile(split, row), classId: classId.get(row.label)! });
  }
  return { root, mode: 'csv', classNames, csvSplits, splitBy: 'csv', train, test };
}

/**
 * Lists an image folder's classes and images without decoding them: mini-ImageNet style CSV split
 * files when the root has train.csv, val.csv or test.csv, else one sub-folder per class.
 *
 * @example
 * const layout = scanImageFolder('/data/mini-imagenet');
 * layout.classNames.length; // 100
 */
export function scanImageFolder(rootDir: string, options: ScanImageFolderOptions = {}): ImageFolderLayout {
  const root = resolve(rootDir);
  const fraction = options.trainFraction ?? 0.8;
  checkFraction(fraction);
  if (!isDir(root)) throw new DataFileError(root, 'image folder does not exist or is not a folder');
  return hasCsvSplits(root) ? scanCsvSplits(root, fraction, options.checkFiles ?? true) : scanClassFolders(root, fraction);
}

function readImage(file: string, channels: 1 | 3): { width: number; height: number; pixels: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new DataFileError(file, `cannot read file (${(err as Error).message})`);
  }
  return decodeImage(bytes, file, channels);
}

/**
 * Loads PNG or JPEG images arranged as one folder per class (class names = folder names, sorted),
 * or listed by mini-ImageNet style `train.csv`/`val.csv`/`test.csv` files (`filename,label`, images
 * in `images/` or in `<label>/`). Images are resized to `size`×`size` with `channels` channels.
 *
 * @example
 * const ds = loadImageFolder('/data/flowers', { size: 32, channels: 3, trainFraction: 0.8 });
 * ds.train.rows; // 32
 */
export function loadImageFolder(rootDir: string, options: ImageFolderOptions = {}): LabelledDataset {
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new RangeError(`image folder option channels must be 1 or 3, got ${String(channels)}`);
  if (options.size !== undefined && !(Number.isInteger(options.size) && options.size >= 1)) {
    throw new RangeError(`image folder option size must be a positive integer, got ${options.size}`);
  }
  const layout = scanImageFolder(rootDir, { trainFraction: options.trainFraction ?? 0.8 });

  const first = layout.train[0] ?? layout.test[0];
  const native = options.size === undefined && first ? readImage(first.file, channels) : undefined;
  const rows = options.size ?? native?.height ?? 0;
  const cols = options.size ?? native?.width ?? 0;
  const bytesPerImage = rows * cols * channels;
  const fill = (items: ImageFolderItem[]): ImageSet => {
    const images = new Uint8Array(items.length * bytesPerImage);
    const labels = labelArrayFor(layout.classNames.length, items.length);
    items.forEach(({ file, classId }, i) => {
      const img = readImage(file, channels);
      const pixels = img.width === cols && img.height === rows ? img.pixels : resizeArea(img.pixels, img.width, img.height, channels, cols, rows);
      images.set(pixels, i * bytesPerImage);
      labels[i] = classId;
    });
    return { images, labels, count: items.length, rows, cols, channels };
  };
  const train = fill(layout.train);
  const test = fill(layout.test);

  const dataset: LabelledDataset = {
    name: 'image-folder',
    source: layout.root,
    kind: 'custom',
    classNames: layout.classNames,
    train,
    test,
  };
  if (layout.baseClasses) dataset.baseClasses = layout.baseClasses;
  if (layout.classGroups) dataset.classGroups = layout.classGroups;
  return dataset;
}

