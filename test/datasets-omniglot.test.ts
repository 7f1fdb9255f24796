import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, detectImageFormat, resizeArea } from '../shared/datasets/image-decode.js';
import { DataFileError } from '../shared/datasets/labelled-dataset.js';
import { loadOmniglot, naturalCompare, scanOmniglot } from '../shared/datasets/omniglot.js';

// ---------- a raw PNG writer, for the kinds pngjs cannot write (1/2/4-bit, palette, chosen filters) ----------

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0);
  return Buffer.concat([head, data, crc]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

interface RawPng {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  depth: 1 | 2 | 4 | 8 | 16;
  /** Unfiltered scanlines, packed as PNG stores them. */
  scanlines: Uint8Array[];
  palette?: [number, number, number][];
  trns?: Uint8Array;
  /** Filter type of row y: filters(y); default none. */
  filters?: (y: number) => number;
}

function writeRawPng(img: RawPng): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(img.width, 0);
  ihdr.writeUInt32BE(img.height, 4);
  ihdr[8] = img.depth;
  ihdr[9] = img.colorType;
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[img.colorType];
  const bpp = Math.max(1, (channels * img.depth) >> 3);
  const rows: Buffer[] = [];
  let prev: Uint8Array = new Uint8Array(img.scanlines[0]!.length);
  img.scanlines.forEach((line, y) => {
    const f = img.filters?.(y) ?? 0;
    const out = Buffer.alloc(line.length + 1);
    out[0] = f;
    for (let i = 0; i < line.length; i++) {
      const a = i >= bpp ? line[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]!;
      out[i + 1] = (line[i]! - pred) & 0xff;
    }
    rows.push(out);
    prev = line;
  });
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr)];
  if (img.palette) parts.push(pngChunk('PLTE', Buffer.from(img.palette.flat())));
  if (img.trns) parts.push(pngChunk('tRNS', img.trns));
  parts.push(pngChunk('IDAT', deflateSync(Buffer.concat(rows))), pngChunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}

/** A 1-bit greyscale PNG like Omniglot's: `ink(x, y)` true → black (0), else white (1). */
function glyphPng(width: number, height: number, ink: (x: number, y: number) => boolean, filters?: (y: number) => number): Buffer {
  const rowBytes = Math.ceil(width / 8);
  const scanlines = Array.from({ length: height }, (_, y) => {
    const line = new Uint8Array(rowBytes);
    for (let x = 0; x < width; x++) if (!ink(x, y)) line[x >> 3]! |= 0x80 >> (x & 7);
    return line;
  });
  return writeRawPng({ width, height, colorType: 0, depth: 1, scanlines, filters });
}

// ---------- image-decode ----------

