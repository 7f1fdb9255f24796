import type { ImageShape } from '../shared/embedding/backbone.js';
import type { SeededRng } from '../shared/learning/rng.js';
import { bilinearAt } from '../shared/datasets/pixel-ops.js';

/**
 * Random changes to each training image, so that the backbone does not learn one renderer's
 * stroke width or placement. Every range is ± the value, drawn uniformly per image; 0 turns a
 * change off, and all zeros leave the images as they are.
 */
export interface AugmentConfig {
  /** Pen change in 3×3 grey-level dilations (> 0) or erosions (< 0); fractions blend with the next step. */
  strokeWidth: number;
  /**
   * Pen change in pixels of stroke half-width, drawn at 4× resolution (morphPen): 0.5 draws each
   * side of a stroke half a pixel thinner or thicker, as a renderer's thinner or thicker pen would.
   */
  pen: number;
  rotationDegrees: number;
  /** Relative change of size, e.g. 0.1 for 0.9–1.1×. */
  scale: number;
  /** Horizontal shear factor. */
  shear: number;
  /** Shift as a fraction of the image side. */
  translation: number;
  /** Smooth elastic displacement at a 4×4 lattice of cells, as a fraction of the image side. */
  elastic: number;
  /**
   * Ink strength: every pixel times 2^u, u within ± the value (1: 0.5–2×), clipped at 255. A
   * thinner pen at low resolution draws fainter strokes more than narrower ones.
   */
  ink: number;
}

export const NO_AUGMENTATION: AugmentConfig = Object.freeze({ strokeWidth: 0, pen: 0, rotationDegrees: 0, scale: 0, shear: 0, translation: 0, elastic: 0, ink: 0 });

const ELASTIC_GRID = 4;

/** True when the settings change nothing. */
export function isIdentityAugmentation(config: AugmentConfig): boolean {
  return Object.values(config).every((v) => v === 0);
}

/**
 * Grey-level dilation (`steps` > 0) or erosion (< 0) of one channel of an image with a 3×3 square,
 * |steps| times; a fractional part blends the result with one more step (a pen between two widths).
 * Writes into `out` (which may be `image`).
 *
 * @example
 * morphStroke(image, 28, 28, 0.5, out); // half-way to a one-pixel-thicker pen
 */
export function morphStroke(image: Uint8Array, rows: number, cols: number, steps: number, out: Uint8Array): void {
  const whole = Math.floor(Math.abs(steps));
  const frac = Math.abs(steps) - whole;
  const dilate = steps > 0;
  let cur = image;
  const tmp = new Uint8Array(rows * cols);
  const next = (src: Uint8Array): Uint8Array => {
    const dst = new Uint8Array(rows * cols);
    // The 3×3 square is separable: along rows, then along columns. Outside the image is 0.
    for (let y = 0; y < rows; y++) {
      const r = y * cols;
      for (let x = 0; x < cols; x++) {
        const c = src[r + x]!;
        const l = x > 0 ? src[r + x - 1]! : 0;
        const rr = x < cols - 1 ? src[r + x + 1]! : 0;
        tmp[r + x] = dilate ? Math.max(c, l, rr) : Math.min(c, l, rr);
      }
    }
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        const c = tmp[y * cols + x]!;
        const u = y > 0 ? tmp[(y - 1) * cols + x]! : 0;
        const d = y < rows - 1 ? tmp[(y + 1) * cols + x]! : 0;
        dst[y * cols + x] = dilate ? Math.max(c, u, d) : Math.min(c, u, d);
      }
    }
    return dst;
  };
  for (let s = 0; s < whole; s++) cur = next(cur);
  if (frac > 0) {
    const more = next(cur);
    for (let i = 0; i < out.length; i++) out[i] = Math.round(cur[i]! + (more[i]! - cur[i]!) * frac);
  } else if (cur !== out) {
    out.set(cur);
  }
}

const PEN_SUPERSAMPLE = 4;

/** Bilinear source taps of each output coordinate when upsampling `n` pixels PEN_SUPERSAMPLE times (pixel centres aligned). */
function upsampleTaps(n: number): { lo: Int32Array; w: Float32Array } {
  const lo = new Int32Array(n * PEN_SUPERSAMPLE);
  const w = new Float32Array(n * PEN_SUPERSAMPLE);
  for (let i = 0; i < lo.length; i++) {
    const s = (i + 0.5) / PEN_SUPERSAMPLE - 0.5;
    lo[i] = Math.floor(s);
    w[i] = s - lo[i]!;
  }
  return { lo, w };
}

