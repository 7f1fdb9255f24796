import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataFileError } from '../shared/datasets/labelled-dataset.js';
import {
  encodeIdx,
  loadIdxImageSet,
  parseIdx,
  readIdxFile,
} from '../shared/datasets/idx.js';
import {
  FASHION_MNIST_CLASSES,
  fashionMnistSubsetDir,
  loadFashionMnist,
  locateFashionMnist,
} from '../shared/datasets/fashion-mnist.js';

// Fixtures are built by hand (not with encodeIdx) so the parser is checked against the format itself.
function idxBytes(dtypeCode: number, dims: number[], payload: number[]): Uint8Array {
  const header = [0, 0, dtypeCode, dims.length];
  for (const d of dims) header.push((d >>> 24) & 0xff, (d >>> 16) & 0xff, (d >>> 8) & 0xff, d & 0xff);
  return Uint8Array.from([...header, ...payload]);
}

let dir: string;

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

function expectDataFileError(fn: () => unknown, file: string, reason: RegExp): DataFileError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DataFileError);
  const err = caught as DataFileError;
  expect(err.file).toBe(file);
  expect(err.message).toContain(file);
  expect(err.message).toMatch(reason);
  return err;
}

// 2 images of 2x3, labels [1, 0]
const IMG_PIXELS = [0, 1, 2, 3, 4, 255, 10, 20, 30, 40, 50, 60];
const imagesIdx = () => idxBytes(0x08, [2, 2, 3], IMG_PIXELS);
const labelsIdx = () => idxBytes(0x08, [2], [1, 0]);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'protofed-idx-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('parseIdx / readIdxFile', () => {
  it('round-trips u8 data from a plain file', () => {
    const arr = readIdxFile(write('u8.idx', imagesIdx()));
    expect(arr.dtype).toBe('u8');
    expect(arr.dims).toEqual([2, 2, 3]);
    expect(arr.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(arr.data)).toEqual(IMG_PIXELS);
  });

  it('detects gzip by magic bytes, not by file name', () => {
    const arr = readIdxFile(write('u8-compressed.bin', gzipSync(imagesIdx())));
    expect(arr.dims).toEqual([2, 2, 3]);
    expect(Array.from(arr.data)).toEqual(IMG_PIXELS);
  });

  it('decodes big-endian i16', () => {
    // 0x0102 = 258, 0xfffe = -2, 0x8000 = -32768, 0x7fff = 32767
    const arr = parseIdx(idxBytes(0x0b, [2, 2], [0x01, 0x02, 0xff, 0xfe, 0x80, 0x00, 0x7f, 0xff]), 'i16.idx');
    expect(arr.dtype).toBe('i16');
    expect(arr.dims).toEqual([2, 2]);
    expect(arr.data).toBeInstanceOf(Int16Array);
    expect(Array.from(arr.data)).toEqual([258, -2, -32768, 32767]);
  });

  it('decodes big-endian i32 and f32, and i8 as signed', () => {
    const i32 = parseIdx(idxBytes(0x0c, [2], [0x01, 0x02, 0x03, 0x04, 0xff, 0xff, 0xff, 0xff]), 'i32.idx');
    expect(Array.from(i32.data)).toEqual([0x01020304, -1]);
    // 1.5f = 0x3fc00000, -2f = 0xc0000000
    const f32 = parseIdx(idxBytes(0x0d, [2], [0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0]), 'f32.idx');
    expect(f32.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f32.data)).toEqual([1.5, -2]);
    const i8 = parseIdx(idxBytes(0x09, [3], [0x7f, 0x80, 0xff]), 'i8.idx');
    expect(Array.from(i8.data)).toEqual([127, -128, -1]);
  });

  it('round-trips every dtype through encodeIdx, plain and gzip', () => {
    const cases = [
      { dtype: 'u8', data: Uint8Array.from([0, 7, 255]) },
      { dtype: 'i8', data: Int8Array.from([-128, 0, 127]) },
      { dtype: 'i16', data: Int16Array.from([-32768, 1, 32767]) },
      { dtype: 'i32', data: Int32Array.from([-(2 ** 31), 123456789, 2 ** 31 - 1]) },
      { dtype: 'f32', data: Float32Array.from([-0.25, 3.5, 1e20]) },
      { dtype: 'f64', data: Float64Array.from([Math.PI, -1e-300, 42]) },
    ] as const;
    for (const c of cases) {
      const bytes = encodeIdx({ dtype: c.dtype, dims: [1, 3], data: c.data });
      for (const input of [bytes, gzipSync(bytes)]) {
        const arr = parseIdx(input, `${c.dtype}.idx`);
        expect(arr.dtype).toBe(c.dtype);
        expect(arr.dims).toEqual([1, 3]);
        expect(arr.data.constructor).toBe(c.data.constructor);
        expect(Array.from(arr.data)).toEqual(Array.from(c.data));
      }
    }
  });

  it('rejects a header that is too short', () => {
    const path = write('short-header.idx', Uint8Array.from([0, 0, 8]));
    expectDataFileError(() => readIdxFile(path), path, /truncated IDX header/);
  });

  it('rejects a header whose dims are cut off', () => {
    const full = imagesIdx();
    const path = write('cut-dims.idx', full.subarray(0, 10));
    expectDataFileError(() => readIdxFile(path), path, /truncated IDX header.*16-byte header/);
  });

  it('rejects data shorter than the dims say', () => {
    const full = imagesIdx();
    const path = write('short-data.idx', full.subarray(0, full.length - 1));
    expectDataFileError(() => readIdxFile(path), path, /truncated IDX data.*need 12 data bytes.*has 11/);
  });

  it('rejects truncated data in a gzip file', () => {
    const full = imagesIdx();
    const path = write('short-data.idx.gz', gzipSync(full.subarray(0, full.length - 5)));
    expectDataFileError(() => readIdxFile(path), path, /truncated IDX data/);
  });

  it('rejects huge dims without allocating or throwing RangeError', () => {
    const path = write('huge.idx', idxBytes(0x0e, [0xffffffff, 0xffffffff, 0xffffffff], [1, 2, 3]));
    expectDataFileError(() => readIdxFile(path), path, /truncated IDX data/);
  });

  it('rejects a wrong magic number', () => {
    const bytes = imagesIdx();
    bytes[0] = 0x50;
    bytes[1] = 0x4b;
    const path = write('zip.idx', bytes);
    expectDataFileError(() => readIdxFile(path), path, /bad IDX magic number.*0x50 0x4b/);
  });

  it('rejects an unknown dtype byte', () => {
    const path = write('dtype.idx', idxBytes(0x0a, [2], [1, 2]));
    expectDataFileError(() => readIdxFile(path), path, /unknown dtype byte 0x0a/);
  });

  it('rejects a zero dimension count', () => {
    const path = write('zero-dims.idx', Uint8Array.from([0, 0, 8, 0]));
    expectDataFileError(() => readIdxFile(path), path, /number of dimensions is 0/);
  });

  it('rejects corrupt gzip data', () => {
    const gz = gzipSync(imagesIdx());
    const garbled = Uint8Array.from([0x1f, 0x8b, 0x08, 0, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5]);
    const p1 = write('garbled.gz', garbled);
    expectDataFileError(() => readIdxFile(p1), p1, /corrupt gzip/);
    const p2 = write('truncated.gz', gz.subarray(0, gz.length - 10));
    expectDataFileError(() => readIdxFile(p2), p2, /corrupt gzip/);
  });

  it('rejects trailing garbage bytes', () => {
    const bytes = Uint8Array.from([...imagesIdx(), 9, 9, 9]);
    const path = write('trailing.idx', bytes);
    expectDataFileError(() => readIdxFile(path), path, /trailing garbage: 3 unexpected bytes/);
  });

  it('reports a missing file with its path', () => {
    const path = join(dir, 'does-not-exist.idx');
    expectDataFileError(() => readIdxFile(path), path, /cannot read file.*ENOENT/);
  });

  it('uses fileLabel in parseIdx errors', () => {
    expectDataFileError(() => parseIdx(Uint8Array.from([1]), 'in-memory:thing'), 'in-memory:thing', /truncated/);
  });
});

