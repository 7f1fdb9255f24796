import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadImageFolder, scanImageFolder, trainCountFor } from '../shared/datasets/image-folder.js';
import { DataFileError } from '../shared/datasets/labelled-dataset.js';

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'protofed-image-folder-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** An RGB PNG whose every pixel is `rgb(x, y)`. */
function rgbPng(width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): Buffer {
  const png = new pngjs.PNG({ width, height });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) png.data.set([...rgb(x, y), 255], 4 * (y * width + x));
  return pngjs.PNG.sync.write(png, { colorType: 2 });
}

function flatJpeg(width: number, height: number, rgb: [number, number, number]): Buffer {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([...rgb, 255], 4 * i);
  return jpeg.encode({ width, height, data }, 95).data;
}

/** The colour that identifies image `i` of class `c` (exact in PNG). */
function tag(c: number, i: number): [number, number, number] {
  return [10 + 40 * c, 5 * i, 200];
}

function writeClassFolders(root: string, classes: Record<string, number>, size = 4): void {
  Object.entries(classes).forEach(([name, count]) => {
    const c = Object.keys(classes).sort().indexOf(name);
    mkdirSync(join(root, name), { recursive: true });
    for (let i = count - 1; i >= 0; i--) writeFileSync(join(root, name, `img_${String(i).padStart(3, '0')}.png`), rgbPng(size, size, () => tag(c, i)));
  });
}

describe('trainCountFor', () => {
  it('rounds, keeping one image on each side when possible', () => {
    expect([trainCountFor(10, 0.8), trainCountFor(5, 0.8), trainCountFor(2, 0.8), trainCountFor(2, 0.1), trainCountFor(1, 0.8), trainCountFor(7, 1)]).toEqual([8, 4, 1, 1, 1, 7]);
  });
});

