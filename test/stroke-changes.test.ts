import { describe, expect, it } from 'vitest';
import type { ImageSet } from '../shared/datasets/labelled-dataset.js';
import { strokeChanges, strokeComponents } from '../shared/datasets/stroke-changes.js';

const SIZE = 8;

/** Grey 8×8 images drawn from rows of characters: '#' full ink, '+' grey 100, '.' none. */
function images(...drawings: string[][]): ImageSet {
  const out = new Uint8Array(drawings.length * SIZE * SIZE);
  drawings.forEach((rows, i) => {
    expect(rows.length).toBe(SIZE);
    rows.forEach((row, y) => [...row].forEach((ch, x) => (out[i * SIZE * SIZE + y * SIZE + x] = ch === '#' ? 255 : ch === '+' ? 100 : 0)));
  });
  return { images: out, labels: new Int32Array(drawings.length), count: drawings.length, rows: SIZE, cols: SIZE, channels: 1 };
}

const ring = ['........', '.#####..', '.#...#..', '.#...#..', '.#####..', '........', '........', '........'];
const i = ['...#....', '........', '...#....', '...#....', '...#....', '...#....', '........', '........'];
const diagonal = ['#.......', '.#......', '..#.....', '...#....', '........', '........', '........', '........'];
const bar = ['...#....', '...#....', '...#....', '...#....', '...#....', '...#....', '........', '........'];
const brokenBar = ['...#....', '...#....', '...+....', '...#....', '...#....', '...#....', '........', '........'];
const thickRing = ['.######.', '.######.', '.##..##.', '.##..##.', '.######.', '.######.', '........', '........'];

describe('strokeComponents', () => {
  it('counts 8-connected groups of inked pixels: a ring 1, an i 2, a diagonal 1, nothing 0', () => {
    const set = images(ring, i, diagonal, Array(SIZE).fill('........'));
    expect([0, 1, 2, 3].map((k) => strokeComponents(set, k))).toEqual([1, 2, 1, 0]);
  });

  it('a grey pixel below the threshold breaks a stroke; at a lower threshold it joins it', () => {
    const set = images(brokenBar);
    expect(strokeComponents(set, 0)).toBe(2);
    expect(strokeComponents(set, 0, 96)).toBe(1);
  });

  it('rejects colour images and indices outside the set', () => {
    const colour: ImageSet = { images: new Uint8Array(3 * SIZE * SIZE), labels: new Int32Array(1), count: 1, rows: SIZE, cols: SIZE, channels: 3 };
    expect(() => strokeComponents(colour, 0)).toThrow(/grey images, got 3 channels/);
    expect(() => strokeComponents(images(ring), 1)).toThrow(/index 1 is outside the set of 1 images/);
  });
});

describe('strokeChanges', () => {
  it('marks the instances whose strokes the other pen broke, and measures the ink left', () => {
    const reference = images(bar, ring);
    const drawn = images(brokenBar, thickRing);
    const changes = strokeChanges(reference, drawn);
    expect(changes.changed).toEqual([true, false]);
    expect(changes.changedShare).toBe(0.5);
    // bar: 5 × 255 + 100 of 6 × 255; ring: 32 × 255 of 14 × 255.
    expect(changes.inkRatio).toBeCloseTo(((5 * 255 + 100) / (6 * 255) + 32 / 14) / 2, 12);
  });

  it('the same images change nothing', () => {
    const set = images(ring, i, bar);
    expect(strokeChanges(set, set)).toEqual({ inkRatio: 1, changed: [false, false, false], changedShare: 0 });
  });

  it('refuses sets that are not the same instances', () => {
    expect(() => strokeChanges(images(ring, i), images(ring))).toThrow(/same instances: got 2 images of 8×8×1 against 1 of 8×8×1/);
  });
});