/** Running min (erode) or max (dilate) over a window of 2r+1 along one axis; outside is 0. */
function windowExtreme(src: Float32Array, dst: Float32Array, lines: number, length: number, lineStride: number, step: number, r: number, dilate: boolean): void {
  for (let l = 0; l < lines; l++) {
    const base = l * lineStride;
    for (let i = 0; i < length; i++) {
      let v = dilate ? 0 : 255;
      if (!dilate && (i - r < 0 || i + r >= length)) v = 0;
      else {
        const from = Math.max(0, i - r);
        const to = Math.min(length - 1, i + r);
        for (let j = from; j <= to; j++) {
          const s = src[base + j * step]!;
          if (dilate ? s > v : s < v) v = s;
        }
      }
      dst[base + i * step] = v;
    }
  }
}

/**
 * A thinner or thicker pen for an image drawn at low resolution: the channel is upsampled 4×
 * (bilinear), eroded (`pixels` < 0) or dilated (> 0) with a square of quarter-pixel steps, and
 * box-averaged back, so a stroke's sides move by `pixels` with sub-pixel precision. A fraction of a
 * quarter step blends with one more step. The round trip alone smooths by [1 6 1]/8 along each axis,
 * so even a tiny change blurs a little. On the glyph generator's renders, -0.5 comes closest to its
 * pen two steps thinner (what bench/backbone-quality.ts calls the thinner pen). Writes into `out`
 * (which may be `image`).
 *
 * @example
 * morphPen(image, 28, 28, -0.5, out); // strokes half a pixel thinner on each side
 */
export function morphPen(image: Uint8Array, rows: number, cols: number, pixels: number, out: Uint8Array): void {
  const F = PEN_SUPERSAMPLE;
  const R = rows * F;
  const C = cols * F;
  const steps = Math.abs(pixels) * F;
  const whole = Math.floor(steps);
  const frac = steps - whole;
  const dilate = pixels > 0;
  const xs = upsampleTaps(cols);
  const ys = upsampleTaps(rows);
  const at = (y: number, x: number): number => (y < 0 || y >= rows || x < 0 || x >= cols ? 0 : image[y * cols + x]!);
  const wide = new Float32Array(rows * C);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < C; x++) {
      const x0 = xs.lo[x]!;
      const w = xs.w[x]!;
      wide[y * C + x] = (1 - w) * at(y, x0) + w * at(y, x0 + 1);
    }
  }
  const up = new Float32Array(R * C);
  for (let y = 0; y < R; y++) {
    const y0 = ys.lo[y]!;
    const w = ys.w[y]!;
    for (let x = 0; x < C; x++) {
      const a = y0 >= 0 ? wide[y0 * C + x]! : 0;
      const b = y0 + 1 < rows ? wide[(y0 + 1) * C + x]! : 0;
      up[y * C + x] = (1 - w) * a + w * b;
    }
  }
  const rowPass = new Float32Array(R * C);
  const morphed = (r: number): Float32Array => {
    if (r === 0) return up;
    const result = new Float32Array(R * C);
    windowExtreme(up, rowPass, R, C, C, 1, r, dilate);
    windowExtreme(rowPass, result, C, R, 1, C, r, dilate);
    return result;
  };
  const a = morphed(whole);
  const b = frac > 0 ? morphed(whole + 1) : a;
  const inv = 1 / (F * F);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      let sum = 0;
      for (let dy = 0; dy < F; dy++) {
        const row = (y * F + dy) * C + x * F;
        for (let dx = 0; dx < F; dx++) sum += a[row + dx]! + (b[row + dx]! - a[row + dx]!) * frac;
      }
      out[y * cols + x] = Math.round(sum * inv);
    }
  }
}

/**
 * Resamples one channel through an inverse map (output pixel centre → source position), bilinear,
 * zero outside the image.
 */
