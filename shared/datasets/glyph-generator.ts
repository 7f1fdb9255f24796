import { GlobalFonts, createCanvas, type Canvas, type SKRSContext2D } from '@napi-rs/canvas';
import { GLYPH_DEFAULTS } from './glyph-defaults.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import { SeededRng } from '../learning/rng.js';
import { fontCoverage } from './font-coverage.js';
import { bilinearAt } from './pixel-ops.js';
import type { ImagePackCredit, ImagePackMeta } from './image-pack.js';
import { DataFileError, type ImageSet, type LabelledDataset } from './labelled-dataset.js';

/*
 * An Omniglot-like many-class benchmark rendered from open-licensed fonts: every class is one
 * Unicode letter of one script (the "alphabet"), and its instances ("drawers") vary the font,
 * the weight, the slant, an affine distortion and a smooth elastic displacement.
 */

// ---------------------------------------------------------------------------------------------
// Scripts

type LetterCategory = 'Lu' | 'Ll' | 'Lo';

/** One alphabet of the glyph benchmark: which code points are its letters and which fonts draw them. */
export interface GlyphScriptSpec {
  /** Display name, e.g. 'Canadian Aboriginal Syllabics'; also the alphabet (class group) name. */
  name: string;
  /** Unicode Script property value the letters must have, e.g. 'Canadian_Aboriginal'. */
  unicodeScript?: string;
  /** Inclusive code point ranges whose letters are taken first, in code point order. */
  ranges: readonly (readonly [number, number])[];
  /** More ranges, sampled with the seed to fill the script up to its cap. */
  extraRanges?: readonly (readonly [number, number])[];
  /** General categories that count as letters here (default Lu, Ll and Lo). */
  categories?: readonly LetterCategory[];
  /** Explicit code points, taken as they are (no category or script filter), before `ranges`. */
  codePoints?: readonly number[];
  /** npm font packages (fontsource layout); the first is the reference font for the checks. */
  fonts: readonly string[];
  /** At most this many classes (default: the generator's `maxClassesPerScript`). */
  cap?: number;
}

const SANS = (script: string): string => `@fontsource/noto-sans-${script}`;
const SERIF = (script: string): string => `@fontsource/noto-serif-${script}`;
const LGC_FONTS = ['@fontsource/noto-sans', '@fontsource/noto-serif'] as const;

function every(start: number, end: number, step: number): [number, number][] {
  const out: [number, number][] = [];
  for (let cp = start; cp <= end; cp += step) out.push([cp, cp]);
  return out;
}

/**
 * The built-in alphabets. Cased scripts use one case (or both where the shapes differ), so that
 * classes are not the same shape at two sizes; letters that decompose (accented forms) are skipped.
 */
export const GLYPH_SCRIPTS: readonly GlyphScriptSpec[] = Object.freeze([
  { name: 'Latin', unicodeScript: 'Latin', ranges: [[0x41, 0x5a]], extraRanges: [[0xc0, 0x24f]], categories: ['Lu'], fonts: LGC_FONTS, cap: 40 },
  { name: 'Greek', unicodeScript: 'Greek', ranges: [[0x391, 0x3c9]], categories: ['Lu', 'Ll'], fonts: LGC_FONTS },
  { name: 'Cyrillic', unicodeScript: 'Cyrillic', ranges: [[0x410, 0x42f]], extraRanges: [[0x400, 0x40f], [0x460, 0x52f]], categories: ['Lu'], fonts: LGC_FONTS },
  { name: 'Armenian', unicodeScript: 'Armenian', ranges: [[0x531, 0x556]], extraRanges: [[0x561, 0x586]], fonts: [SANS('armenian'), SERIF('armenian')] },
  { name: 'Georgian', unicodeScript: 'Georgian', ranges: [[0x10d0, 0x10fa]], extraRanges: [[0x10a0, 0x10c5]], fonts: [SANS('georgian'), SERIF('georgian')] },
  { name: 'Hebrew', unicodeScript: 'Hebrew', ranges: [[0x5d0, 0x5ea]], fonts: [SANS('hebrew'), SERIF('hebrew')] },
  { name: 'Arabic', unicodeScript: 'Arabic', ranges: [[0x621, 0x64a]], extraRanges: [[0x66e, 0x6d3]], fonts: [SANS('arabic'), '@fontsource/noto-naskh-arabic'] },
  { name: 'Syriac', unicodeScript: 'Syriac', ranges: [[0x710, 0x72f], [0x74d, 0x74f]], fonts: [SANS('syriac')] },
  { name: 'Thaana', unicodeScript: 'Thaana', ranges: [[0x780, 0x7a5]], fonts: [SANS('thaana')] },
  { name: "N'Ko", unicodeScript: 'Nko', ranges: [[0x7ca, 0x7ea]], fonts: [SANS('nko')] },
  { name: 'Devanagari', unicodeScript: 'Devanagari', ranges: [[0x904, 0x939]], extraRanges: [[0x972, 0x97f]], fonts: [SANS('devanagari'), SERIF('devanagari')] },
  { name: 'Bengali', unicodeScript: 'Bengali', ranges: [[0x985, 0x9b9]], extraRanges: [[0x9dc, 0x9f1]], fonts: [SANS('bengali'), SERIF('bengali')] },
  { name: 'Gurmukhi', unicodeScript: 'Gurmukhi', ranges: [[0xa05, 0xa39]], extraRanges: [[0xa59, 0xa74]], fonts: [SANS('gurmukhi')] },
  { name: 'Gujarati', unicodeScript: 'Gujarati', ranges: [[0xa85, 0xab9]], extraRanges: [[0xae0, 0xae1]], fonts: [SANS('gujarati')] },
  { name: 'Oriya', unicodeScript: 'Oriya', ranges: [[0xb05, 0xb39]], extraRanges: [[0xb5c, 0xb71]], fonts: [SANS('oriya')] },
  { name: 'Tamil', unicodeScript: 'Tamil', ranges: [[0xb85, 0xbb9]], fonts: [SANS('tamil'), SERIF('tamil')] },
  { name: 'Telugu', unicodeScript: 'Telugu', ranges: [[0xc05, 0xc39]], extraRanges: [[0xc58, 0xc61]], fonts: [SANS('telugu')] },
  { name: 'Kannada', unicodeScript: 'Kannada', ranges: [[0xc85, 0xcb9]], extraRanges: [[0xcde, 0xce1]], fonts: [SANS('kannada')] },
  { name: 'Malayalam', unicodeScript: 'Malayalam', ranges: [[0xd05, 0xd3a]], extraRanges: [[0xd54, 0xd61], [0xd7a, 0xd7f]], fonts: [SANS('malayalam')] },
  { name: 'Sinhala', unicodeScript: 'Sinhala', ranges: [[0xd85, 0xdc6]], fonts: [SANS('sinhala')] },
  { name: 'Thai', unicodeScript: 'Thai', ranges: [[0xe01, 0xe2e]], extraRanges: [[0xe2f, 0xe45]], fonts: [SANS('thai'), SERIF('thai')] },
  { name: 'Lao', unicodeScript: 'Lao', ranges: [[0xe81, 0xeb0]], extraRanges: [[0xebd, 0xedf]], fonts: [SANS('lao')] },
  { name: 'Tibetan', unicodeScript: 'Tibetan', ranges: [[0xf40, 0xf6c]], extraRanges: [[0xf88, 0xf8c]], fonts: [SERIF('tibetan')] },
  { name: 'Myanmar', unicodeScript: 'Myanmar', ranges: [[0x1000, 0x102a]], extraRanges: [[0x103f, 0x103f], [0x1050, 0x1055]], fonts: [SANS('myanmar')] },
  { name: 'Khmer', unicodeScript: 'Khmer', ranges: [[0x1780, 0x17b3]], fonts: [SANS('khmer'), SERIF('khmer')] },
  // The first order (vowel ä) of each Ethiopic consonant first, then other orders.
  { name: 'Ethiopic', unicodeScript: 'Ethiopic', ranges: every(0x1200, 0x1357, 8), extraRanges: [[0x1200, 0x135a]], fonts: [SANS('ethiopic')] },
  { name: 'Cherokee', unicodeScript: 'Cherokee', ranges: [[0x13a0, 0x13f5]], categories: ['Lu'], fonts: [SANS('cherokee')] },
  { name: 'Canadian Aboriginal Syllabics', unicodeScript: 'Canadian_Aboriginal', ranges: [], extraRanges: [[0x1401, 0x166c]], fonts: [SANS('canadian-aboriginal')] },
  { name: 'Ogham', unicodeScript: 'Ogham', ranges: [[0x1681, 0x169a]], fonts: [SANS('ogham')] },
  { name: 'Runic', unicodeScript: 'Runic', ranges: [[0x16a0, 0x16ea]], fonts: [SANS('runic')] },
  { name: 'Tagalog', unicodeScript: 'Tagalog', ranges: [[0x1700, 0x1711], [0x171f, 0x171f]], fonts: [SANS('tagalog')] },
  { name: 'Mongolian', unicodeScript: 'Mongolian', ranges: [[0x1820, 0x1842]], extraRanges: [[0x1843, 0x1878]], fonts: [SANS('mongolian')] },
  { name: 'Balinese', unicodeScript: 'Balinese', ranges: [[0x1b05, 0x1b33]], extraRanges: [[0x1b45, 0x1b4c]], fonts: [SANS('balinese')] },
  { name: 'Javanese', unicodeScript: 'Javanese', ranges: [[0xa984, 0xa9b2]], fonts: [SANS('javanese')] },
  { name: 'Ol Chiki', unicodeScript: 'Ol_Chiki', ranges: [[0x1c5a, 0x1c77]], fonts: [SANS('ol-chiki')] },
  { name: 'Glagolitic', unicodeScript: 'Glagolitic', ranges: [[0x2c00, 0x2c2f]], categories: ['Lu'], fonts: [SANS('glagolitic')] },
  { name: 'Coptic', unicodeScript: 'Coptic', ranges: [[0x2c80, 0x2ce3]], extraRanges: [[0x3e2, 0x3ef]], categories: ['Lu'], fonts: [SANS('coptic')] },
  { name: 'Tifinagh', unicodeScript: 'Tifinagh', ranges: [[0x2d30, 0x2d67]], fonts: [SANS('tifinagh')] },
  { name: 'Vai', unicodeScript: 'Vai', ranges: [], extraRanges: [[0xa500, 0xa60b], [0xa610, 0xa61f], [0xa62a, 0xa62b]], fonts: [SANS('vai')] },
  { name: 'Adlam', unicodeScript: 'Adlam', ranges: [[0x1e900, 0x1e921]], categories: ['Lu'], fonts: [SANS('adlam')] },
  { name: 'Osage', unicodeScript: 'Osage', ranges: [[0x104b0, 0x104d3]], categories: ['Lu'], fonts: [SANS('osage')] },
  { name: 'Deseret', unicodeScript: 'Deseret', ranges: [[0x10400, 0x10427]], categories: ['Lu'], fonts: [SANS('deseret')] },
] satisfies GlyphScriptSpec[]);

