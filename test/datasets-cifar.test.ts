import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cifarRecordSize, loadCifar, loadCifar10, loadCifar100, locateCifar, readCifarLabels } from '../shared/datasets/cifar.js';
import { DataFileError } from '../shared/datasets/labelled-dataset.js';

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'protofed-cifar-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Channel c of pixel p of record r in file f: a value that tells them apart. */
function sample(f: number, r: number, c: number, p: number): number {
  return (f * 31 + r * 7 + c * 85 + p) & 0xff;
}

/** CIFAR records: label byte(s), then R, G and B planes of 1024 bytes. */
function records(f: number, labels: number[][]): Buffer {
  const recordSize = labels[0]!.length + 3072;
  const out = Buffer.alloc(labels.length * recordSize);
  labels.forEach((ls, r) => {
    const at = r * recordSize;
    ls.forEach((l, i) => (out[at + i] = l));
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) out[at + ls.length + c * 1024 + p] = sample(f, r, c, p);
  });
  return out;
}

const CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const CIFAR10_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];

function writeCifar10(dir: string, withMeta = true): void {
  mkdirSync(dir, { recursive: true });
  CIFAR10_FILES.forEach((name, f) => writeFileSync(join(dir, name), records(f, [[f], [(f + 3) % 10], [9]])));
  if (withMeta) writeFileSync(join(dir, 'batches.meta.txt'), `${CIFAR10_NAMES.join('\n')}\n\n`);
}