function warp(src: Uint8Array, rows: number, cols: number, map: Float32Array, out: Uint8Array): void {
  for (let i = 0; i < rows * cols; i++) {
    const u = map[2 * i]!;
    const v = map[2 * i + 1]!;
    if (u <= -1 || v <= -1 || u >= cols || v >= rows) {
      out[i] = 0;
      continue;
    }
    out[i] = Math.round(bilinearAt(src, cols, rows, u, v));
  }
}

function uniform(rng: SeededRng, range: number): number {
  return range === 0 ? 0 : (2 * rng.next() - 1) * range;
}

/**
 * The source position of every output pixel for one random draw: a similarity with shear about
 * the centre, a shift, and a smooth elastic displacement (smoothstep-interpolated lattice). Null
 * when the draw is the identity.
 */
function randomMap(config: AugmentConfig, rows: number, cols: number, rng: SeededRng): Float32Array | null {
  const theta = (uniform(rng, config.rotationDegrees) * Math.PI) / 180;
  const scale = 1 + uniform(rng, config.scale);
  const shear = uniform(rng, config.shear);
  const tx = uniform(rng, config.translation) * cols;
  const ty = uniform(rng, config.translation) * rows;
  const lattice = config.elastic > 0
    ? Float64Array.from({ length: 2 * (ELASTIC_GRID + 1) ** 2 }, () => uniform(rng, config.elastic))
    : undefined;
  if (theta === 0 && scale === 1 && shear === 0 && tx === 0 && ty === 0 && !lattice) return null;
  // Forward map M = scale · R(θ) · [1 shear; 0 1]; its inverse takes output offsets to source offsets.
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const a = scale * cos;
  const b = scale * (cos * shear - sin);
  const c = scale * sin;
  const d = scale * (sin * shear + cos);
  const det = a * d - b * c;
  const [ia, ib, ic, id] = [d / det, -b / det, -c / det, a / det];
  const cx = cols / 2;
  const cy = rows / 2;
  const map = new Float32Array(2 * rows * cols);
  const n = ELASTIC_GRID + 1;
  // Lattice cell and smoothstep weight of every column and row.
  const cellOf = (k: number, size: number): [number, number] => {
    const g = Math.min(((k + 0.5) / size) * ELASTIC_GRID, ELASTIC_GRID - 1e-9);
    const i = Math.floor(g);
    const t = g - i;
    return [i, t * t * (3 - 2 * t)];
  };
  const xs = Array.from({ length: cols }, (_, x) => cellOf(x, cols));
  const ys = Array.from({ length: rows }, (_, y) => cellOf(y, rows));
  for (let y = 0; y < rows; y++) {
    const [j, sy] = ys[y]!;
    for (let x = 0; x < cols; x++) {
      let px = x + 0.5;
      let py = y + 0.5;
      if (lattice) {
        const [i, sx] = xs[x]!;
        const p00 = 2 * (j * n + i);
        const p10 = p00 + 2;
        const p01 = p00 + 2 * n;
        const p11 = p01 + 2;
        const w00 = (1 - sx) * (1 - sy);
        const w10 = sx * (1 - sy);
        const w01 = (1 - sx) * sy;
        const w11 = sx * sy;
        px += (lattice[p00]! * w00 + lattice[p10]! * w10 + lattice[p01]! * w01 + lattice[p11]! * w11) * cols;
        py += (lattice[p00 + 1]! * w00 + lattice[p10 + 1]! * w10 + lattice[p01 + 1]! * w01 + lattice[p11 + 1]! * w11) * rows;
      }
      const ox = px - cx - tx;
      const oy = py - cy - ty;
      map[2 * (y * cols + x)] = ia * ox + ib * oy + cx - 0.5;
      map[2 * (y * cols + x) + 1] = ic * ox + id * oy + cy - 0.5;
    }
  }
  return map;
}

/**
 * The random part of augmenting `n` images: each image's stroke, pen and ink changes and its
 * resampling map, drawn in the order augmentImages draws them. Plain typed arrays, so that a shard
 * of them can go to the worker that holds those images (sliceDraws).
 */
export interface AugmentDraws {
  /** One entry per image, like `pen`, `ink` and `mapped`. */
  stroke: Float64Array;
  pen: Float64Array;
  ink: Float64Array;
  /** 1 where the image is resampled through its map in `maps`. */
  mapped: Uint8Array;
  /** 2·rows·cols source coordinates per image (zeros where not mapped), or empty when no image is mapped. */
  maps: Float32Array;
}