/**
 * The alphabet's folder name in the Omniglot layout.
 *
 * @example
 * omniglotAlphabetFolder("N'Ko"); // 'N_Ko'
 * omniglotAlphabetFolder('Canadian Aboriginal Syllabics'); // 'Canadian_Aboriginal_Syllabics'
 */
export function omniglotAlphabetFolder(script: string): string {
  return script.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '');
}

// ---------------------------------------------------------------------------------------------
// Font packages and their cmaps

interface FontPackage {
  id: string;
  dir: string;
  family: string;
  version: string;
  weights: number[];
  styles: string[];
  subsets: string[];
  licenseText: string;
  licenseUrl: string | undefined;
  packageAuthor: string | undefined;
}

/** One font file: a package's subset at one weight and style. */
interface FontFace {
  pkg: FontPackage;
  subset: string;
  weight: number;
  style: 'normal' | 'italic';
  path: string;
}

const requireFromHere = createRequire(import.meta.url);
const packageCache = new Map<string, FontPackage>();

function loadFontPackage(id: string): FontPackage {
  const cached = packageCache.get(id);
  if (cached) return cached;
  let packageJsonPath: string;
  try {
    packageJsonPath = requireFromHere.resolve(`${id}/package.json`);
  } catch {
    throw new DataFileError(id, `font package not installed: the glyph generator needs ${id}, a development dependency of protofed (run npm install --include=dev in the protofed folder)`);
  }
  const dir = dirname(packageJsonPath);
  const metadataPath = join(dir, 'metadata.json');
  let metadata: { family?: string; weights?: number[]; styles?: string[]; subsets?: string[]; license?: { url?: string } };
  let packageJson: { version?: string; author?: string };
  try {
    metadata = JSON.parse(readFileSync(metadataPath, 'utf8'));
    packageJson = JSON.parse(readFileSync(packageJsonPath, 'utf8'));
  } catch (err) {
    throw new DataFileError(metadataPath, `cannot read the fontsource metadata (${(err as Error).message})`);
  }
  if (!metadata.family || !metadata.weights?.length || !metadata.styles?.length || !metadata.subsets?.length) {
    throw new DataFileError(metadataPath, 'expected fontsource metadata with family, weights, styles and subsets');
  }
  const licensePath = join(dir, 'LICENSE');
  const pkg: FontPackage = {
    id,
    dir,
    family: metadata.family,
    version: packageJson.version ?? 'unknown',
    weights: metadata.weights,
    styles: metadata.styles,
    subsets: metadata.subsets,
    licenseText: existsSync(licensePath) ? readFileSync(licensePath, 'utf8') : '',
    licenseUrl: metadata.license?.url,
    packageAuthor: packageJson.author,
  };
  packageCache.set(id, pkg);
  return pkg;
}