describe('decodeImage', () => {
  it('detects PNG and JPEG from magic bytes, not names', () => {
    const png = glyphPng(3, 3, () => false);
    const jpg = Buffer.from(jpeg.encode({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 4).fill(200) }, 90).data);
    expect(detectImageFormat(png)).toBe('png');
    expect(detectImageFormat(jpg)).toBe('jpeg');
    expect(detectImageFormat(Buffer.from('GIF89a'))).toBeUndefined();
    expect(decodeImage(jpg, 'misnamed.png', 1).pixels[0]).toBeGreaterThan(195);
  });

  it('decodes 1-bit greyscale with every filter type exactly (the fast path) and agrees with pngjs', () => {
    const ink = (x: number, y: number): boolean => (x * 7 + y * 3) % 5 < 2;
    const png = glyphPng(19, 10, ink, (y) => y % 5);
    const img = decodeImage(png, 'glyph.png', 1);
    expect([img.width, img.height, img.channels]).toEqual([19, 10, 1]);
    for (let y = 0; y < 10; y++) for (let x = 0; x < 19; x++) expect(img.pixels[y * 19 + x]).toBe(ink(x, y) ? 0 : 255);
    const reference = pngjs.PNG.sync.read(png);
    expect(Array.from(img.pixels)).toEqual(Array.from({ length: 19 * 10 }, (_, i) => reference.data[4 * i]));
    const rgb = decodeImage(png, 'glyph.png', 3);
    expect(Array.from(rgb.pixels.subarray(0, 6))).toEqual([img.pixels[0], img.pixels[0], img.pixels[0], img.pixels[1], img.pixels[1], img.pixels[1]]);
  });

  it('scales 2- and 4-bit grey to 0..255', () => {
    const two = writeRawPng({ width: 4, height: 1, colorType: 0, depth: 2, scanlines: [Uint8Array.of(0b00011011)] });
    expect(Array.from(decodeImage(two, 'two.png', 1).pixels)).toEqual([0, 85, 170, 255]);
    const four = writeRawPng({ width: 3, height: 1, colorType: 0, depth: 4, scanlines: [Uint8Array.of(0x0f, 0x70)] });
    expect(Array.from(decodeImage(four, 'four.png', 1).pixels)).toEqual([0, 255, 119]);
  });

  it('decodes 8-bit grey written by pngjs with adaptive filters', () => {
    const w = 23;
    const h = 17;
    const grey = Array.from({ length: w * h }, (_, i) => (i * 37 + (i >> 3) * 11) & 0xff);
    const png = new pngjs.PNG({ width: w, height: h });
    grey.forEach((v, i) => png.data.set([v, v, v, 255], 4 * i));
    const bytes = pngjs.PNG.sync.write(png, { colorType: 0, filterType: -1 });
    expect(Array.from(decodeImage(bytes, 'grey8.png', 1).pixels)).toEqual(grey);
  });

  it('decodes palette, 16-bit, RGB and alpha PNGs through pngjs, compositing alpha on white', () => {
    const palette = writeRawPng({
      width: 3, height: 1, colorType: 3, depth: 8, scanlines: [Uint8Array.of(0, 1, 2)],
      palette: [[255, 0, 0], [0, 255, 0], [10, 20, 30]],
    });
    expect(Array.from(decodeImage(palette, 'pal.png', 3).pixels)).toEqual([255, 0, 0, 0, 255, 0, 10, 20, 30]);
    // BT.601 luma: red → 76, green → 150.
    expect(Array.from(decodeImage(palette, 'pal.png', 1).pixels)).toEqual([76, 150, 18]);

    const sixteen = writeRawPng({ width: 2, height: 1, colorType: 0, depth: 16, scanlines: [Uint8Array.of(0xff, 0xff, 0x80, 0x00)] });
    expect(Array.from(decodeImage(sixteen, 's.png', 1).pixels)).toEqual([255, 128]);

    const rgba = writeRawPng({
      width: 3, height: 1, colorType: 6, depth: 8,
      scanlines: [Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 128)],
    });
    // Transparent black → white; opaque black → black; half-transparent black → mid grey.
    expect(Array.from(decodeImage(rgba, 'a.png', 1).pixels)).toEqual([255, 0, 127]);

    const greyWithTrns = writeRawPng({ width: 2, height: 1, colorType: 0, depth: 8, scanlines: [Uint8Array.of(0, 9)], trns: Uint8Array.of(0, 0) });
    expect(Array.from(decodeImage(greyWithTrns, 't.png', 1).pixels)).toEqual([255, 9]);
  });

  it('decodes JPEG to RGB or grey within JPEG error', () => {
    const data = new Uint8Array(16 * 16 * 4);
    for (let i = 0; i < 256; i++) data.set(i % 16 < 8 ? [200, 40, 40, 255] : [40, 40, 200, 255], 4 * i);
    const bytes = jpeg.encode({ width: 16, height: 16, data }, 95).data;
    const img = decodeImage(bytes, 'x.jpg', 3);
    expect([img.width, img.height, img.channels]).toEqual([16, 16, 3]);
    const px = (x: number, y: number): number[] => Array.from(img.pixels.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3));
    px(2, 5).forEach((v, c) => expect(Math.abs(v - [200, 40, 40][c]!)).toBeLessThan(12));
    px(13, 5).forEach((v, c) => expect(Math.abs(v - [40, 40, 200][c]!)).toBeLessThan(12));
  });

  it('rejects corrupt and unsupported data with the file and reason', () => {
    const png = glyphPng(8, 8, () => true);
    const badCrc = Buffer.from(png);
    badCrc[30] = badCrc[30]! ^ 0xff;
    expect(() => decodeImage(badCrc, 'bad-crc.png', 1)).toThrow(/bad-crc\.png: corrupt PNG data \(CRC mismatch in IHDR chunk\)/);
    expect(() => decodeImage(png.subarray(0, 40), 'cut.png', 1)).toThrow(/cut\.png: corrupt PNG data \(truncated/);
    const rgbPng = writeRawPng({ width: 1, height: 1, colorType: 2, depth: 8, scanlines: [Uint8Array.of(1, 2, 3)] });
    expect(() => decodeImage(rgbPng.subarray(0, 45), 'cut-rgb.png', 3)).toThrow(DataFileError);
    expect(() => decodeImage(Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]), 'bad.jpg', 3)).toThrow(/bad\.jpg: corrupt JPEG data/);
    expect(() => decodeImage(Buffer.from('GIF89a....'), 'a.gif', 3)).toThrow(/a\.gif: unrecognised image format: first bytes are 47 49 46 38/);
    expect(() => decodeImage(new Uint8Array(0), 'empty.png', 3)).toThrow(/empty\.png: the file is empty/);
  });
});