describe('CIFAR-10', () => {
  it('reads every batch, converting planar RGB to channels last', () => {
    const dir = join(tmp, 'c10', 'cifar-10-batches-bin');
    writeCifar10(dir);
    const ds = loadCifar10(join(tmp, 'c10'));
    expect(ds.name).toBe('cifar10');
    expect(ds.source).toBe(dir);
    expect(ds.classNames).toEqual(CIFAR10_NAMES);
    expect([ds.train.count, ds.test.count]).toEqual([15, 3]);
    expect([ds.train.rows, ds.train.cols, ds.train.channels]).toEqual([32, 32, 3]);
    expect(ds.train.labels).toBeInstanceOf(Uint16Array);
    expect(Array.from(ds.train.labels)).toEqual([0, 3, 9, 1, 4, 9, 2, 5, 9, 3, 6, 9, 4, 7, 9]);
    expect(Array.from(ds.test.labels)).toEqual([5, 8, 9]);
    // Record 1 of data_batch_3 is train image 7; its pixel p channel c must be sample(2, 1, c, p).
    const img = ds.train.images.subarray(7 * 3072, 8 * 3072);
    for (const p of [0, 1, 31, 32, 500, 1023]) for (let c = 0; c < 3; c++) expect(img[p * 3 + c]).toBe(sample(2, 1, c, p));
    const testImg = ds.test.images.subarray(2 * 3072, 3 * 3072);
    expect([testImg[3 * 100], testImg[3 * 100 + 1], testImg[3 * 100 + 2]]).toEqual([sample(5, 2, 0, 100), sample(5, 2, 1, 100), sample(5, 2, 2, 100)]);
  });

  it('accepts the files directly in the folder and falls back to numeric class names', () => {
    const dir = join(tmp, 'c10-flat');
    writeCifar10(dir, false);
    const ds = loadCifar(dir);
    expect(ds.name).toBe('cifar10');
    expect(ds.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });

  it('lists missing files', () => {
    const dir = join(tmp, 'c10-missing');
    writeCifar10(dir);
    rmSync(join(dir, 'data_batch_4.bin'));
    rmSync(join(dir, 'test_batch.bin'));
    expect(() => loadCifar10(dir)).toThrow(DataFileError);
    expect(() => loadCifar10(dir)).toThrow(`${dir}: CIFAR-10 data is missing: data_batch_4.bin, test_batch.bin`);
    const empty = join(tmp, 'c10-none');
    mkdirSync(empty);
    expect(() => loadCifar(empty)).toThrow(/c10-none: no CIFAR data: expected data_batch_1\.bin/);
  });

  it('rejects a truncated file, naming it', () => {
    const dir = join(tmp, 'c10-truncated');
    writeCifar10(dir);
    const file = join(dir, 'data_batch_2.bin');
    writeFileSync(file, records(1, [[1], [2]]).subarray(0, 3073 + 100));
    expect(() => loadCifar10(dir)).toThrow(
      `${file}: truncated or not a CIFAR-10 binary file: 3173 bytes is not a multiple of the 3073-byte record size (1 whole records and 100 bytes over)`,
    );
  });

  it('rejects a label out of range, naming the file and record', () => {
    const dir = join(tmp, 'c10-label');
    writeCifar10(dir);
    const file = join(dir, 'test_batch.bin');
    writeFileSync(file, records(5, [[1], [10]]));
    expect(() => loadCifar10(dir)).toThrow(`${file}: record 1: label 10 is out of range 0..9`);
    expect(() => readCifarLabels(file, 'cifar10')).toThrow(`${file}: record 1: label 10 is out of range 0..9`);
  });

  it('rejects a names file with the wrong number of names', () => {
    const dir = join(tmp, 'c10-names');
    writeCifar10(dir);
    writeFileSync(join(dir, 'batches.meta.txt'), 'cat\ndog\n');
    expect(() => loadCifar10(dir)).toThrow(`${join(dir, 'batches.meta.txt')}: lists 2 class names; CIFAR-10 has 10`);
  });
});

describe('CIFAR-100', () => {
  const fine = Array.from({ length: 100 }, (_, i) => `fine${i}`);
  const coarse = Array.from({ length: 20 }, (_, i) => `coarse${i}`);
  // Fine class k belongs to superclass k % 20 here.
  const trainLabels = Array.from({ length: 100 }, (_, k) => [k % 20, k]);
  const testLabels = [[7, 27], [19, 99]];

  function writeCifar100(dir: string, withNames = true): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'train.bin'), records(0, trainLabels));
    writeFileSync(join(dir, 'test.bin'), records(1, testLabels));
    if (withNames) {
      writeFileSync(join(dir, 'fine_label_names.txt'), fine.join('\n'));
      writeFileSync(join(dir, 'coarse_label_names.txt'), coarse.join('\r\n'));
    }
  }

  it('uses fine labels by default, with each class\'s superclass as its group', () => {
    const root = join(tmp, 'c100');
    writeCifar100(join(root, 'cifar-100-binary'));
    const ds = loadCifar(root);
    expect(ds.name).toBe('cifar100');
    expect(ds.classNames).toEqual(fine);
    expect(ds.classGroups).toEqual(Array.from({ length: 100 }, (_, k) => `coarse${k % 20}`));
    expect([ds.train.count, ds.test.count]).toEqual([100, 2]);
    expect(Array.from(ds.train.labels.subarray(0, 5))).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(ds.test.labels)).toEqual([27, 99]);
    expect(cifarRecordSize('cifar100')).toBe(3074);
    const img = ds.train.images.subarray(42 * 3072, 43 * 3072);
    for (const p of [0, 77, 1023]) for (let c = 0; c < 3; c++) expect(img[p * 3 + c]).toBe(sample(0, 42, c, p));
  });

  it('uses the 20 coarse labels when asked', () => {
    const root = join(tmp, 'c100');
    const ds = loadCifar100(root, { labels: 'coarse' });
    expect(ds.classNames).toEqual(coarse);
    expect(Array.from(ds.test.labels)).toEqual([7, 19]);
    expect(Array.from(ds.train.labels.subarray(18, 22))).toEqual([18, 19, 0, 1]);
    expect(ds.classGroups).toBeUndefined();
  });

  it('falls back to numeric names', () => {
    const dir = join(tmp, 'c100-bare');
    writeCifar100(dir, false);
    expect(loadCifar100(dir).classNames.slice(0, 3)).toEqual(['0', '1', '2']);
    expect(loadCifar100(dir, { labels: 'coarse' }).classNames).toHaveLength(20);
  });

  it('rejects truncated files and out-of-range fine or coarse labels', () => {
    const dir = join(tmp, 'c100-bad');
    writeCifar100(dir);
    writeFileSync(join(dir, 'test.bin'), records(1, [[3, 100]]));
    expect(() => loadCifar100(dir)).toThrow(`${join(dir, 'test.bin')}: record 0: fine label 100 is out of range 0..99`);
    writeFileSync(join(dir, 'test.bin'), records(1, [[20, 1]]));
    expect(() => loadCifar100(dir, { labels: 'fine' })).toThrow(`${join(dir, 'test.bin')}: record 0: coarse label 20 is out of range 0..19`);
    writeFileSync(join(dir, 'test.bin'), records(1, [[1, 1]]).subarray(0, 3073));
    expect(() => loadCifar100(dir)).toThrow(/test\.bin: truncated or not a CIFAR-100 binary file: 3073 bytes is not a multiple of the 3074-byte record size/);
    rmSync(join(dir, 'train.bin'));
    expect(() => locateCifar(dir, 'cifar100')).toThrow(`${dir}: CIFAR-100 data is missing: train.bin`);
  });

  it('refuses to guess between CIFAR-10 and CIFAR-100 in one folder', () => {
    const root = join(tmp, 'both');
    writeCifar10(join(root, 'cifar-10-batches-bin'));
    writeCifar100(join(root, 'cifar-100-binary'));
    expect(() => loadCifar(root)).toThrow(/holds both CIFAR-10 .* and CIFAR-100 .* files/);
    expect(loadCifar(root, { variant: 'cifar100' }).classNames).toHaveLength(100);
  });
});
