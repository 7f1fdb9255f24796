/**
 * Pixel operations on decoded images (no file or codec access, so they run in a browser too):
 * RGBA to greyscale or RGB, and the deterministic resize every image loader uses.
 */

/**
 * Converts RGBA to `channels` (1: ITU-R BT.601 luma, 3: RGB), compositing any transparency on white.
 * The integer luma weights sum to 1000, so a grey pixel (r = g = b) keeps its exact value.
 */
export function fromRgba(rgba: Uint8Array, width: number, height: number, channels: 1 | 3): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * channels);
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    let r = rgba[p]!;
    let g = rgba[p + 1]!;
    let b = rgba[p + 2]!;
    const a = rgba[p + 3]!;
    if (a !== 255) {
      const white = 255 * (255 - a);
      r = ((r * a + white) / 255 + 0.5) | 0;
      g = ((g * a + white) / 255 + 0.5) | 0;
      b = ((b * a + white) / 255 + 0.5) | 0;
    }
    if (channels === 1) {
      out[i] = ((r * 299 + g * 587 + b * 114 + 500) / 1000) | 0;
    } else {
      const o = i * 3;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
    }
  }
  return out;
}

/** For each output index along one axis, the source indices it reads and their weights (summing to 1). */
interface AxisTaps {
  start: Int32Array;
  count: Int32Array;
  index: Int32Array;
  weight: Float64Array;
}

const tapCache = new Map<string, AxisTaps>();

function axisTaps(inSize: number, outSize: number): AxisTaps {
  const key = `${inSize}>${outSize}`;
  const cached = tapCache.get(key);
  if (cached) return cached;

  const indices: number[] = [];
  const weights: number[] = [];
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    start[o] = indices.length;
    if (inSize >= outSize) {
      // Area averaging: output pixel o covers source interval [o*scale, (o+1)*scale).
      const lo = o * scale;
      const hi = lo + scale;
      for (let s = Math.floor(lo); s < hi && s < inSize; s++) {
        const overlap = Math.min(hi, s + 1) - Math.max(lo, s);
        if (overlap > 1e-12) {
          indices.push(s);
          weights.push(overlap / scale);
        }
      }
    } else {
      // Bilinear with pixel centres aligned (the convention of OpenCV and PIL), clamped at the edges.
      const x = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inSize - 1);
      const s0 = Math.floor(x);
      const frac = x - s0;
      indices.push(s0);
      weights.push(1 - frac);
      if (frac > 0 && s0 + 1 < inSize) {
        indices.push(s0 + 1);
        weights.push(frac);
      }
    }
    count[o] = indices.length - start[o]!;
  }
  const taps: AxisTaps = { start, count, index: Int32Array.from(indices), weight: Float64Array.from(weights) };
  if (tapCache.size > 256) tapCache.clear();
  tapCache.set(key, taps);
  return taps;
}

/**
 * Resizes row-major, channels-last 8-bit pixels: area averaging (a box filter) along an axis that
 * shrinks, bilinear interpolation along one that grows. Deterministic; same size returns a copy.
 *
 * @example
 * // 4x4 greyscale to 2x2: each output pixel is the mean of a 2x2 block.
 * const small = resizeArea(pixels, 4, 4, 1, 2, 2);
 */
export function resizeArea(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  for (const [name, v] of [['width', width], ['height', height], ['outWidth', outWidth], ['outHeight', outHeight], ['channels', channels]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`resizeArea: ${name} must be a positive integer, got ${v}`);
  }
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`resizeArea: ${width}x${height}x${channels} needs ${width * height * channels} bytes, got ${pixels.length}`);
  }
  if (width === outWidth && height === outHeight) return pixels.slice();

  const tx = axisTaps(width, outWidth);
  const ty = axisTaps(height, outHeight);

  // Horizontal pass into floats, then vertical pass with rounding.
  const mid = new Float64Array(height * outWidth * channels);
  for (let y = 0; y < height; y++) {
    const row = y * width * channels;
    const midRow = y * outWidth * channels;
    for (let ox = 0; ox < outWidth; ox++) {
      const s = tx.start[ox]!;
      const e = s + tx.count[ox]!;
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let t = s; t < e; t++) acc += pixels[row + tx.index[t]! * channels + c]! * tx.weight[t]!;
        mid[midRow + ox * channels + c] = acc;
      }
    }
  }

  const rowLen = outWidth * channels;
  const out = new Uint8Array(outHeight * rowLen);
  for (let oy = 0; oy < outHeight; oy++) {
    const s = ty.start[oy]!;
    const e = s + ty.count[oy]!;
    const outRow = oy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let acc = 0;
      for (let t = s; t < e; t++) acc += mid[ty.index[t]! * rowLen + i]! * ty.weight[t]!;
      // Float sums can land just below an exact half (127.49999999); round those up as exact arithmetic would.
      const v = Math.floor(acc + 0.5 + 1e-9);
      out[outRow + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/**
 * The bilinear sample of a single-channel image at (u, v) (pixel centres at integers), with
 * zeros outside it.
 */
export function bilinearAt(src: ArrayLike<number>, width: number, height: number, u: number, v: number): number {
  const u0 = Math.floor(u);
  const v0 = Math.floor(v);
  const fu = u - u0;
  const fv = v - v0;
  const p00 = u0 >= 0 && v0 >= 0 ? src[v0 * width + u0]! : 0;
  const p10 = u0 + 1 < width && v0 >= 0 ? src[v0 * width + u0 + 1]! : 0;
  const p01 = u0 >= 0 && v0 + 1 < height ? src[(v0 + 1) * width + u0]! : 0;
  const p11 = u0 + 1 < width && v0 + 1 < height ? src[(v0 + 1) * width + u0 + 1]! : 0;
  return (p00 * (1 - fu) + p10 * fu) * (1 - fv) + (p01 * (1 - fu) + p11 * fu) * fv;
}