describe('resizeArea', () => {
  it('averages boxes when shrinking by an integer factor', () => {
    // 4x4 grey → 2x2: blocks of [0,0,0,0], [255,255,255,255], [0,255,0,255], [255,0,0,0].
    const src = Uint8Array.from([
      0, 0, 255, 255,
      0, 0, 255, 255,
      0, 255, 255, 0,
      0, 255, 0, 0,
    ]);
    expect(Array.from(resizeArea(src, 4, 4, 1, 2, 2))).toEqual([0, 255, 128, 64]);
  });

  it('weights partial pixels for non-integer factors and keeps channels apart', () => {
    // 3 → 2 pixels: out0 = (2/3)·p0 + (1/3)·p1, out1 = (1/3)·p1 + (2/3)·p2.
    const src = Uint8Array.from([0, 30, 90, 255, 0, 0]); // 3x1 RGB... as 3 pixels x 2 channels
    const out = resizeArea(src, 3, 1, 2, 2, 1);
    expect(Array.from(out)).toEqual([Math.round((0 * 2 + 90) / 3), Math.round((30 * 2 + 255) / 3), Math.round(90 / 3), Math.round(255 / 3)]);
  });

  it('interpolates bilinearly when growing, with exact edges', () => {
    const out = resizeArea(Uint8Array.from([0, 100]), 2, 1, 1, 4, 1);
    expect(Array.from(out)).toEqual([0, 25, 75, 100]);
  });

  it('preserves a constant image at any size and is deterministic', () => {
    const flat = new Uint8Array(105 * 105).fill(77);
    expect(resizeArea(flat, 105, 105, 1, 28, 28).every((v) => v === 77)).toBe(true);
    expect(resizeArea(flat, 105, 105, 1, 200, 150).every((v) => v === 77)).toBe(true);
    const noisy = Uint8Array.from({ length: 105 * 105 }, (_, i) => (i * 2654435761) >>> 24);
    expect(resizeArea(noisy, 105, 105, 1, 28, 28)).toEqual(resizeArea(noisy, 105, 105, 1, 28, 28));
    expect(() => resizeArea(flat, 105, 100, 1, 28, 28)).toThrow(/needs 10500 bytes/);
  });
});

// ---------- omniglot ----------

describe('naturalCompare', () => {
  it('orders digit runs by value', () => {
    expect(['character10', 'character2', 'character1', 'character02'].sort(naturalCompare)).toEqual(['character1', 'character2', 'character02', 'character10']);
  });
});

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'protofed-omniglot-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Writes an Omniglot root. Each image is 8x8 1-bit: row 0 has (class index + 1) ink pixels,
 * row 1 has (image index + 1), so a loaded image tells where it came from.
 */