/** Draws the changes to `n` images from `rng`: the same rng state gives the same draws. */
export function drawAugmentation(n: number, shape: ImageShape, config: AugmentConfig, rng: SeededRng): AugmentDraws {
  const { rows, cols } = shape;
  const mapLength = 2 * rows * cols;
  const draws: AugmentDraws = { stroke: new Float64Array(n), pen: new Float64Array(n), ink: new Float64Array(n), mapped: new Uint8Array(n), maps: new Float32Array(0) };
  const maps: (Float32Array | null)[] = [];
  for (let k = 0; k < n; k++) {
    draws.stroke[k] = uniform(rng, config.strokeWidth);
    draws.pen[k] = uniform(rng, config.pen);
    // Drawn only when on (uniform draws nothing for 0), so configurations without it keep their images.
    draws.ink[k] = 2 ** uniform(rng, config.ink);
    const map = randomMap(config, rows, cols, rng);
    draws.mapped[k] = map ? 1 : 0;
    maps.push(map);
  }
  if (maps.some((m) => m)) {
    draws.maps = new Float32Array(n * mapLength);
    maps.forEach((m, k) => { if (m) draws.maps.set(m, k * mapLength); });
  }
  return draws;
}

/** Draws `from` … `from + count - 1`, for the worker that holds those images. */
export function sliceDraws(draws: AugmentDraws, from: number, count: number): AugmentDraws {
  const mapLength = draws.maps.length / draws.stroke.length;
  return {
    stroke: draws.stroke.slice(from, from + count),
    pen: draws.pen.slice(from, from + count),
    ink: draws.ink.slice(from, from + count),
    mapped: draws.mapped.slice(from, from + count),
    maps: draws.maps.length > 0 ? draws.maps.slice(from * mapLength, (from + count) * mapLength) : new Float32Array(0),
  };
}

/** Applies `draws` to as many images (uint8, channels last), in place. */
export function applyAugmentation(images: Uint8Array, shape: ImageShape, draws: AugmentDraws): void {
  const { rows, cols, channels } = shape;
  const plane = rows * cols;
  const count = draws.stroke.length;
  if (images.length !== count * plane * channels) throw new RangeError(`${count} augmentation draws for ${images.length / (plane * channels)} images`);
  const src = new Uint8Array(plane);
  const dst = new Uint8Array(plane);
  for (let k = 0; k < count; k++) {
    const base = k * plane * channels;
    const stroke = draws.stroke[k]!;
    const pen = draws.pen[k]!;
    const inkFactor = draws.ink[k]!;
    const map = draws.mapped[k] ? draws.maps.subarray(k * 2 * plane, (k + 1) * 2 * plane) : null;
    for (let ch = 0; ch < channels; ch++) {
      for (let i = 0; i < plane; i++) src[i] = images[base + i * channels + ch]!;
      if (stroke !== 0) morphStroke(src, rows, cols, stroke, src);
      if (pen !== 0) morphPen(src, rows, cols, pen, src);
      if (inkFactor !== 1) for (let i = 0; i < plane; i++) src[i] = Math.min(255, Math.round(src[i]! * inkFactor));
      if (map) warp(src, rows, cols, map, dst);
      const result = map ? dst : src;
      for (let i = 0; i < plane; i++) images[base + i * channels + ch] = result[i]!;
    }
  }
}

/**
 * Augments `n` images (uint8, channels last) in place, each with its own draw from `rng`: a
 * stroke-width change, a pen change, an ink-strength change, then an affine map and an elastic
 * displacement. The same rng state gives the same images.
 *
 * @example
 * augmentImages(episode.images, 200, { rows: 28, cols: 28, channels: 1 }, { ...NO_AUGMENTATION, strokeWidth: 1 }, rng);
 */
export function augmentImages(images: Uint8Array, n: number, shape: ImageShape, config: AugmentConfig, rng: SeededRng): void {
  if (isIdentityAugmentation(config)) return;
  const plane = shape.rows * shape.cols * shape.channels;
  applyAugmentation(images.subarray(0, n * plane), shape, drawAugmentation(n, shape, config, rng));
}