describe('loadIdxImageSet', () => {
  it('loads an image/label pair, mixing plain and gzip', () => {
    const set = loadIdxImageSet(write('set-images', imagesIdx()), write('set-labels.gz', gzipSync(labelsIdx())));
    expect(set).toMatchObject({ count: 2, rows: 2, cols: 3, channels: 1 });
    expect(Array.from(set.images)).toEqual(IMG_PIXELS);
    expect(Array.from(set.labels)).toEqual([1, 0]);
  });

  it('rejects an images file that is not 3-dimensional', () => {
    const images = write('images-2d', idxBytes(0x08, [2, 6], IMG_PIXELS));
    const labels = write('labels-ok', labelsIdx());
    expectDataFileError(() => loadIdxImageSet(images, labels), images, /not an IDX image file.*3-dimensional u8.*got 2-dimensional u8/);
  });

  it('rejects an images file that is not ubyte', () => {
    const images = write('images-i8', idxBytes(0x09, [2, 2, 3], IMG_PIXELS));
    const labels = write('labels-ok2', labelsIdx());
    expectDataFileError(() => loadIdxImageSet(images, labels), images, /not an IDX image file.*got 3-dimensional i8/);
  });

  it('rejects a labels file that is not 1-dimensional ubyte', () => {
    const images = write('images-ok', imagesIdx());
    const labels2d = write('labels-2d', idxBytes(0x08, [2, 1], [1, 0]));
    expectDataFileError(() => loadIdxImageSet(images, labels2d), labels2d, /not an IDX label file.*got 2-dimensional u8/);
    const labelsI16 = write('labels-i16', idxBytes(0x0b, [2], [0, 1, 0, 0]));
    expectDataFileError(() => loadIdxImageSet(images, labelsI16), labelsI16, /not an IDX label file.*got 1-dimensional i16/);
  });

  it('rejects a label count that differs from the image count', () => {
    const images = write('images-ok3', imagesIdx());
    const labels = write('labels-3', idxBytes(0x08, [3], [1, 0, 2]));
    const err = expectDataFileError(() => loadIdxImageSet(images, labels), labels, /label count 3 does not match image count 2/);
    expect(err.message).toContain(images);
  });
});