function writeOmniglot(root: string, layout: Record<string, Record<string, Record<string, number>>>, classIndex: Map<string, number>): void {
  for (const [split, alphabets] of Object.entries(layout)) {
    for (const [alphabet, characters] of Object.entries(alphabets)) {
      for (const [character, count] of Object.entries(characters)) {
        const dir = join(root, split, alphabet, character);
        mkdirSync(dir, { recursive: true });
        const c = classIndex.get(`${alphabet}/${character}`) ?? 0;
        for (let k = 0; k < count; k++) {
          // Written in reverse so that directory order differs from sorted order.
          const i = count - 1 - k;
          const name = `${String(1000 + c).slice(1)}_${String(i + 1).padStart(2, '0')}.png`;
          writeFileSync(join(dir, name), glyphPng(8, 8, (x, y) => (y === 0 && x <= c) || (y === 1 && x <= i)));
        }
      }
    }
  }
}

/** The number of bright (ink) pixels in row `row` of image `i` of an 8x8 set. */
function inkInRow(images: Uint8Array, i: number, row: number): number {
  let n = 0;
  for (let x = 0; x < 8; x++) if (images[i * 64 + row * 8 + x] === 255) n++;
  return n;
}

describe('loadOmniglot', () => {
  const expectedOrder = [
    'Alpha/character1', 'Alpha/character2', 'Alpha/character10', 'Zeta/character01',
    'Aardvark/character01', 'Aardvark/character02',
  ];
  const classIndex = new Map(expectedOrder.map((n, i) => [n, i]));
  let root: string;

  beforeAll(() => {
    root = join(tmp, 'omniglot');
    writeOmniglot(root, {
      images_background: {
        Zeta: { character01: 4 },
        Alpha: { character10: 4, character2: 4, character1: 5 },
      },
      images_evaluation: {
        Aardvark: { character02: 4, character01: 4 },
      },
    }, classIndex);
    writeFileSync(join(root, 'images_background', 'Alpha', 'character1', '.DS_Store'), 'junk');
  });

  it('orders classes: background alphabets sorted, then evaluation, characters naturally', () => {
    const ds = loadOmniglot(root, { size: 8, trainPerClass: 3 });
    expect(ds.name).toBe('omniglot');
    expect(ds.kind).toBe('custom');
    expect(ds.source).toBe(root);
    expect(ds.classNames).toEqual(expectedOrder);
    expect(ds.classGroups).toEqual(['Alpha', 'Alpha', 'Alpha', 'Zeta', 'Aardvark', 'Aardvark']);
    expect(ds.baseClasses).toEqual([0, 1, 2, 3]);
  });

  it('splits each class by sorted file name and inverts to bright ink on black', () => {
    const ds = loadOmniglot(root, { size: 8, trainPerClass: 3 });
    expect(ds.train.labels).toBeInstanceOf(Uint16Array);
    expect([ds.train.count, ds.test.count]).toEqual([6 * 3, 1 + 2 + 1 + 1 + 1 + 1]);
    expect([ds.train.rows, ds.train.cols, ds.train.channels]).toEqual([8, 8, 1]);
    expect(ds.train.images.length).toBe(18 * 64);
    for (let i = 0; i < ds.train.count; i++) {
      const label = ds.train.labels[i]!;
      expect(inkInRow(ds.train.images, i, 0)).toBe(label + 1);
      expect(inkInRow(ds.train.images, i, 1)).toBe((i % 3) + 1); // files 1..3 of the class, in order
      expect(ds.train.images.subarray(i * 64 + 16, i * 64 + 64).every((v) => v === 0)).toBe(true); // background black
    }
    expect(Array.from(ds.train.labels)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]);
    expect(Array.from(ds.test.labels)).toEqual([0, 0, 1, 2, 3, 4, 5]);
    expect([inkInRow(ds.test.images, 0, 1), inkInRow(ds.test.images, 1, 1), inkInRow(ds.test.images, 2, 1)]).toEqual([4, 5, 4]);
  });

  it('resizes with area averaging: ink fractions become grey levels', () => {
    const ds = loadOmniglot(root, { size: 4, trainPerClass: 3 });
    // Class 0 ("Alpha/character1"), file 1: row 0 has 1 ink pixel, row 1 has 1 → top-left 2x2 block is 2/4 ink.
    expect(ds.train.images[0]).toBe(128);
    // Class 2 file 3: row 0 has 3 ink pixels, row 1 has 3 → blocks (0,0) full, (1,0) half.
    const i = 8;
    expect(ds.train.labels[i]).toBe(2);
    expect(Array.from(ds.train.images.subarray(i * 16, i * 16 + 4))).toEqual([255, 128, 0, 0]);
  });

  it('uses 28x28 and 15 train images per class by default', () => {
    const big = join(tmp, 'omniglot-default');
    const dir = join(big, 'images_evaluation', 'Solo', 'character01');
    mkdirSync(dir, { recursive: true });
    for (let i = 1; i <= 20; i++) writeFileSync(join(dir, `0001_${String(i).padStart(2, '0')}.png`), glyphPng(105, 105, (x) => x < 105 * (i % 2)));
    const ds = loadOmniglot(big);
    expect([ds.train.count, ds.test.count, ds.train.rows, ds.train.cols]).toEqual([15, 5, 28, 28]);
    expect(ds.baseClasses).toEqual([]);
    // Odd files are all ink → all 255 after inversion; even files blank → all 0.
    expect(ds.train.images.subarray(0, 784).every((v) => v === 255)).toBe(true);
    expect(ds.train.images.subarray(784, 1568).every((v) => v === 0)).toBe(true);
  });

  it('loads thousands of 105x105 glyphs per second', () => {
    const fast = join(tmp, 'omniglot-speed');
    const n = 1200;
    for (let c = 0; c < n / 20; c++) {
      const dir = join(fast, 'images_background', 'Speed', `character${c + 1}`);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 20; i++) {
        writeFileSync(join(dir, `${c}_${String(i).padStart(2, '0')}.png`), glyphPng(105, 105, (x, y) => ((x - 52) ** 2 + (y - 52) ** 2) % (40 + c + i) < 9));
      }
    }
    const t0 = performance.now();
    const ds = loadOmniglot(fast);
    const seconds = (performance.now() - t0) / 1000;
    expect(ds.train.count + ds.test.count).toBe(n);
    // Typically ~5000/s here; the bound leaves room for slow CI machines.
    expect(n / seconds).toBeGreaterThan(500);
  });

  it('names the root when neither split folder exists', () => {
    const empty = join(tmp, 'not-omniglot');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'images_background.zip'), 'zip');
    expect(() => loadOmniglot(empty)).toThrow(DataFileError);
    expect(() => loadOmniglot(empty)).toThrow(`${empty}: not an Omniglot folder: neither images_background/ nor images_evaluation/ exists; found images_background.zip: extract it here first`);
  });

  it('names an empty class folder', () => {
    const bad = join(tmp, 'omniglot-empty-class');
    mkdirSync(join(bad, 'images_background', 'Alpha', 'character07'), { recursive: true });
    writeFileSync(join(bad, 'images_background', 'Alpha', 'character07', 'notes.txt'), 'x');
    expect(() => scanOmniglot(bad)).toThrow(`${join(bad, 'images_background', 'Alpha', 'character07')}: class folder Alpha/character07 contains no PNG images`);
  });

  it('names a corrupt PNG', () => {
    const bad = join(tmp, 'omniglot-corrupt');
    const dir = join(bad, 'images_evaluation', 'Beta', 'character01');
    mkdirSync(dir, { recursive: true });
    for (let i = 1; i <= 4; i++) writeFileSync(join(dir, `0001_0${i}.png`), glyphPng(8, 8, () => false));
    const broken = glyphPng(8, 8, () => false).subarray(0, 50);
    writeFileSync(join(dir, '0001_03.png'), broken);
    expect(() => loadOmniglot(bad, { size: 8, trainPerClass: 2 })).toThrow(new RegExp(`^${join(dir, '0001_03.png').replace(/[.]/g, '\\.')}: corrupt PNG data`));
  });

  it('names a class with too few images for the split', () => {
    const small = join(tmp, 'omniglot-small');
    writeOmniglot(small, { images_background: { Alpha: { character1: 15, character2: 16 } } }, new Map());
    expect(() => loadOmniglot(small)).toThrow(
      `${join(small, 'images_background', 'Alpha', 'character1')}: class Alpha/character1 has 15 images; trainPerClass 15 needs at least 16 so that some are left for testing`,
    );
    expect(loadOmniglot(small, { size: 8, trainPerClass: 14 }).test.count).toBe(3);
  });
});