describe('loadImageFolder: one folder per class', () => {
  let root: string;

  beforeAll(() => {
    root = join(tmp, 'folders');
    writeClassFolders(root, { zebra: 5, ant: 10, moth: 4 });
    writeFileSync(join(root, 'README.txt'), 'not a class');
    writeFileSync(join(root, 'ant', 'notes.txt'), 'ignored');
  });

  it('sorts class names and splits each class by sorted file name', () => {
    const ds = loadImageFolder(root);
    expect(ds.name).toBe('image-folder');
    expect(ds.kind).toBe('custom');
    expect(ds.source).toBe(root);
    expect(ds.classNames).toEqual(['ant', 'moth', 'zebra']);
    expect(ds.train.labels).toBeInstanceOf(Uint16Array);
    expect(Array.from(ds.train.labels)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]);
    expect(Array.from(ds.test.labels)).toEqual([0, 0, 1, 2]);
    expect([ds.train.rows, ds.train.cols, ds.train.channels]).toEqual([4, 4, 3]);
    // The first pixel of each image identifies its class and file.
    const firstPixel = (set: typeof ds.train, k: number): number[] => Array.from(set.images.subarray(k * 48, k * 48 + 3));
    expect(firstPixel(ds.train, 0)).toEqual(tag(0, 0));
    expect(firstPixel(ds.train, 7)).toEqual(tag(0, 7));
    expect(firstPixel(ds.test, 0)).toEqual(tag(0, 8));
    expect(firstPixel(ds.test, 1)).toEqual(tag(0, 9));
    expect(firstPixel(ds.test, 3)).toEqual(tag(2, 4));
    expect(ds.baseClasses).toBeUndefined();
  });

  it('honours trainFraction, size and greyscale', () => {
    const ds = loadImageFolder(root, { trainFraction: 0.5, size: 2, channels: 1 });
    expect([ds.train.count, ds.test.count]).toEqual([5 + 2 + 3, 5 + 2 + 2]); // ant 5 of 10, moth 2 of 4, zebra round(2.5) = 3 of 5
    expect([ds.train.rows, ds.train.cols, ds.train.channels]).toEqual([2, 2, 1]);
    const [r, g, b] = tag(0, 0);
    const luma = Math.round((r * 299 + g * 587 + b * 114) / 1000);
    expect(Array.from(ds.train.images.subarray(0, 4))).toEqual([luma, luma, luma, luma]);
  });

  it('resizes images of other sizes to the first image size, and mixes PNG and JPEG', () => {
    const mixed = join(tmp, 'mixed');
    mkdirSync(join(mixed, 'a'), { recursive: true });
    mkdirSync(join(mixed, 'b'), { recursive: true });
    writeFileSync(join(mixed, 'a', '1.png'), rgbPng(4, 2, (x) => (x < 2 ? [0, 0, 0] : [200, 100, 50])));
    writeFileSync(join(mixed, 'a', '2.png'), rgbPng(8, 4, (x) => (x < 4 ? [0, 0, 0] : [200, 100, 50])));
    // A JPEG named .png: the format comes from the bytes.
    writeFileSync(join(mixed, 'b', '1.png'), flatJpeg(16, 16, [30, 160, 90]));
    writeFileSync(join(mixed, 'b', '2.JPG'), flatJpeg(4, 2, [30, 160, 90]));
    const ds = loadImageFolder(mixed, { trainFraction: 0.5 });
    expect([ds.train.rows, ds.train.cols]).toEqual([2, 4]);
    expect(Array.from(ds.test.images.subarray(0, 12))).toEqual([0, 0, 0, 0, 0, 0, 200, 100, 50, 200, 100, 50]);
    ds.train.images.subarray(24, 27).forEach((v, c) => expect(Math.abs(v - [30, 160, 90][c]!)).toBeLessThanOrEqual(4));
  });

  it('names an empty class folder', () => {
    const bad = join(tmp, 'empty-class');
    writeClassFolders(bad, { cat: 2 });
    mkdirSync(join(bad, 'dog'));
    writeFileSync(join(bad, 'dog', 'Thumbs.db'), 'x');
    expect(() => loadImageFolder(bad)).toThrow(DataFileError);
    expect(() => loadImageFolder(bad)).toThrow(`${join(bad, 'dog')}: class folder "dog" contains no PNG or JPEG images`);
  });

  it('names a corrupt image and an empty root', () => {
    const bad = join(tmp, 'corrupt');
    writeClassFolders(bad, { cat: 3 });
    writeFileSync(join(bad, 'cat', 'img_001.png'), Buffer.from('not really a png'));
    expect(() => loadImageFolder(bad)).toThrow(`${join(bad, 'cat', 'img_001.png')}: unrecognised image format`);
    const none = join(tmp, 'no-classes');
    mkdirSync(none);
    expect(() => loadImageFolder(none)).toThrow(/no-classes: no class folders found/);
  });
});