describe('Fashion-MNIST', () => {
  it('has the ten class names in label order', () => {
    expect(FASHION_MNIST_CLASSES).toEqual([
      'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
      'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
    ]);
  });

  it('ships the embedded subset: 5000 train / 1000 test, 28x28, 500/100 per class', () => {
    const splits = loadFashionMnist(fashionMnistSubsetDir());
    expect(splits.kind).toBe('custom');
    expect(splits.name).toBe('fashion-mnist');
    expect(splits.classNames).toEqual([...FASHION_MNIST_CLASSES]);
    const expectations = [
      { set: splits.train, count: 5000, perClass: 500 },
      { set: splits.test, count: 1000, perClass: 100 },
    ];
    for (const { set, count, perClass } of expectations) {
      expect(set).toMatchObject({ count, rows: 28, cols: 28, channels: 1 });
      expect(set.images.length).toBe(count * 28 * 28);
      expect(set.labels.length).toBe(count);
      const perLabel = new Array<number>(10).fill(0);
      for (const l of set.labels) {
        expect(l).toBeLessThan(10);
        perLabel[l] = (perLabel[l] ?? 0) + 1;
      }
      expect(perLabel).toEqual(new Array(10).fill(perClass));
    }
  });

  it('locates a dataset by default (full if installed, else the embedded subset)', () => {
    const loc = locateFashionMnist();
    expect(['full', 'embedded-subset']).toContain(loc.kind);
    if (loc.kind === 'embedded-subset') expect(loc.dir).toBe(fashionMnistSubsetDir());
  });

  it('loads a custom directory with plain (non-gzip) files', () => {
    const custom = mkdtempSync(join(dir, 'custom-'));
    for (const prefix of ['train', 't10k']) {
      writeFileSync(join(custom, `${prefix}-images-idx3-ubyte`), imagesIdx());
      writeFileSync(join(custom, `${prefix}-labels-idx1-ubyte`), labelsIdx());
    }
    const splits = loadFashionMnist(custom);
    expect(splits.kind).toBe('custom');
    expect(splits.source).toBe(custom);
    expect(splits.train.count).toBe(2);
    expect(Array.from(splits.test.labels)).toEqual([1, 0]);
  });

  it('errors clearly when an explicit directory lacks files, listing what is missing', () => {
    const partial = mkdtempSync(join(dir, 'partial-'));
    writeFileSync(join(partial, 'train-images-idx3-ubyte.gz'), gzipSync(imagesIdx()));
    const err = expectDataFileError(() => loadFashionMnist(partial), partial, /missing/);
    expect(err.message).toContain('train-labels-idx1-ubyte');
    expect(err.message).toContain('t10k-images-idx3-ubyte');
    expect(err.message).toContain('t10k-labels-idx1-ubyte');
    expect(err.message).not.toContain('train-images-idx3-ubyte');

    const absent = join(dir, 'no-such-dir');
    expectDataFileError(() => loadFashionMnist(absent), absent, /does not exist/);
  });

  it('rejects labels outside 0..9', () => {
    const custom = mkdtempSync(join(dir, 'badlabels-'));
    writeFileSync(join(custom, 'train-images-idx3-ubyte'), imagesIdx());
    writeFileSync(join(custom, 'train-labels-idx1-ubyte'), idxBytes(0x08, [2], [1, 10]));
    writeFileSync(join(custom, 't10k-images-idx3-ubyte'), imagesIdx());
    writeFileSync(join(custom, 't10k-labels-idx1-ubyte'), labelsIdx());
    const labels = join(custom, 'train-labels-idx1-ubyte');
    expectDataFileError(() => loadFashionMnist(custom), labels, /label 10 at index 1 is out of range/);
  });
});
