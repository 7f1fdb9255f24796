import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SeededRng } from '../shared/learning/rng.js';
import { augmentImages, morphPen, morphStroke, NO_AUGMENTATION } from '../pretrain/augment.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';

const SHAPE = { rows: 28, cols: 28, channels: 1 };

/** `n` 28×28 images of a bright ring (a stroke about 2 pixels wide) at slightly different places. */
function rings(n: number): Uint8Array {
  const out = new Uint8Array(n * 784);
  for (let k = 0; k < n; k++) {
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const r = Math.hypot(x + 0.5 - 14 - (k % 3), y + 0.5 - 14);
        out[k * 784 + y * 28 + x] = Math.round(255 * Math.max(0, Math.min(1, 1.5 - Math.abs(r - 7))));
      }
    }
  }
  return out;
}

const ink = (images: Uint8Array, k = 0): number => images.subarray(k * 784, (k + 1) * 784).reduce((s, v) => s + v, 0);

describe('training-image augmentation', () => {
  it('with every range at 0 it changes nothing', () => {
    const images = rings(6);
    const before = images.slice();
    augmentImages(images, 6, SHAPE, NO_AUGMENTATION, new SeededRng(1));
    expect(Buffer.compare(Buffer.from(images), Buffer.from(before))).toBe(0);
  });

  it('dilation adds ink and erosion removes it, a fractional step lies between, and a dilation covers the original', () => {
    const image = rings(1);
    const out = new Uint8Array(784);
    const base = ink(image);
    morphStroke(image, 28, 28, 1, out);
    const thick = ink(out);
    expect(thick).toBeGreaterThan(1.5 * base);
    for (let i = 0; i < 784; i++) expect(out[i]).toBeGreaterThanOrEqual(image[i]!);
    morphStroke(image, 28, 28, 0.5, out);
    expect(ink(out)).toBeGreaterThan(base);
    expect(ink(out)).toBeLessThan(thick);
    morphStroke(image, 28, 28, -1, out);
    expect(ink(out)).toBeLessThan(0.6 * base);
    morphStroke(image, 28, 28, 0, out);
    expect(Array.from(out)).toEqual(Array.from(image));
  });

  it('the 4×-resolution pen moves each side of a stroke by the pixels asked, in sub-pixel steps', () => {
    // A vertical bar 4 pixels wide, full ink, over rows 4–23; rows 10–17 are far from its ends.
    const bar = new Uint8Array(784);
    for (let y = 4; y < 24; y++) for (let x = 10; x < 14; x++) bar[y * 28 + x] = 255;
    const width = (image: Uint8Array): number[] => [10, 13, 17].map((y) => image.subarray(y * 28, (y + 1) * 28).reduce((s, v) => s + v, 0) / 255);
    for (const pixels of [-1, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1]) {
      const out = new Uint8Array(784);
      morphPen(bar, 28, 28, pixels, out);
      for (const w of width(out)) expect(w).toBeCloseTo(4 + 2 * pixels, 1);
    }
    // In place, and a fraction of a quarter step lies between the steps either side.
    const copy = bar.slice();
    morphPen(copy, 28, 28, -0.3, copy);
    for (const w of width(copy)) expect(w).toBeCloseTo(3.4, 1);
    // A ring: thinner pens remove ink, thicker ones add it, monotonically.
    const ring = rings(1);
    const inks = [-0.75, -0.5, -0.25, 0.25, 0.5, 0.75].map((pixels) => {
      const out = new Uint8Array(784);
      morphPen(ring, 28, 28, pixels, out);
      return ink(out);
    });
    for (let i = 1; i < inks.length; i++) expect(inks[i]!).toBeGreaterThan(inks[i - 1]!);
    expect(inks[2]!).toBeLessThan(ink(ring));
    expect(inks[3]!).toBeGreaterThan(ink(ring));
  });

  it('an area-preserving draw (rotation, shear, shift, elastic) keeps the ink of a centred shape within 10% and moves it; the same seed gives the same images', () => {
    const a = rings(8);
    const b = rings(8);
    const config = { ...NO_AUGMENTATION, rotationDegrees: 15, shear: 0.2, translation: 0.05, elastic: 0.02 };
    augmentImages(a, 8, SHAPE, config, new SeededRng(5));
    augmentImages(b, 8, SHAPE, config, new SeededRng(5));
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    const original = rings(8);
    for (let k = 0; k < 8; k++) {
      const ratio = ink(a, k) / ink(original, k);
      expect(ratio).toBeGreaterThan(0.9);
      expect(ratio).toBeLessThan(1.1);
      let moved = 0;
      for (let i = 0; i < 784; i++) moved += Math.abs(a[k * 784 + i]! - original[k * 784 + i]!);
      expect(moved).toBeGreaterThan(0.1 * ink(original, k));
    }
  });

  it('ink strength scales each image by its own factor within 2^±ink, saturating at 255', () => {
    const original = rings(12);
    const a = original.slice();
    augmentImages(a, 12, SHAPE, { ...NO_AUGMENTATION, ink: 1 }, new SeededRng(3));
    const factors = new Set<number>();
    for (let k = 0; k < 12; k++) {
      // The factor, from the brightest pixel that did not saturate.
      let best = -1;
      for (let j = 0; j < 784; j++) if (a[k * 784 + j]! < 255 && (best < 0 || original[k * 784 + j]! > original[k * 784 + best]!)) best = j;
      const factor = a[k * 784 + best]! / original[k * 784 + best]!;
      expect(factor).toBeGreaterThanOrEqual(0.49);
      expect(factor).toBeLessThanOrEqual(2.01);
      factors.add(Math.round(factor * 20));
      for (let j = 0; j < 784; j++) {
        const o = original[k * 784 + j]!;
        expect(Math.abs(a[k * 784 + j]! - Math.min(255, o * factor))).toBeLessThanOrEqual(1 + o * 0.01);
      }
    }
    expect(factors.size).toBeGreaterThan(5);
  });

  it('the shipped glyph recipe draws the images it drew when its model was trained (new options draw nothing when off)', () => {
    const images = rings(16);
    augmentImages(images, 16, SHAPE, { ...NO_AUGMENTATION, strokeWidth: 1, elastic: 0.02 }, new SeededRng(7).fork('augment-1'));
    expect(createHash('sha256').update(images).digest('hex').slice(0, 16)).toBe('a9fdca108b32a412');
  });

  it('the scenario schema takes the augmentation ranges and refuses unknown or out-of-range ones', () => {
    const parse = (augment: unknown) => parseScenario({
      name: 'x', dataset: { name: 'glyphs' }, missions: { count: 3, classesPerClient: 2, shotsPerClass: 5 }, pretrain: { augment },
    });
    const ok = parse({ strokeWidth: 1, elastic: 0.02 });
    expect(ok.pretrain!.augment).toEqual({ ...NO_AUGMENTATION, strokeWidth: 1, elastic: 0.02 });
    expect(ok.pretrain!.init).toBe('he-normal');
    expect(ok.pretrain!.adamEpsilon).toBe(1e-7);
    expect(() => parse({ strokeWidth: -1 })).toThrow(/strokeWidth/);
    expect(() => parse({ blur: 1 })).toThrow(/blur/);
    expect(() => parse({ rotationDegrees: 90 })).toThrow(/rotationDegrees/);
    expect(() => parse({ ink: 4 })).toThrow(/ink/);
    expect(() => parse({ pen: 3 })).toThrow(/pen/);
    const pens = (renderPens: unknown) => parseScenario({
      name: 'x', dataset: { name: 'glyphs' }, missions: { count: 3, classesPerClient: 2, shotsPerClass: 5 }, pretrain: { renderPens },
    }).pretrain!.renderPens;
    expect(pens(undefined)).toEqual([]);
    expect(pens([-2, 2])).toEqual([-2, 2]);
    expect(() => pens([0])).toThrow(/draws the images the set already has/);
    expect(() => pens([-1, -1])).toThrow(/must differ/);
    expect(() => pens([5])).toThrow(/renderPens/);
    expect(pens([-1.5, -0.5, 1])).toEqual([-1.5, -0.5, 1]);
    expect(() => pens([0.25])).toThrow(/whole or half number of steps/);
    expect(() => pens([-4.5])).toThrow(/renderPens/);
    const validateOnPens = (pretrain: object) => parseScenario({
      name: 'x', dataset: { name: 'glyphs' }, missions: { count: 3, classesPerClient: 2, shotsPerClass: 5 }, pretrain,
    }).pretrain!.validateOnPens;
    expect(validateOnPens({})).toBe(false);
    expect(validateOnPens({ renderPens: [-1], validateOnPens: true })).toBe(true);
    expect(() => validateOnPens({ validateOnPens: true })).toThrow(/validateOnPens.*set renderPens/);
    expect(parse({ pen: 0.75 }).pretrain!.augment!.pen).toBe(0.75);
  });
});