function facePath(pkg: FontPackage, subset: string, weight: number, style: string): string {
  const base = pkg.id.replace(/^@fontsource\//, '');
  return join(pkg.dir, 'files', `${base}-${subset}-${weight}-${style}.woff`);
}

/** The face of `pkg` at this weight and style whose cmap maps `cp`, or undefined. */
function faceFor(pkg: FontPackage, cp: number, weight: number, style: 'normal' | 'italic'): FontFace | undefined {
  for (const subset of pkg.subsets) {
    const path = facePath(pkg, subset, weight, style);
    if (!existsSync(path)) continue;
    if (fontCoverage(path).has(cp)) return { pkg, subset, weight, style, path };
  }
  return undefined;
}

function referenceWeight(pkg: FontPackage): number {
  return pkg.weights.reduce((best, w) => (Math.abs(w - 400) < Math.abs(best - 400) ? w : best), pkg.weights[0]!);
}

const registeredFaces = new Map<string, string>();

/** Registers a face with the canvas under its own family name, once per process. */
function canvasFamily(face: FontFace): string {
  const existing = registeredFaces.get(face.path);
  if (existing) return existing;
  const family = `protofed ${face.pkg.id.replace(/^@fontsource\//, '')} ${face.subset} ${face.weight} ${face.style}`;
  const key = GlobalFonts.registerFromPath(face.path, family);
  if (!key) throw new DataFileError(face.path, 'the canvas could not load this font file');
  registeredFaces.set(face.path, family);
  return family;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** An alpha mask of one glyph, cropped to its ink. */
interface GlyphMask {
  data: Uint8Array;
  width: number;
  height: number;
  /** Font size the glyph was drawn at, in pixels. */
  fontPx: number;
}

class GlyphRasterizer {
  private canvas: Canvas | undefined;
  private ctx: SKRSContext2D | undefined;
  private side = 0;
  private readonly cache = new Map<string, GlyphMask>();

  /** Draws `cp` in `face` at `fontPx` and crops to the ink (alpha above zero). */
  mask(face: FontFace, cp: number, fontPx: number): GlyphMask {
    const key = `${face.path}|${cp}|${fontPx}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const side = Math.ceil(fontPx * 3);
    if (!this.canvas || this.side !== side) {
      this.canvas = createCanvas(side, side);
      this.ctx = this.canvas.getContext('2d');
      this.side = side;
    }
    const ctx = this.ctx!;
    ctx.clearRect(0, 0, side, side);
    ctx.fillStyle = '#ffffff';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'alphabetic';
    ctx.font = `${face.style} ${face.weight} ${fontPx}px "${canvasFamily(face)}"`;
    ctx.fillText(String.fromCodePoint(cp), side / 2, side * 0.6);
    const rgba = ctx.getImageData(0, 0, side, side).data;
    let x0 = side;
    let y0 = side;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        if (rgba[(y * side + x) * 4 + 3]! === 0) continue;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    let mask: GlyphMask;
    if (x1 < 0) {
      mask = { data: new Uint8Array(0), width: 0, height: 0, fontPx };
    } else {
      const width = x1 - x0 + 1;
      const height = y1 - y0 + 1;
      const data = new Uint8Array(width * height);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) data[y * width + x] = rgba[((y + y0) * side + x + x0) * 4 + 3]!;
      }
      mask = { data, width, height, fontPx };
    }
    this.cache.set(key, mask);
    return mask;
  }

  clear(): void {
    this.cache.clear();
  }
}

/** Ink amount of a mask, in fully inked pixels. */
function inkOf(mask: GlyphMask): number {
  let sum = 0;
  for (let i = 0; i < mask.data.length; i++) sum += mask.data[i]!;
  return sum / 255;
}

/**
 * Grey-level dilation (k > 0) or erosion (k < 0) with a 3×3 square, |k| times: a thicker or thinner
 * pen. A half step (k = ±1.5, …) ends with a 2×2 square, which moves one edge of every stroke
 * instead of both.
 */
function morph(mask: GlyphMask, k: number): GlyphMask {
  if (k === 0) return mask;
  const pad = Math.max(0, Math.ceil(k));
  const width = mask.width + 2 * pad;
  const height = mask.height + 2 * pad;
  let cur = new Uint8Array(width * height);
  for (let y = 0; y < mask.height; y++) cur.set(mask.data.subarray(y * mask.width, (y + 1) * mask.width), (y + pad) * width + pad);
  const dilate = k > 0;
  for (let step = 0; step < Math.abs(k); step++) {
    const from = Math.abs(k) - step === 0.5 ? 0 : -1;
    const next = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let v = dilate ? 0 : 255;
        for (let dy = from; dy <= 1; dy++) {
          const yy = y + dy;
          for (let dx = from; dx <= 1; dx++) {
            const xx = x + dx;
            const s = yy < 0 || yy >= height || xx < 0 || xx >= width ? 0 : cur[yy * width + xx]!;
            v = dilate ? (s > v ? s : v) : s < v ? s : v;
          }
        }
        next[y * width + x] = v;
      }
    }
    cur = next;
  }
  return { data: cur, width, height, fontPx: mask.fontPx };
}

/** How one instance is drawn: a 2×2 linear map (applied about the glyph centre), a shift and an elastic field. */
interface Distortion {
  /** Row-major 2×2 matrix [a, b; c, d] mapping glyph-centred source pixels to output pixels (before the fit scale). */
  matrix: [number, number, number, number];
  /** Shift of the glyph centre, as a fraction of the image side. */
  shiftX: number;
  shiftY: number;
  /** Elastic displacement at the (grid+1)² control points, as fractions of the image side. */
  elastic: Float64Array | undefined;
  grid: number;
}

const IDENTITY: Distortion = { matrix: [1, 0, 0, 1], shiftX: 0, shiftY: 0, elastic: undefined, grid: 0 };

/** Fraction of the image side that the larger side of an undistorted glyph spans. */
const FIT_FRACTION = 0.66;

/**
 * Renders a glyph mask into a `side`×`side` image through a distortion, supersampled `factor`
 * times and area-averaged down. Ink is bright on dark.
 */
function renderInstance(mask: GlyphMask, side: number, factor: number, distortion: Distortion): Uint8Array {
  const hi = side * factor;
  const out = new Uint8Array(side * side);
  if (mask.width === 0) return out;
  // Fit the larger side, but blow a small glyph (a dot-like letter) up by at most 1.6× an em-sized one.
  const fit = Math.min((FIT_FRACTION * hi) / Math.max(mask.width, mask.height), (1.6 * FIT_FRACTION * hi) / mask.fontPx);
  const [a, b, c, d] = distortion.matrix;
  const det = a * d - b * c;
  // Inverse of (fit · M): output offset → source offset.
  const ia = d / (det * fit);
  const ib = -b / (det * fit);
  const ic = -c / (det * fit);
  const id = a / (det * fit);
  const cx = hi / 2 + distortion.shiftX * hi;
  const cy = hi / 2 + distortion.shiftY * hi;
  const sx0 = mask.width / 2;
  const sy0 = mask.height / 2;
  const field = distortion.elastic ? elasticField(distortion, hi) : undefined;
  const acc = new Float64Array(side * side);
  const src = mask.data;
  const sw = mask.width;
  const sh = mask.height;
  for (let y = 0; y < hi; y++) {
    const rowBase = ((y / factor) | 0) * side;
    for (let x = 0; x < hi; x++) {
      let px = x + 0.5;
      let py = y + 0.5;
      if (field) {
        px += field[2 * (y * hi + x)]!;
        py += field[2 * (y * hi + x) + 1]!;
      }
      const ox = px - cx;
      const oy = py - cy;
      const u = ia * ox + ib * oy + sx0 - 0.5;
      const v = ic * ox + id * oy + sy0 - 0.5;
      if (u <= -1 || v <= -1 || u >= sw || v >= sh) continue;
      const value = bilinearAt(src, sw, sh, u, v);
      if (value > 0) acc[rowBase + ((x / factor) | 0)]! += value;
    }
  }
  const area = factor * factor;
  for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.round(acc[i]! / area));
  return out;
}

/**
 * The elastic displacement (in pixels, interleaved x/y) at every pixel of a `hi`×`hi` image,
 * interpolated from the distortion's (grid+1)² lattice with smoothstep weights, which keep the
 * field continuously differentiable across lattice cells.
 */
function elasticField(distortion: Distortion, hi: number): Float64Array {
  const { elastic, grid } = distortion;
  const out = new Float64Array(hi * hi * 2);
  if (!elastic) return out;
  const n = grid + 1;
  const cell = new Int32Array(hi);
  const weight = new Float64Array(hi);
  for (let k = 0; k < hi; k++) {
    const g = Math.min(((k + 0.5) / hi) * grid, grid - 1e-9);
    const i = Math.floor(g);
    const t = g - i;
    cell[k] = i;
    weight[k] = t * t * (3 - 2 * t);
  }
  for (let y = 0; y < hi; y++) {
    const j = cell[y]!;
    const ty = weight[y]!;
    for (let x = 0; x < hi; x++) {
      const i = cell[x]!;
      const tx = weight[x]!;
      const a = 2 * (j * n + i);
      const b = 2 * (j * n + i + 1);
      const c = 2 * ((j + 1) * n + i);
      const d = 2 * ((j + 1) * n + i + 1);
      const w00 = (1 - tx) * (1 - ty);
      const w10 = tx * (1 - ty);
      const w01 = (1 - tx) * ty;
      const w11 = tx * ty;
      const at = 2 * (y * hi + x);
      out[at] = (elastic[a]! * w00 + elastic[b]! * w10 + elastic[c]! * w01 + elastic[d]! * w11) * hi;
      out[at + 1] = (elastic[a + 1]! * w00 + elastic[b + 1]! * w10 + elastic[c + 1]! * w01 + elastic[d + 1]! * w11) * hi;
    }
  }
  return out;
}

/** The ranges of the random distortions, documented in the dataset's generator record. */
export const GLYPH_DISTORTION = Object.freeze({
  rotationDegrees: 10,
  scale: [0.85, 1.1] as const,
  aspectJitter: 0.06,
  slant: 0.25,
  shear: 0.08,
  translation: 0.1,
  elasticGrid: 4,
  elasticAmplitude: 0.025,
  italicProbability: 0.3,
  weights: [300, 800] as const,
  penSteps: [-1, 0, 1, 2] as const,
});

function uniform(rng: SeededRng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.next();
}

function randomDistortion(rng: SeededRng): Distortion {
  const D = GLYPH_DISTORTION;
  const theta = (uniform(rng, -D.rotationDegrees, D.rotationDegrees) * Math.PI) / 180;
  const scale = uniform(rng, D.scale[0], D.scale[1]);
  const aspect = 1 + uniform(rng, -D.aspectJitter, D.aspectJitter);
  const slant = uniform(rng, -D.slant, D.slant);
  const shear = uniform(rng, -D.shear, D.shear);
  // M = R(θ) · [1 0; shear 1] · [1 slant; 0 1] · diag(scale·aspect, scale/aspect); y points down, so a
  // positive slant leans the top to the left: negate it to lean right like italics.
  const sx = scale * aspect;
  const sy = scale / aspect;
  const k = -slant;
  // [1 k; 0 1] · diag(sx, sy) = [sx, k·sy; 0, sy]; then [1 0; shear 1] · that.
  const m00 = sx;
  const m01 = k * sy;
  const m10 = shear * sx;
  const m11 = shear * k * sy + sy;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const matrix: [number, number, number, number] = [cos * m00 - sin * m10, cos * m01 - sin * m11, sin * m00 + cos * m10, sin * m01 + cos * m11];
  const shiftX = uniform(rng, -D.translation, D.translation);
  const shiftY = uniform(rng, -D.translation, D.translation);
  const n = D.elasticGrid + 1;
  const elastic = new Float64Array(n * n * 2);
  for (let i = 0; i < elastic.length; i++) elastic[i] = uniform(rng, -D.elasticAmplitude, D.elasticAmplitude);
  return { matrix, shiftX, shiftY, elastic, grid: D.elasticGrid };
}

// ---------------------------------------------------------------------------------------------
// Candidate checks

/** Side of the small image the empty/tofu/duplicate checks compare. */
const CHECK_SIDE = 24;
const CHECK_FONT_PX = 96;
/** The check images stretch a glyph's shorter side by up to this factor. */
const CHECK_STRETCH = 1.2;
/** A glyph with less ink than this fraction of the em square counts as empty. */
const MIN_INK_FRACTION = 0.004;
/** Glyphs closer than this (ink-normalised L1 distance of the check images) are the same shape. */
const SAME_SHAPE_DISTANCE = 0.04;
/** A code point no font maps: drawing it shows the missing-glyph box (or nothing). */
const UNASSIGNED_CODE_POINT = 0x0378;

interface CheckImage {
  pixels: Float32Array;
  ink: number;
  blocks: Float32Array;
}

function checkImage(mask: GlyphMask): CheckImage {
  // Stretch the shorter side a little, so that the same letter drawn a few percent narrower in
  // another subset of a font (Cyrillic О beside Latin O) compares as the same shape.
  const long = Math.max(mask.width, mask.height);
  const short = Math.max(1, Math.min(mask.width, mask.height));
  const stretch = Math.min(CHECK_STRETCH, long / short);
  const wide = mask.width >= mask.height;
  const bytes = renderInstance(mask, CHECK_SIDE, 4, { ...IDENTITY, matrix: wide ? [1, 0, 0, stretch] : [stretch, 0, 0, 1] });
  // Blurring first makes the comparison forgive a pixel of stroke width or position (one glyph
  // drawn from two subsets of a font) while a missing dot or stroke still counts in full.
  const pixels = blur(blur(Float32Array.from(bytes, (v) => v / 255)));
  const blocks = new Float32Array(36);
  let ink = 0;
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i]!;
    ink += v;
    blocks[((((i / CHECK_SIDE) | 0) / 4) | 0) * 6 + (((i % CHECK_SIDE) / 4) | 0)]! += v;
  }
  return { pixels, ink, blocks };
}

/** A [1 2 1]/4 blur along both axes of a CHECK_SIDE² image (zero outside). */
function blur(image: Float32Array): Float32Array {
  const n = CHECK_SIDE;
  const tmp = new Float32Array(image.length);
  const out = new Float32Array(image.length);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const c = image[y * n + x]!;
      tmp[y * n + x] = (2 * c + (x > 0 ? image[y * n + x - 1]! : 0) + (x < n - 1 ? image[y * n + x + 1]! : 0)) / 4;
    }
  }
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const c = tmp[y * n + x]!;
      out[y * n + x] = (2 * c + (y > 0 ? tmp[(y - 1) * n + x]! : 0) + (y < n - 1 ? tmp[(y + 1) * n + x]! : 0)) / 4;
    }
  }
  return out;
}

/** Sum |a−b| over the sum of max(a, b): 0 for the same image, 1 for disjoint ink. */
function shapeDistance(a: CheckImage, b: CheckImage, stopAbove: number): number {
  // The block sums give a lower bound that rules most pairs out cheaply.
  let blockL1 = 0;
  for (let i = 0; i < 36; i++) blockL1 += Math.abs(a.blocks[i]! - b.blocks[i]!);
  if (blockL1 / (a.ink + b.ink) > stopAbove) return 1;
  let diff = 0;
  let union = 0;
  for (let i = 0; i < a.pixels.length; i++) {
    const p = a.pixels[i]!;
    const q = b.pixels[i]!;
    diff += Math.abs(p - q);
    union += p > q ? p : q;
  }
  return union === 0 ? 0 : diff / union;
}

export type GlyphDropReason = 'not-covered' | 'empty' | 'missing-glyph-box' | 'duplicate';

/** A candidate letter that did not become a class, and why. */
export interface DroppedGlyph {
  codePoint: number;
  reason: GlyphDropReason;
  /** For duplicates: the class name it looks like. */
  sameAs?: string;
}

/** What happened to one script. */
export interface GlyphScriptReport {
  name: string;
  background: boolean;
  fonts: string[];
  /** Letters considered (in the script's ranges, with the right category, not decomposable). */
  candidates: number;
  classes: number;
  /** Letters dropped because no font draws them, they render empty, or as a missing-glyph box. */
  dropped: { notCovered: number; empty: number; missingGlyphBox: number };
  /** Letters skipped because they look the same as a class already taken. */
  duplicates: number;
  /** Letters that passed the checks but were not needed to reach the cap. */
  unused: number;
  droppedGlyphs: DroppedGlyph[];
}

// ---------------------------------------------------------------------------------------------
// The generator

export interface GlyphGeneratorOptions {
  /** Seed of every random choice (default 1). The same seed gives byte-identical output. */
  seed?: number;
  /** Output images are size×size (default 28). */
  size?: number;
  /** Instances ("drawers") per class (default 20); the last quarter are test images. */
  instances?: number;
  /** Scripts by name from GLYPH_SCRIPTS, or full specs (default: all of GLYPH_SCRIPTS). */
  scripts?: readonly (string | GlyphScriptSpec)[];
  /** Classes per script at most (default 60), unless a spec sets its own cap. */
  maxClassesPerScript?: number;
  /** Fraction of classes in background alphabets (default 0.6). */
  backgroundFraction?: number;
  onProgress?: (progress: GlyphProgress) => void;
}

export interface GlyphProgress {
  phase: 'checking' | 'rendering';
  done: number;
  total: number;
}

/** The generator's record, stored as `generator` in dataset.json. */
export interface GlyphGeneratorRecord extends Record<string, unknown> {
  tool: string;
  seed: number;
  size: number;
  instances: number;
  trainInstances: number;
  supersampling: number;
  maxClassesPerScript: number;
  distortion: typeof GLYPH_DISTORTION;
  backgroundAlphabets: string[];
  evaluationAlphabets: string[];
  scripts: GlyphScriptReport[];
  fontPackages: Record<string, string>;
}

/** A generated glyph dataset: a LabelledDataset plus its code points, generator record and credits. */
export interface GlyphDataset extends LabelledDataset {
  kind: 'generated';
  classGroups: string[];
  baseClasses: number[];
  /** The code point of each class. */
  codePoints: number[];
  meta: ImagePackMeta & { generator: GlyphGeneratorRecord; credits: ImagePackCredit[] };
}

export { GLYPH_DEFAULTS };

interface Candidate {
  cp: number;
  check: CheckImage;
  fonts: FontPackage[];
}

function resolveScripts(scripts: readonly (string | GlyphScriptSpec)[] | undefined): GlyphScriptSpec[] {
  if (!scripts) return [...GLYPH_SCRIPTS];
  return scripts.map((s) => {
    if (typeof s !== 'string') return s;
    const spec = GLYPH_SCRIPTS.find((g) => g.name.toLowerCase() === s.toLowerCase());
    if (!spec) throw new Error(`unknown glyph script "${s}"; known: ${GLYPH_SCRIPTS.map((g) => g.name).join(', ')}`);
    return spec;
  });
}

function letterCodePoints(spec: GlyphScriptSpec, ranges: readonly (readonly [number, number])[]): number[] {
  const categories = spec.categories ?? ['Lu', 'Ll', 'Lo'];
  const categoryRe = new RegExp(`^[${categories.map((c) => `\\p{${c}}`).join('')}]$`, 'u');
  const scriptRe = spec.unicodeScript ? new RegExp(`^\\p{Script=${spec.unicodeScript}}$`, 'u') : undefined;
  const out: number[] = [];
  for (const [start, end] of ranges) {
    for (let cp = start; cp <= end; cp++) {
      const ch = String.fromCodePoint(cp);
      if (!categoryRe.test(ch) || (scriptRe && !scriptRe.test(ch))) continue;
      // Precomposed letters (accents, nukta forms, compatibility forms) are another letter plus a mark.
      if (ch.normalize('NFKD') !== ch) continue;
      out.push(cp);
    }
  }
  return out;
}

/** The script's candidates in the order they are taken: explicit, core ranges, then the seeded extras. */
function candidateOrder(spec: GlyphScriptSpec, rng: SeededRng): number[] {
  const seen = new Set<number>();
  const ordered: number[] = [];
  const add = (cp: number): void => {
    if (seen.has(cp)) return;
    seen.add(cp);
    ordered.push(cp);
  };
  (spec.codePoints ?? []).forEach(add);
  letterCodePoints(spec, spec.ranges).forEach(add);
  const extras = letterCodePoints(spec, spec.extraRanges ?? []).filter((cp) => !seen.has(cp));
  rng.shuffle(extras).forEach(add);
  return ordered;
}

/**
 * Renders the glyph benchmark: classes are letters of many scripts drawn from the installed
 * fontsource Noto packages, each with `instances` distorted renderings. Letters a font lacks,
 * that render empty or as a missing-glyph box, or that look like a class already taken are
 * dropped and reported per script. Alphabets are split into background (base) and evaluation
 * alphabets like Omniglot's; in each class the first three quarters of instances are train images.
 *
 * @example
 * const glyphs = generateGlyphDataset({ seed: 1, size: 28, scripts: ['Greek', 'Runic'] });
 * glyphs.classNames[0];          // 'Greek/U+0391 Α'
 * glyphs.classGroups[0];         // 'Greek'
 * glyphs.meta.generator.scripts; // per-script counts, drops and fonts
 */
export function generateGlyphDataset(options: GlyphGeneratorOptions = {}): GlyphDataset {
  const seed = options.seed ?? GLYPH_DEFAULTS.seed;
  const size = options.size ?? GLYPH_DEFAULTS.size;
  const instances = options.instances ?? GLYPH_DEFAULTS.instances;
  const cap = options.maxClassesPerScript ?? GLYPH_DEFAULTS.maxClassesPerScript;
  const backgroundFraction = options.backgroundFraction ?? GLYPH_DEFAULTS.backgroundFraction;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (!Number.isInteger(size) || size < 8 || size > 512) throw new RangeError(`size must be an integer in 8..512, got ${size}`);
  if (!Number.isInteger(instances) || instances < 2) throw new RangeError(`instances must be an integer ≥ 2, got ${instances}`);
  if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`maxClassesPerScript must be a positive integer, got ${cap}`);
  if (!(backgroundFraction > 0 && backgroundFraction < 1)) throw new RangeError(`backgroundFraction must be in (0, 1), got ${backgroundFraction}`);
  const specs = resolveScripts(options.scripts);
  const names = new Set<string>();
  for (const spec of specs) {
    if (names.has(spec.name)) throw new Error(`glyph script "${spec.name}" is listed twice`);
    names.add(spec.name);
  }

  const root = new SeededRng(seed);
  const rasterizer = new GlyphRasterizer();
  const factor = Math.max(2, Math.ceil(112 / size));
  const fontPx = Math.max(CHECK_FONT_PX, Math.round(0.75 * size * factor));

  // 1. Check every candidate letter; keep those that pass and are not the same shape as a class taken before.
  const orders = specs.map((spec) => candidateOrder(spec, root.fork(`candidates:${spec.name}`)));
  const totalCandidates = orders.reduce((n, o) => n + o.length, 0);
  let checked = 0;
  const accepted: { script: number; cp: number; check: CheckImage; fonts: FontPackage[]; name: string }[] = [];
  const reports: GlyphScriptReport[] = [];
  const missingBoxes = new Map<string, CheckImage | undefined>();

  specs.forEach((spec, s) => {
    const fonts = spec.fonts.map(loadFontPackage);
    const report: GlyphScriptReport = {
      name: spec.name,
      background: false,
      fonts: fonts.map((f) => f.id),
      candidates: 0,
      classes: 0,
      dropped: { notCovered: 0, empty: 0, missingGlyphBox: 0 },
      duplicates: 0,
      unused: 0,
      droppedGlyphs: [],
    };
    const limit = spec.cap ?? cap;
    const taken: typeof accepted = [];
    for (const cp of orders[s]!) {
      report.candidates++;
      const candidate = checkCandidate(cp, fonts, rasterizer, missingBoxes);
      checked++;
      options.onProgress?.({ phase: 'checking', done: checked, total: totalCandidates });
      if (typeof candidate === 'string') {
        report.droppedGlyphs.push({ codePoint: cp, reason: candidate });
        if (candidate === 'not-covered') report.dropped.notCovered++;
        else if (candidate === 'empty') report.dropped.empty++;
        else report.dropped.missingGlyphBox++;
        continue;
      }
      if (taken.length >= limit) {
        report.unused++;
        continue;
      }
      const name = className(spec.name, cp);
      const twin = [...accepted, ...taken].find((a) => shapeDistance(candidate.check, a.check, SAME_SHAPE_DISTANCE) < SAME_SHAPE_DISTANCE);
      if (twin) {
        report.duplicates++;
        report.droppedGlyphs.push({ codePoint: cp, reason: 'duplicate', sameAs: twin.name });
        continue;
      }
      taken.push({ script: s, cp, check: candidate.check, fonts: candidate.fonts, name });
    }
    taken.sort((a, b) => a.cp - b.cp);
    accepted.push(...taken);
    report.classes = taken.length;
    reports.push(report);
  });
  rasterizer.clear();
  if (accepted.length === 0) throw new Error('no glyph classes survived the checks; are the font packages installed?');

  // 2. Background and evaluation alphabets: a seeded order of the scripts, background until the fraction is reached.
  const withClasses = reports.map((r, i) => ({ r, i })).filter(({ r }) => r.classes > 0);
  const order = root.fork('alphabet-split').shuffle(withClasses.map(({ i }) => i));
  const target = backgroundFraction * accepted.length;
  let backgroundCount = 0;
  // The last alphabet in the order always evaluates, so that both sets are non-empty.
  order.forEach((i, k) => {
    const report = reports[i]!;
    if (backgroundCount < target && (k < order.length - 1 || order.length === 1)) {
      report.background = true;
      backgroundCount += report.classes;
    }
  });

  // 3. Render every instance.
  const testInstances = Math.max(1, Math.round(instances / 4));
  const trainInstances = instances - testInstances;
  const pixels = size * size;
  const classCount = accepted.length;
  const trainImages = new Uint8Array(classCount * trainInstances * pixels);
  const testImages = new Uint8Array(classCount * testInstances * pixels);
  const trainLabels = new Int32Array(classCount * trainInstances);
  const testLabels = new Int32Array(classCount * testInstances);
  const total = classCount * instances;
  accepted.forEach((cls, label) => {
    const rng = root.fork(`class:${specs[cls.script]!.name}:${cls.cp}`);
    for (let k = 0; k < instances; k++) {
      const image = renderDrawer(cls.cp, cls.fonts, rng, rasterizer, size, factor, fontPx);
      if (k < trainInstances) {
        trainImages.set(image, (label * trainInstances + k) * pixels);
        trainLabels[label * trainInstances + k] = label;
      } else {
        const t = k - trainInstances;
        testImages.set(image, (label * testInstances + t) * pixels);
        testLabels[label * testInstances + t] = label;
      }
      options.onProgress?.({ phase: 'rendering', done: label * instances + k + 1, total });
    }
    rasterizer.clear();
  });

  const classNames = accepted.map((a) => a.name);
  const classGroups = accepted.map((a) => specs[a.script]!.name);
  const baseClasses = accepted.flatMap((a, i) => (reports[a.script]!.background ? [i] : []));
  const usedPackages = [...new Set(accepted.flatMap((a) => a.fonts.map((f) => f.id)))].sort();
  const train: ImageSet = { images: trainImages, labels: trainLabels, count: trainLabels.length, rows: size, cols: size, channels: 1 };
  const test: ImageSet = { images: testImages, labels: testLabels, count: testLabels.length, rows: size, cols: size, channels: 1 };
  const generator: GlyphGeneratorRecord = {
    tool: 'protofed data glyphs',
    seed,
    size,
    instances,
    trainInstances,
    supersampling: factor,
    maxClassesPerScript: cap,
    distortion: GLYPH_DISTORTION,
    backgroundAlphabets: reports.filter((r) => r.background).map((r) => r.name),
    evaluationAlphabets: reports.filter((r) => !r.background && r.classes > 0).map((r) => r.name),
    scripts: reports,
    fontPackages: Object.fromEntries(usedPackages.map((id) => [id, loadFontPackage(id).version])),
  };
  return {
    name: 'glyphs',
    source: 'generated',
    kind: 'generated',
    classNames,
    classGroups,
    baseClasses,
    codePoints: accepted.map((a) => a.cp),
    train,
    test,
    meta: { generator, credits: usedPackages.map((id) => fontCredit(loadFontPackage(id))) },
  };
}

/** Options of renderGlyphClasses: the generator record's settings and the classes to draw again. */
export interface GlyphRerenderOptions {
  /** The generator's seed, size and instances (a dataset's `meta.generator`); defaults as GLYPH_DEFAULTS. */
  seed?: number;
  size?: number;
  instances?: number;
  /** The classes to render, by class name as the generator writes them ('Greek/U+0391 Α'). */
  classNames: readonly string[];
  /** Pen steps (1/84 of the font size; whole or half) added to every instance: < 0 a thinner pen, > 0 a thicker one. */
  penOffset: number;
  /** Class id of each entry of classNames in the returned image sets (default: its index). */
  labels?: readonly number[];
}

/**
 * Draws classes of a generated glyph set again with another pen: the same font, weight, style and
 * distortion for every instance as `generateGlyphDataset` with the same seed, size and instances
 * drew, with the ink grown or shrunk by `penOffset` steps. Train and test images split as the
 * generator splits them. The classes must be ones the generator took (it does not re-run the
 * duplicate checks, which need every script).
 *
 * @example
 * const thin = renderGlyphClasses({ classNames: ['Greek/U+0391 Α'], penOffset: -2 });
 * thin.train.count; // 15
 */
export function renderGlyphClasses(options: GlyphRerenderOptions): { train: ImageSet; test: ImageSet } {
  const seed = options.seed ?? GLYPH_DEFAULTS.seed;
  const size = options.size ?? GLYPH_DEFAULTS.size;
  const instances = options.instances ?? GLYPH_DEFAULTS.instances;
  const { classNames, penOffset } = options;
  if (!Number.isInteger(2 * penOffset)) throw new RangeError(`penOffset must be a whole or half number of pen steps, got ${penOffset}`);
  const labels = options.labels ?? classNames.map((_, i) => i);
  if (labels.length !== classNames.length) throw new RangeError(`labels has ${labels.length} entries for ${classNames.length} classes`);
  const root = new SeededRng(seed);
  const rasterizer = new GlyphRasterizer();
  const factor = Math.max(2, Math.ceil(112 / size));
  const fontPx = Math.max(CHECK_FONT_PX, Math.round(0.75 * size * factor));
  const testInstances = Math.max(1, Math.round(instances / 4));
  const trainInstances = instances - testInstances;
  const pixels = size * size;
  const n = classNames.length;
  const train: ImageSet = { images: new Uint8Array(n * trainInstances * pixels), labels: new Int32Array(n * trainInstances), count: n * trainInstances, rows: size, cols: size, channels: 1 };
  const test: ImageSet = { images: new Uint8Array(n * testInstances * pixels), labels: new Int32Array(n * testInstances), count: n * testInstances, rows: size, cols: size, channels: 1 };
  classNames.forEach((name, i) => {
    const match = /^(.+)\/U\+([0-9A-F]{4,6}) /.exec(name);
    if (!match) throw new Error(`"${name}" is not a glyph class name (Script/U+XXXX c)`);
    const spec = GLYPH_SCRIPTS.find((g) => g.name === match[1]);
    if (!spec) throw new Error(`unknown glyph script "${match[1]}" in class "${name}"`);
    const cp = Number.parseInt(match[2]!, 16);
    const fonts = spec.fonts.map(loadFontPackage).filter((pkg) => faceFor(pkg, cp, referenceWeight(pkg), 'normal'));
    if (fonts.length === 0) throw new Error(`no installed font of ${spec.name} draws U+${match[2]}`);
    const rng = root.fork(`class:${spec.name}:${cp}`);
    for (let k = 0; k < instances; k++) {
      const image = renderDrawer(cp, fonts, rng, rasterizer, size, factor, fontPx, penOffset);
      if (k < trainInstances) {
        train.images.set(image, (i * trainInstances + k) * pixels);
        train.labels[i * trainInstances + k] = labels[i]!;
      } else {
        test.images.set(image, (i * testInstances + k - trainInstances) * pixels);
        test.labels[i * testInstances + k - trainInstances] = labels[i]!;
      }
    }
    rasterizer.clear();
  });
  return { train, test };
}

function className(script: string, cp: number): string {
  return `${script}/${formatCodePoint(cp)} ${String.fromCodePoint(cp)}`;
}

function checkCandidate(
  cp: number,
  fonts: FontPackage[],
  rasterizer: GlyphRasterizer,
  missingBoxes: Map<string, CheckImage | undefined>,
): Exclude<GlyphDropReason, 'duplicate'> | Candidate {
  const covering: FontPackage[] = [];
  let reference: FontFace | undefined;
  for (const pkg of fonts) {
    const face = faceFor(pkg, cp, referenceWeight(pkg), 'normal');
    if (!face) continue;
    covering.push(pkg);
    reference ??= face;
  }
  if (!reference) return 'not-covered';
  const mask = rasterizer.mask(reference, cp, CHECK_FONT_PX);
  if (inkOf(mask) < MIN_INK_FRACTION * CHECK_FONT_PX * CHECK_FONT_PX) return 'empty';
  const check = checkImage(mask);
  if (!missingBoxes.has(reference.path)) {
    const box = rasterizer.mask(reference, UNASSIGNED_CODE_POINT, CHECK_FONT_PX);
    missingBoxes.set(reference.path, box.width > 0 ? checkImage(box) : undefined);
  }
  const box = missingBoxes.get(reference.path);
  if (box && shapeDistance(check, box, SAME_SHAPE_DISTANCE) < SAME_SHAPE_DISTANCE) return 'missing-glyph-box';
  return { cp, check, fonts: covering };
}

/**
 * One instance: a random face (font, weight, style) that has the glyph, a random pen, and a random
 * distortion. `penOffset` grows (> 0) or shrinks (< 0) every instance's ink by that many pen steps
 * more (a step is 1/84 of the font size) without changing any random draw, so a re-rendering with
 * another pen shows the same drawers with thicker or thinner strokes.
 */
function renderDrawer(
  cp: number,
  fonts: FontPackage[],
  rng: SeededRng,
  rasterizer: GlyphRasterizer,
  size: number,
  factor: number,
  fontPx: number,
  penOffset = 0,
): Uint8Array {
  const D = GLYPH_DISTORTION;
  const pkg = fonts[rng.int(fonts.length)]!;
  const style: 'normal' | 'italic' = pkg.styles.includes('italic') && rng.next() < D.italicProbability ? 'italic' : 'normal';
  const weights = pkg.weights.filter((w) => w >= D.weights[0] && w <= D.weights[1]);
  const weight = weights.length > 0 ? weights[rng.int(weights.length)]! : referenceWeight(pkg);
  // A single-weight font gets its stroke thickness varied by growing or shrinking the ink instead.
  const pen = weights.length > 1 ? 0 : D.penSteps[rng.int(D.penSteps.length)]!;
  const face = faceFor(pkg, cp, weight, style) ?? faceFor(pkg, cp, weight, 'normal') ?? faceFor(pkg, cp, referenceWeight(pkg), 'normal');
  if (!face) throw new Error(`internal: ${pkg.id} lost U+${cp.toString(16)} between the check and the rendering`);
  let mask = rasterizer.mask(face, cp, fontPx);
  const steps = ((pen + penOffset) * fontPx) / 84;
  // Whole steps as the set was drawn; a half-step offset (a bench pen between two) keeps its half.
  if (pen + penOffset !== 0) mask = morph(mask, Number.isInteger(penOffset) ? Math.round(steps) : Math.round(2 * steps) / 2);
  const distortion = randomDistortion(rng);
  const image = renderInstance(mask, size, factor, distortion);
  let ink = 0;
  for (let i = 0; i < image.length; i++) ink += image[i]!;
  // Every instance must show the letter; an erosion that wiped a hairline glyph falls back to the plain one.
  return ink > 0 ? image : renderInstance(rasterizer.mask(face, cp, fontPx), size, factor, distortion);
}

function fontCredit(pkg: FontPackage): ImagePackCredit {
  const copyright = pkg.licenseText.split(/\r?\n\s*\r?\n/)[0]?.replace(/\s+/g, ' ').trim() ?? '';
  const authors = /Copyright \d{4}(?:-\d{4})? (.+?) \(/.exec(copyright)?.[1] ?? (copyright || pkg.packageAuthor || 'unknown');
  const ofl = /SIL Open Font License,? Version 1\.1/i.test(pkg.licenseText);
  const licenseUrl = /https?:\/\/\S*OFL\S*/i.exec(pkg.licenseText)?.[0] ?? pkg.licenseUrl ?? '';
  return {
    source: pkg.id,
    name: pkg.family,
    version: pkg.version,
    authors,
    license: ofl ? 'SIL Open Font License 1.1' : 'see the package LICENSE',
    licenseUrl,
    copyright,
  };
}

// ---------------------------------------------------------------------------------------------
// Output: the Omniglot layout, a contact sheet and a README

/**
 * Writes a dataset in the layout of the real Omniglot release: `images_background/<Alphabet>/characterNN/IIII_DD.png`
 * for base classes and `images_evaluation/...` for the rest, black ink on white. Drawer DD counts
 * a class's train images first, then its test images. Returns the number of PNG files written.
 *
 * @example
 * writeOmniglotLayout('/tmp/omniglot-like', generateGlyphDataset({ size: 105 }));
 * // /tmp/omniglot-like/images_background/Latin/character01/0001_01.png …
 */
export function writeOmniglotLayout(dir: string, dataset: LabelledDataset): number {
  const { train, test, classNames } = dataset;
  if (train.channels !== 1) throw new Error('writeOmniglotLayout: only greyscale datasets can be written as Omniglot PNGs');
  const groups = dataset.classGroups ?? classNames.map(() => dataset.name);
  const base = new Set(dataset.baseClasses ?? classNames.map((_, i) => i));
  const byClass: { set: ImageSet; index: number }[][] = classNames.map(() => []);
  for (const set of [train, test]) {
    for (let i = 0; i < set.count; i++) byClass[set.labels[i]!]!.push({ set, index: i });
  }
  const characterInGroup = new Map<string, number>();
  let written = 0;
  classNames.forEach((_, c) => {
    const group = groups[c]!;
    const part = base.has(c) ? 'images_background' : 'images_evaluation';
    const key = `${part}/${group}`;
    const n = (characterInGroup.get(key) ?? 0) + 1;
    characterInGroup.set(key, n);
    const folder = join(dir, part, omniglotAlphabetFolder(group), `character${String(n).padStart(2, '0')}`);
    mkdirSync(folder, { recursive: true });
    byClass[c]!.forEach(({ set, index }, k) => {
      const size = set.rows * set.cols;
      const png = new PNG({ width: set.cols, height: set.rows, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
      const src = set.images.subarray(index * size, (index + 1) * size);
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = 255 - src[i]!;
      png.data = data;
      const file = `${String(c + 1).padStart(4, '0')}_${String(k + 1).padStart(2, '0')}.png`;
      writeFileSync(join(folder, file), PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
      written++;
    });
  });
  return written;
}

export interface ContactSheetOptions {
  /** How many classes to show (default 40, or one per group when there are more groups), spread over all groups. */
  classes?: number;
  /** Instances per class (default 8), train images first. */
  instances?: number;
  /** Pixel zoom (default 3). */
  scale?: number;
  /** Classes per row of the sheet (default 2). */
  columns?: number;
  seed?: number;
}

/**
 * A PNG showing a sample of classes (round-robin over the groups, so every alphabet appears) with
 * several instances each, zoomed, labelled with the class name: for looking at the data.
 *
 * @example
 * writeFileSync('sheet.png', renderContactSheet(readImagePack('data/glyphs-28')));
 */
export function renderContactSheet(dataset: LabelledDataset, options: ContactSheetOptions = {}): Buffer {
  const perClass = options.instances ?? 8;
  const scale = options.scale ?? 3;
  const columns = options.columns ?? 2;
  const rng = new SeededRng(options.seed ?? 1).fork('contact-sheet');
  const groups = dataset.classGroups ?? dataset.classNames.map(() => dataset.name);
  const byGroup = new Map<string, number[]>();
  groups.forEach((g, c) => {
    let list = byGroup.get(g);
    if (!list) byGroup.set(g, (list = []));
    list.push(c);
  });
  const wantClasses = Math.min(options.classes ?? Math.max(40, byGroup.size), dataset.classNames.length);
  const pools = [...byGroup.values()].map((list) => rng.shuffle([...list]));
  const chosen: number[] = [];
  for (let round = 0; chosen.length < wantClasses; round++) {
    let any = false;
    for (const pool of pools) {
      if (round < pool.length && chosen.length < wantClasses) {
        chosen.push(pool[round]!);
        any = true;
      }
    }
    if (!any) break;
  }
  const { rows, cols } = dataset.train.count > 0 ? dataset.train : dataset.test;
  const images: { set: ImageSet; index: number }[][] = dataset.classNames.map(() => []);
  for (const set of [dataset.train, dataset.test]) {
    for (let i = 0; i < set.count; i++) {
      const list = images[set.labels[i]!]!;
      if (list.length < perClass) list.push({ set, index: i });
    }
  }
  const cell = cols * scale + 2;
  const labelHeight = 16;
  const blockWidth = perClass * cell + 16;
  const blockHeight = rows * scale + 2 + labelHeight + 6;
  const sheetRows = Math.ceil(chosen.length / columns);
  const canvas = createCanvas(columns * blockWidth + 8, sheetRows * blockHeight + 8);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#3a3a3a';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const label = labelFont();
  chosen.forEach((c, n) => {
    const bx = 4 + (n % columns) * blockWidth;
    const by = 4 + Math.floor(n / columns) * blockHeight;
    ctx.fillStyle = '#f0f0f0';
    ctx.font = `12px ${label}`;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    const name = dataset.classNames[c]!.replace(/ \S+$/u, '');
    ctx.fillText(`${c}: ${name}`, bx, by + 1);
    images[c]!.forEach(({ set, index }, k) => {
      const tile = ctx.createImageData(cols * scale, rows * scale);
      const offset = index * rows * cols * set.channels;
      for (let y = 0; y < rows * scale; y++) {
        for (let x = 0; x < cols * scale; x++) {
          const v = set.images[offset + (((y / scale) | 0) * cols + ((x / scale) | 0)) * set.channels]!;
          const at = (y * cols * scale + x) * 4;
          tile.data[at] = v;
          tile.data[at + 1] = v;
          tile.data[at + 2] = v;
          tile.data[at + 3] = 255;
        }
      }
      ctx.putImageData(tile, bx + k * cell, by + labelHeight);
    });
  });
  return canvas.toBuffer('image/png');
}

function labelFont(): string {
  try {
    const pkg = loadFontPackage('@fontsource/noto-sans');
    const face = faceFor(pkg, 0x41, 400, 'normal');
    if (face) return `"${canvasFamily(face)}"`;
  } catch {
    // Fall back to whatever sans-serif the system has.
  }
  return 'sans-serif';
}

/**
 * Formats a code point the Unicode way.
 *
 * @example
 * formatCodePoint(0x3b1); // 'U+03B1'
 */
export function formatCodePoint(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The README.md of a generated glyph folder: how it was made (the exact command), what is in it
 * (alphabets, classes, instances, drops) and whom to credit (each font package, its authors and licence).
 *
 * @example
 * writeFileSync('data/glyphs-28/README.md', glyphReadme(glyphs, 'npx protofed data glyphs --out data/glyphs-28'));
 */
export function glyphReadme(dataset: GlyphDataset, command: string, format: 'pack' | 'omniglot' = 'pack'): string {
  const g = dataset.meta.generator;
  const classes = dataset.classNames.length;
  const background = dataset.baseClasses.length;
  const totalDropped = g.scripts.reduce((n, s) => n + s.dropped.notCovered + s.dropped.empty + s.dropped.missingGlyphBox, 0);
  const totalDuplicates = g.scripts.reduce((n, s) => n + s.duplicates, 0);
  const lines: string[] = [];
  lines.push(`# Glyphs ${g.size}×${g.size}: a many-class, Omniglot-style benchmark rendered from open fonts`, '');
  lines.push(
    `${classes} character classes from ${g.scripts.filter((s) => s.classes > 0).length} scripts (alphabets), ` +
      `${g.instances} instances each (${g.trainInstances} train, ${g.instances - g.trainInstances} test), ` +
      `${g.size}×${g.size} greyscale${format === 'pack' ? ', ink bright (255) on dark (0) like MNIST' : ', black ink on white like Omniglot'}.`,
    '',
  );
  lines.push(
    'Like Omniglot, a class is one character and its alphabet is its script; the instances play the part of',
    "Omniglot's 20 drawers. Each instance is drawn with a font that has the character (sans or serif where the",
    'script has both), a random weight (or, for single-weight fonts, a thicker or thinner pen), italics where the',
    `font has them, a random slant (±${GLYPH_DISTORTION.slant}), rotation (±${GLYPH_DISTORTION.rotationDegrees}°), scale ` +
      `(${GLYPH_DISTORTION.scale[0]}–${GLYPH_DISTORTION.scale[1]}, aspect ±${GLYPH_DISTORTION.aspectJitter * 100}%), shear (±${GLYPH_DISTORTION.shear}), ` +
      `translation (±${GLYPH_DISTORTION.translation * 100}%) and a smooth elastic displacement (${GLYPH_DISTORTION.elasticGrid}×${GLYPH_DISTORTION.elasticGrid} cells, ` +
      `±${GLYPH_DISTORTION.elasticAmplitude * 100}% of the side), rendered at ${g.supersampling}× and area-averaged down.`,
    '',
  );
  lines.push('## How it was made', '', 'From the repository root, after `npm install`:', '', '```sh', command, '```', '');
  lines.push(
    `The output is byte-identical for the same seed (${g.seed}) and the same font package versions (listed below).`,
    'The generator is `shared/datasets/glyph-generator.ts`; the command is `cli/glyphs-command.ts`.',
    '',
  );
  if (format === 'pack') {
    lines.push(
      '## Files',
      '',
      'A protofed image pack (`shared/datasets/image-pack.ts`, `readImagePack`):',
      '',
      '| File | Contents |',
      '| --- | --- |',
      `| \`images.idx.gz\` | ${classes * g.instances} images, IDX u8 [N, ${g.size}, ${g.size}], gzip |`,
      `| \`labels.idx.gz\` | class ids, IDX i32 [N] |`,
      `| \`split.idx.gz\` | 0 = train, 1 = test, IDX u8 [N] |`,
      '| `dataset.json` | class names (`Script/U+XXXX c`), class groups (alphabets), base classes (background alphabets), the generator record and the credits |',
      '| `contact-sheet.png` | a sample of classes from every alphabet, several instances each |',
      '',
    );
  } else {
    lines.push(
      '## Files',
      '',
      'The layout of the Omniglot release: `images_background/<Alphabet>/characterNN/IIII_DD.png` and',
      '`images_evaluation/...`, where IIII numbers the class over the whole set and DD the instance (drawer);',
      `drawers 01–${String(g.trainInstances).padStart(2, '0')} are the train instances.`,
      '',
    );
  }
  lines.push('## Statistics', '');
  lines.push(
    `- Alphabets: ${g.scripts.filter((s) => s.classes > 0).length}; background ${g.backgroundAlphabets.length} (${background} classes, the base classes), ` +
      `evaluation ${g.evaluationAlphabets.length} (${classes - background} classes). The split is drawn with the seed.`,
    `- Classes: ${classes}, at most ${g.maxClassesPerScript} per script (Latin at most ${GLYPH_SCRIPTS.find((s) => s.name === 'Latin')?.cap ?? g.maxClassesPerScript}).`,
    `- Images: ${classes * g.instances} (${classes * g.trainInstances} train, ${classes * (g.instances - g.trainInstances)} test).`,
    `- Dropped letters: ${totalDropped} (no glyph in the fonts' cmaps, empty rendering, or the missing-glyph box); ` +
      `${totalDuplicates} more skipped as the same shape as a class already taken (e.g. Greek Α after Latin A).`,
    '',
  );
  lines.push(
    '| Alphabet | Set | Classes | Candidates | Not in font | Empty | Box | Same shape | Fonts |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const s of g.scripts) {
    lines.push(
      `| ${s.name} | ${s.classes === 0 ? '–' : s.background ? 'background' : 'evaluation'} | ${s.classes} | ${s.candidates} | ${s.dropped.notCovered} | ${s.dropped.empty} | ${s.dropped.missingGlyphBox} | ${s.duplicates} | ${s.fonts.map((f) => f.replace('@fontsource/', '')).join(', ')} |`,
    );
  }
  lines.push(
    '',
    '"Candidates" are the letters considered (the script\'s letter code points that do not decompose into a',
    'letter plus marks); candidates past the cap are not used.',
    '',
  );
  lines.push(
    '## Credits and licence',
    '',
    'The images are renderings of glyphs from the Noto fonts, by The Noto Project Authors, distributed',
    'through the [Fontsource](https://fontsource.org) npm packages below. The fonts are licensed under the',
    'SIL Open Font License 1.1 (http://scripts.sil.org/OFL, now https://openfontlicense.org); the licence text',
    'is in each package\'s LICENSE file. The licence covers the fonts; these images are renderings made with them.',
    '',
    '| Package | Version | Font | Authors | Licence | Copyright (from the package\'s LICENSE) |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  for (const c of dataset.meta.credits) {
    lines.push(`| \`${c.source}\` | ${c.version ?? ''} | ${c.name ?? ''} | ${c.authors ?? ''} | [${c.license ?? ''}](${c.licenseUrl ?? ''}) | ${c.copyright ?? ''} |`);
  }
  lines.push('');
  return lines.join('\n');
}