describe('loadImageFolder: mini-ImageNet style CSV splits', () => {
  function writeCsvRoot(root: string, csvs: Record<string, string>, images: Record<string, { label: string; inImagesDir: boolean }>): void {
    mkdirSync(join(root, 'images'), { recursive: true });
    for (const [name, text] of Object.entries(csvs)) writeFileSync(join(root, name), text);
    const labels = [...new Set(Object.values(images).map((i) => i.label))].sort();
    Object.entries(images).forEach(([file, { label, inImagesDir }]) => {
      const dir = inImagesDir ? join(root, 'images') : join(root, label);
      mkdirSync(dir, { recursive: true });
      const i = Number(/(\d+)\./.exec(file)![1]);
      writeFileSync(join(dir, file), rgbPng(3, 3, () => tag(labels.indexOf(label), i)));
    });
  }

  it('treats class-disjoint CSVs as a class split: train.csv classes are the base classes', () => {
    const root = join(tmp, 'mini');
    const images: Record<string, { label: string; inImagesDir: boolean }> = {};
    const rows = (label: string, n: number): string => {
      const out: string[] = [];
      for (let i = n - 1; i >= 0; i--) {
        const file = `${label}${String(i).padStart(8, '0')}.png`;
        images[file] = { label, inImagesDir: label !== 'n03' };
        out.push(`${file},${label}`);
      }
      return out.join('\n');
    };
    writeCsvRoot(root, {
      'train.csv': `filename,label\n${rows('n02', 5)}\n${rows('n01', 5)}\n`,
      'val.csv': `filename,label\r\n${rows('n04', 5).replace(/\n/g, '\r\n')}\r\n`,
      'test.csv': `filename,label\n${rows('n03', 5)}\n\n`,
    }, images);
    const ds = loadImageFolder(root, { size: 3 });
    expect(ds.classNames).toEqual(['n01', 'n02', 'n03', 'n04']);
    expect(ds.baseClasses).toEqual([0, 1]);
    expect(ds.classGroups).toEqual(['train', 'train', 'test', 'val']);
    expect(Array.from(ds.train.labels)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    expect(Array.from(ds.test.labels)).toEqual([0, 1, 2, 3]);
    // Sorted by file name within the class: the test image is the last one (index 4).
    expect(Array.from(ds.test.images.subarray(2 * 27, 2 * 27 + 3))).toEqual(tag(2, 4));
    expect(Array.from(ds.train.images.subarray(0, 3))).toEqual(tag(0, 0));
    const layout = scanImageFolder(root);
    expect([layout.mode, layout.splitBy, layout.csvSplits]).toEqual(['csv', 'fraction', ['train', 'val', 'test']]);
  });

  it('uses the CSV files as the image split when they share classes', () => {
    const root = join(tmp, 'csv-images');
    writeCsvRoot(root, {
      'train.csv': 'filename,label\nb1.png,bee\na1.png,ant\na2.png,ant\n',
      'test.csv': 'FileName , Label\n"a3.png",ant\nb2.png,"bee"\n',
    }, {
      'a1.png': { label: 'ant', inImagesDir: true },
      'a2.png': { label: 'ant', inImagesDir: true },
      'a3.png': { label: 'ant', inImagesDir: false },
      'b1.png': { label: 'bee', inImagesDir: true },
      'b2.png': { label: 'bee', inImagesDir: true },
    });
    const ds = loadImageFolder(root);
    expect(ds.classNames).toEqual(['ant', 'bee']);
    expect(Array.from(ds.train.labels)).toEqual([1, 0, 0]);
    expect(Array.from(ds.test.labels)).toEqual([0, 1]);
    expect(Array.from(ds.test.images.subarray(0, 3))).toEqual(tag(0, 3));
    expect(ds.baseClasses).toBeUndefined();
    expect(scanImageFolder(root).splitBy).toBe('csv');
  });

  it('names the CSV, line number and missing file', () => {
    const root = join(tmp, 'csv-missing');
    writeCsvRoot(root, {
      'train.csv': 'filename,label\na1.png,ant\n\na9.png,ant\n',
    }, { 'a1.png': { label: 'ant', inImagesDir: true } });
    expect(() => loadImageFolder(root)).toThrow(
      `${join(root, 'train.csv')}: line 4: image file "a9.png" not found (looked for ${join(root, 'images', 'a9.png')} and ${join(root, 'ant', 'a9.png')})`,
    );
  });

  it('rejects a bad header, a malformed row and a duplicate image with line numbers', () => {
    const bad = join(tmp, 'csv-bad');
    writeCsvRoot(bad, { 'test.csv': 'path,class\nx.png,a\n' }, {});
    expect(() => loadImageFolder(bad)).toThrow(`${join(bad, 'test.csv')}: line 1: expected the header "filename,label", got "path,class"`);
    const row = join(tmp, 'csv-row');
    writeCsvRoot(row, { 'train.csv': 'filename,label\nx.png,a\ny.png\n' }, {});
    expect(() => loadImageFolder(row)).toThrow(`${join(row, 'train.csv')}: line 3: expected 2 fields "filename,label", got "y.png"`);
    const dup = join(tmp, 'csv-dup');
    writeCsvRoot(dup, { 'train.csv': 'filename,label\nx.png,a\n', 'val.csv': 'filename,label\ny.png,b\nx.png,b\n' }, {});
    expect(() => loadImageFolder(dup)).toThrow(`${join(dup, 'val.csv')}: line 3: image "x.png" is listed twice (also on line 2 of train.csv)`);
  });
});
