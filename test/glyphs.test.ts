import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { morphPen, morphStroke } from '../pretrain/augment.js';
import { encodeIdx } from '../shared/datasets/idx.js';
import { DataFileError, type LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import { IMAGE_PACK_FILES, readImagePack, writeImagePack } from '../shared/datasets/image-pack.js';
import { strokeChanges } from '../shared/datasets/stroke-changes.js';
import {
  generateGlyphDataset,
  renderGlyphClasses,
  writeOmniglotLayout,
  type GlyphDataset,
  type GlyphScriptSpec,
} from '../shared/datasets/glyph-generator.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'protofed-glyphs-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let packCounter = 0;
function freshDir(): string {
  return join(dir, `pack-${packCounter++}`);
}

function expectDataFileError(fn: () => unknown, file: string, reason: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a DataFileError about ${file}`).toBeInstanceOf(DataFileError);
  const error = caught as DataFileError;
  expect(error.file).toBe(file);
  expect(error.message).toContain(file);
  expect(error.reason).toMatch(reason);
}

/** 3 classes, 4×5 images with `channels` channels: train 2 per class, test 1 per class, distinct pixels. */
function tinyDataset(channels = 1): LabelledDataset {
  const rows = 4;
  const cols = 5;
  const size = rows * cols * channels;
  const make = (count: number, offset: number, labels: number[]) => ({
    images: Uint8Array.from({ length: count * size }, (_, i) => (i * 7 + offset) % 256),
    labels: Int32Array.from(labels),
    count,
    rows,
    cols,
    channels,
  });
  return {
    name: 'tiny',
    source: 'memory',
    kind: 'test',
    classNames: ['a', 'b', 'c'],
    classGroups: ['g1', 'g1', 'g2'],
    baseClasses: [0, 1],
    train: make(6, 0, [0, 0, 1, 1, 2, 2]),
    test: make(3, 3, [2, 1, 0]),
  };
}

function writeTinyPack(): string {
  const out = freshDir();
  writeImagePack(out, tinyDataset());
  return out;
}

function writeGz(path: string, bytes: Uint8Array): void {
  writeFileSync(path, gzipSync(bytes));
}

describe('image pack', () => {
  it('round-trips greyscale and colour datasets, with meta', () => {
    for (const channels of [1, 3]) {
      const original = tinyDataset(channels);
      const out = freshDir();
      writeImagePack(out, { ...original, meta: { generator: { tool: 'test' }, credits: [{ source: 'me', license: 'MIT' }] } });
      const back = readImagePack(out);
      expect(back.name).toBe('tiny');
      expect(back.kind).toBe('pack');
      expect(back.source).toBe(resolve(out));
      expect(back.classNames).toEqual(original.classNames);
      expect(back.classGroups).toEqual(original.classGroups);
      expect(back.baseClasses).toEqual(original.baseClasses);
      expect(back.meta).toEqual({ generator: { tool: 'test' }, credits: [{ source: 'me', license: 'MIT' }] });
      for (const part of ['train', 'test'] as const) {
        expect(back[part].count).toBe(original[part].count);
        expect([back[part].rows, back[part].cols, back[part].channels]).toEqual([4, 5, channels]);
        expect(Array.from(back[part].images)).toEqual(Array.from(original[part].images));
        expect(Array.from(back[part].labels)).toEqual(Array.from(original[part].labels));
      }
    }
  });

  it('names a missing file', () => {
    for (const key of ['images', 'labels', 'split', 'manifest'] as const) {
      const out = writeTinyPack();
      const file = join(resolve(out), IMAGE_PACK_FILES[key]);
      unlinkSync(file);
      expectDataFileError(() => readImagePack(out), file, /missing/);
    }
  });

  it('names the folder when it does not exist', () => {
    const missing = resolve(join(dir, 'no-such-pack'));
    expectDataFileError(() => readImagePack(missing), missing, /not a folder/);
  });

  it('names the labels or split file when its count disagrees with the images', () => {
    const out = writeTinyPack();
    const labels = join(resolve(out), IMAGE_PACK_FILES.labels);
    writeGz(labels, encodeIdx({ dtype: 'i32', dims: [8], data: new Int32Array(8) }));
    expectDataFileError(() => readImagePack(out), labels, /has 8 labels but .* has 9 images/);

    const out2 = writeTinyPack();
    const split = join(resolve(out2), IMAGE_PACK_FILES.split);
    writeGz(split, encodeIdx({ dtype: 'u8', dims: [10], data: new Uint8Array(10) }));
    expectDataFileError(() => readImagePack(out2), split, /has 10 split flags but .* has 9 images/);
  });

  it('names the labels file when a label is outside the classes, and the split file for a bad flag', () => {
    const out = writeTinyPack();
    const labels = join(resolve(out), IMAGE_PACK_FILES.labels);
    writeGz(labels, encodeIdx({ dtype: 'i32', dims: [9], data: Int32Array.from([0, 0, 1, 1, 2, 2, 3, 1, 0]) }));
    expectDataFileError(() => readImagePack(out), labels, /image 6 has label 3, but .* lists 3 classes/);

    writeGz(labels, encodeIdx({ dtype: 'i32', dims: [9], data: Int32Array.from([0, 0, 1, 1, 2, 2, -1, 1, 0]) }));
    expectDataFileError(() => readImagePack(out), labels, /label -1/);

    const out2 = writeTinyPack();
    const split = join(resolve(out2), IMAGE_PACK_FILES.split);
    writeGz(split, encodeIdx({ dtype: 'u8', dims: [9], data: Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 2, 1]) }));
    expectDataFileError(() => readImagePack(out2), split, /image 7 has split flag 2/);
  });

  it('names an images file of the wrong type', () => {
    const out = writeTinyPack();
    const images = join(resolve(out), IMAGE_PACK_FILES.images);
    writeGz(images, encodeIdx({ dtype: 'f32', dims: [9, 4, 5], data: new Float32Array(180) }));
    expectDataFileError(() => readImagePack(out), images, /expected u8 images/);
    writeFileSync(images, Uint8Array.from([1, 2, 3]));
    expectDataFileError(() => readImagePack(out), images, /truncated IDX header/);
  });

  it('names dataset.json when it is not JSON, of another format or version, or inconsistent', () => {
    const out = writeTinyPack();
    const manifest = join(resolve(out), IMAGE_PACK_FILES.manifest);
    const good = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, unknown>;
    const cases: [unknown, RegExp][] = [
      ['{ "format": ', /not valid JSON/],
      [[1, 2], /expected a JSON object/],
      [{ ...good, format: 'something-else' }, /unknown format "something-else"/],
      [{ ...good, version: 2 }, /unsupported protofed-image-pack version 2/],
      [{ ...good, name: '' }, /"name"/],
      [{ ...good, classNames: [] }, /"classNames"/],
      [{ ...good, classGroups: ['g1'] }, /"classGroups" has 1 entries for 3 classes/],
      [{ ...good, baseClasses: [0, 7] }, /"baseClasses" holds 7/],
      [{ ...good, baseClasses: [1, 1] }, /lists class 1 twice/],
      [{ ...good, credits: [{ license: 'x' }] }, /"credits"/],
    ];
    for (const [content, reason] of cases) {
      writeFileSync(manifest, typeof content === 'string' ? content : JSON.stringify(content));
      expectDataFileError(() => readImagePack(out), manifest, reason);
    }
    // Fewer classes in the manifest than the labels use: the labels file is named.
    writeFileSync(manifest, JSON.stringify({ ...good, classNames: ['a', 'b'], classGroups: ['g', 'g'], baseClasses: [0] }));
    expectDataFileError(() => readImagePack(out), join(resolve(out), IMAGE_PACK_FILES.labels), /label 2, but .* lists 2 classes/);
  });
});

describe('glyph generator', () => {
  const tiny = { size: 28, instances: 4, maxClassesPerScript: 5, scripts: ['Greek', 'Runic'] };
  let first: GlyphDataset;

  beforeAll(() => {
    first = generateGlyphDataset({ ...tiny, seed: 3 });
  });

  function packBytes(dataset: GlyphDataset): Record<string, Buffer> {
    const out = freshDir();
    writeImagePack(out, dataset);
    return Object.fromEntries(Object.values(IMAGE_PACK_FILES).map((f) => [f, readFileSync(join(out, f))]));
  }

  it('is byte-identical for the same seed and differs for another seed', () => {
    const again = generateGlyphDataset({ ...tiny, seed: 3 });
    expect(packBytes(again)).toEqual(packBytes(first));
    const other = generateGlyphDataset({ ...tiny, seed: 4 });
    expect(Buffer.compare(Buffer.from(other.train.images), Buffer.from(first.train.images))).not.toBe(0);
  });

  it('makes classes of two alphabets, one background and one evaluation, with train and test instances', () => {
    expect(first.classNames.length).toBe(10);
    expect(new Set(first.classGroups)).toEqual(new Set(['Greek', 'Runic']));
    expect(first.train.count).toBe(10 * 3);
    expect(first.test.count).toBe(10 * 1);
    expect(first.train.rows).toBe(28);
    expect(first.train.cols).toBe(28);
    const baseGroups = new Set(first.baseClasses.map((c) => first.classGroups[c]));
    expect(baseGroups.size).toBe(1);
    const evalGroups = new Set(first.classGroups.filter((_, c) => !first.baseClasses.includes(c)));
    expect(evalGroups.size).toBe(1);
    expect([...baseGroups][0]).not.toBe([...evalGroups][0]);
    for (const [c, name] of first.classNames.entries()) {
      expect(name.startsWith(`${first.classGroups[c]}/U+`)).toBe(true);
      expect(name).toContain(String.fromCodePoint(first.codePoints[c]!));
    }
  });

  it('puts ink in every image, bright on dark', () => {
    for (const set of [first.train, first.test]) {
      const size = set.rows * set.cols;
      for (let i = 0; i < set.count; i++) {
        const image = set.images.subarray(i * size, (i + 1) * size);
        let ink = 0;
        for (const v of image) ink += v;
        expect(ink / 255, `image ${i} of ${set === first.train ? 'train' : 'test'}`).toBeGreaterThan(10);
        // The background (the corners) is dark.
        expect(image[0]! + image[set.cols - 1]! + image[size - 1]! + image[size - set.cols]!).toBeLessThan(255);
      }
    }
  });

  it('drops code points the font does not have and reports them', () => {
    const spec: GlyphScriptSpec = {
      name: 'Latin probe',
      ranges: [],
      // A, B, then Armenian Ա (not in Noto Sans), an unassigned code point, and a space (in the font, but no ink).
      codePoints: [0x41, 0x42, 0x531, 0x378, 0x20],
      fonts: ['@fontsource/noto-sans'],
    };
    const probe = generateGlyphDataset({ scripts: [spec, 'Runic'], instances: 2, maxClassesPerScript: 2, seed: 1 });
    expect(probe.codePoints.filter((_, c) => probe.classGroups[c] === 'Latin probe')).toEqual([0x41, 0x42]);
    const report = probe.meta.generator.scripts.find((s) => s.name === 'Latin probe')!;
    expect(report.dropped).toEqual({ notCovered: 2, empty: 1, missingGlyphBox: 0 });
    expect(report.droppedGlyphs).toEqual([
      { codePoint: 0x531, reason: 'not-covered' },
      { codePoint: 0x378, reason: 'not-covered' },
      { codePoint: 0x20, reason: 'empty' },
    ]);
  });

  it('skips a letter that looks the same as a class already taken', () => {
    const latin: GlyphScriptSpec = { name: 'L', ranges: [], codePoints: [0x41, 0x4f], fonts: ['@fontsource/noto-sans'] };
    // Greek capital alpha and omicron are drawn exactly like Latin A and O.
    const greek: GlyphScriptSpec = { name: 'G', ranges: [], codePoints: [0x391, 0x39f, 0x3bb], fonts: ['@fontsource/noto-sans'] };
    const d = generateGlyphDataset({ scripts: [latin, greek], instances: 2, seed: 1 });
    expect(d.codePoints).toEqual([0x41, 0x4f, 0x3bb]);
    const report = d.meta.generator.scripts.find((s) => s.name === 'G')!;
    expect(report.duplicates).toBe(2);
    expect(report.droppedGlyphs.map((g) => g.sameAs)).toEqual(['L/U+0041 A', 'L/U+004F O']);
  });

  it('writes the Omniglot layout, black ink on white', () => {
    const out = freshDir();
    const written = writeOmniglotLayout(out, first);
    expect(written).toBe(10 * 4);
    const base = first.classGroups[first.baseClasses[0]!]!;
    const evaluation = first.classGroups.find((_, c) => !first.baseClasses.includes(c))!;
    expect(readdirSync(join(out, 'images_background'))).toEqual([base]);
    expect(readdirSync(join(out, 'images_evaluation'))).toEqual([evaluation]);
    const characters = readdirSync(join(out, 'images_background', base)).sort();
    expect(characters).toEqual(['character01', 'character02', 'character03', 'character04', 'character05']);
    const files = readdirSync(join(out, 'images_background', base, 'character01')).sort();
    expect(files).toHaveLength(4);
    expect(files[0]).toMatch(/^\d{4}_01\.png$/);
    const png = PNG.sync.read(readFileSync(join(out, 'images_background', base, 'character01', files[0]!)));
    expect([png.width, png.height]).toEqual([28, 28]);
    // Corners white, some dark ink.
    expect(png.data[0]).toBe(255);
    expect(Math.min(...Array.from({ length: 28 * 28 }, (_, i) => png.data[i * 4]!))).toBeLessThan(100);
  });
});

describe('the committed glyph set data/glyphs-28', () => {
  const packDir = fileURLToPath(new URL('../data/glyphs-28', import.meta.url));
  /** Every 150th field class of the committed set, and the generator drawing them again with another pen. */
  const fieldSample = () => {
    const glyphs = readImagePack(packDir);
    const base = new Set(glyphs.baseClasses);
    const picked = glyphs.classNames.map((_, c) => c).filter((c) => !base.has(c)).filter((_, k) => k % 150 === 0);
    const g = glyphs.meta.generator as { seed: number; size: number; instances: number };
    const render = (penOffset: number) => renderGlyphClasses({ seed: g.seed, size: g.size, instances: g.instances, classNames: picked.map((c) => glyphs.classNames[c]!), labels: picked, penOffset });
    return { glyphs, picked, render };
  };

  it('loads with over 1000 classes of 25+ alphabets, 20 instances each, and a background/evaluation split by alphabet', () => {
    expect(existsSync(join(packDir, 'dataset.json'))).toBe(true);
    const glyphs = readImagePack(packDir);
    const classes = glyphs.classNames.length;
    expect(classes).toBeGreaterThanOrEqual(1000);
    const groups = glyphs.classGroups!;
    expect(new Set(groups).size).toBeGreaterThanOrEqual(25);
    expect([glyphs.train.rows, glyphs.train.cols, glyphs.train.channels]).toEqual([28, 28, 1]);

    const perClass = new Int32Array(classes);
    const trainPerClass = new Int32Array(classes);
    for (let i = 0; i < glyphs.train.count; i++) {
      perClass[glyphs.train.labels[i]!]!++;
      trainPerClass[glyphs.train.labels[i]!]!++;
    }
    for (let i = 0; i < glyphs.test.count; i++) perClass[glyphs.test.labels[i]!]!++;
    expect(Array.from(perClass).every((n) => n === 20)).toBe(true);
    expect(Array.from(trainPerClass).every((n) => n === 15)).toBe(true);

    const base = new Set(glyphs.baseClasses);
    expect(base.size).toBeGreaterThan(0);
    expect(base.size).toBeLessThan(classes);
    const baseAlphabets = new Set([...base].map((c) => groups[c]!));
    const evaluationAlphabets = new Set(groups.filter((_, c) => !base.has(c)));
    for (const alphabet of baseAlphabets) expect(evaluationAlphabets.has(alphabet)).toBe(false);
    expect(glyphs.meta.credits?.length).toBeGreaterThan(0);
  });

  it('its field classes render again with the same drawers: identical with the same pen, less ink with a thinner one, more with a thicker one', () => {
    const { glyphs, picked, render } = fieldSample();
    expect(picked.length).toBeGreaterThanOrEqual(5);
    const same = render(0);
    // Image k of a class in the committed pack is its k-th train (or test) image, in order.
    for (const split of ['train', 'test'] as const) {
      const committed = glyphs[split];
      const rendered = same[split];
      expect(Array.from(rendered.labels)).toEqual(picked.flatMap((c) => Array(split === 'train' ? 15 : 5).fill(c)));
      const rows = picked.flatMap((c) => Array.from(committed.labels).flatMap((l, i) => (l === c ? [i] : [])));
      rows.forEach((row, i) => {
        expect(Buffer.compare(Buffer.from(committed.images.subarray(row * 784, (row + 1) * 784)), Buffer.from(rendered.images.subarray(i * 784, (i + 1) * 784)))).toBe(0);
      });
    }
    const ink = (images: Uint8Array, i: number): number => images.subarray(i * 784, (i + 1) * 784).reduce((s, v) => s + v, 0);
    const thin = render(-2);
    const thick = render(2);
    for (let i = 0; i < same.train.count; i++) {
      expect(ink(thin.train.images, i)).toBeLessThan(ink(same.train.images, i));
      expect(ink(thick.train.images, i)).toBeGreaterThan(ink(same.train.images, i));
    }
  });

  it('a thinner pen breaks more of the field glyphs\' strokes the thinner it is, and leaves less ink', () => {
    const { render } = fieldSample();
    const same = render(0).train;
    const [two, one, none] = [-2, -1, 0].map((penOffset) => strokeChanges(same, render(penOffset).train));
    expect(none!.changedShare).toBe(0);
    expect(one!.changedShare).toBeGreaterThan(0.1);
    expect(two!.changedShare).toBeGreaterThan(one!.changedShare + 0.1);
    expect(two!.inkRatio).toBeLessThan(one!.inkRatio);
    expect(one!.inkRatio).toBeLessThan(0.8);
  });

  it('a half-step pen draws between its two neighbours, and other fractions are refused', () => {
    const { render } = fieldSample();
    const total = (images: Uint8Array): number => images.reduce((s, v) => s + v, 0);
    const [one, half, two] = [-1, -1.5, -2].map((penOffset) => render(penOffset).train.images);
    expect(total(half!)).toBeLessThan(total(one!));
    expect(total(half!)).toBeGreaterThan(total(two!));
    const thick = [1, 1.5, 2].map((penOffset) => total(render(penOffset).train.images));
    expect(thick[1]).toBeGreaterThan(thick[0]!);
    expect(thick[1]).toBeLessThan(thick[2]!);
    expect(() => render(-1.3)).toThrow(/penOffset must be a whole or half number of pen steps, got -1.3/);
  });

  it('the pen augmentation at 4× resolution (morphPen) draws the generator\'s thinner and thicker pens closer than 3×3 morphology at 28×28 does', () => {
    const { render } = fieldSample();
    const same = render(0).train;
    const rmse = (target: Uint8Array, change: (image: Uint8Array, out: Uint8Array) => void): number => {
      let sum = 0;
      const out = new Uint8Array(784);
      for (let i = 0; i < same.count; i++) {
        change(same.images.subarray(i * 784, (i + 1) * 784), out);
        for (let j = 0; j < 784; j++) sum += (out[j]! - target[i * 784 + j]!) ** 2;
      }
      return Math.sqrt(sum / (same.count * 784));
    };
    for (const [penOffset, pixels] of [[-2, -0.5], [2, 0.375]] as const) {
      const target = render(penOffset).train.images;
      const sign = Math.sign(pixels);
      const lowRes = Math.min(...[0.25, 0.5, 0.75].map((steps) => rmse(target, (image, out) => morphStroke(image, 28, 28, sign * steps, out))));
      const unchanged = rmse(target, (image, out) => out.set(image));
      const pen = rmse(target, (image, out) => morphPen(image, 28, 28, pixels, out));
      expect(pen).toBeLessThan(0.9 * lowRes);
      expect(pen).toBeLessThan(0.7 * unchanged);
    }
  });
});

describe('a lighter install', () => {
  it('the generator\'s rendering packages are development dependencies only, and the glyphs command names every one it needs', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).filter((d) => d.startsWith('@fontsource/') || d === '@napi-rs/canvas')).toEqual([]);
    const { glyphToolPackages } = await import('../shared/datasets/glyph-tools.js');
    const named = glyphToolPackages().map((p) => p.replace(/@[^@]+$/, ''));
    expect(named).toContain('@napi-rs/canvas');
    // Every font package the generator's scripts use is among them.
    const source = readFileSync('shared/datasets/glyph-generator.ts', 'utf8');
    const used = new Set([...source.matchAll(/'(@fontsource\/[a-z-]+)'/g)].map((m) => m[1]!));
    for (const m of source.matchAll(/(SANS|SERIF)\('([a-z-]+)'\)/g)) used.add(`@fontsource/noto-${m[1] === 'SANS' ? 'sans' : 'serif'}-${m[2]}`);
    expect(used.size).toBeGreaterThan(40);
    for (const id of used) expect(named, id).toContain(id);
  });
});
