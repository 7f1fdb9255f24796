/**
 * Hand-written forward and backward passes of the non-convolution parts of a conv4 ProtoNet
 * training step, on plain Float32Arrays (NHWC): training-mode BatchNorm + ReLU + 2×2 max-pooling
 * as one kernel each way, and the prototypical loss with its gradient. They replace about a dozen
 * tfjs kernels per block (channel sums, broadcasts, Step, MaxPoolGrad, …) that cost more than the
 * convolutions themselves on wasm (bench/train-profile.ts).
 *
 * Every reduction over the batch goes through a `sum` callback, so that a batch split over
 * threads gives the same result as one thread: per-channel sums are added across shards before
 * they are used (synchronised BatchNorm).
 */

/** Adds a vector across the shards of a batch, in place (the identity on one thread). */
export type ShardSum = (values: Float64Array) => void;

export const identitySum: ShardSum = () => {};

export interface BlockShape {
  /** Images in this shard. */
  n: number;
  h: number;
  w: number;
  c: number;
}

/** What the backward pass of one block needs from its forward pass. */
export interface BlockSaved {
  mean: Float64Array;
  invStd: Float64Array;
  /** Per pooled output: which of the 2×2 window (0–3, row-major) was the max, or 255 when the max was ≤ 0 (no gradient). */
  arg: Uint8Array;
  /** Images in the whole batch (all shards). */
  total: number;
}

/**
 * Training-mode BatchNorm (batch statistics over all shards, biased variance), ReLU and 2×2
 * stride-2 'valid' max-pooling of a conv output `z`, written into `out` ([n, ⌊h/2⌋, ⌊w/2⌋, c]).
 * Returns what the backward pass needs and the batch variance (biased) for the moving averages.
 */
export function bnReluPoolForward(
  z: Float32Array, shape: BlockShape, gamma: Float32Array, beta: Float32Array, epsilon: number,
  out: Float32Array, sum: ShardSum,
): { saved: BlockSaved; variance: Float64Array } {
  const { n, h, w, c } = shape;
  const moments = new Float64Array(2 * c + 1);
  const rows = n * h * w;
  // Four rows at a time: half the loads and stores of the float64 accumulators, which bound this loop.
  const four = rows - (rows % 4);
  for (let o = 0, end = four * c; o < end; o += 4 * c) {
    for (let k = 0; k < c; k++) {
      const v0 = z[o + k]!;
      const v1 = z[o + c + k]!;
      const v2 = z[o + 2 * c + k]!;
      const v3 = z[o + 3 * c + k]!;
      moments[k]! += (v0 + v1) + (v2 + v3);
      moments[c + k]! += (v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3);
    }
  }
  for (let o = four * c; o < rows * c; o += c) {
    for (let k = 0; k < c; k++) {
      const v = z[o + k]!;
      moments[k]! += v;
      moments[c + k]! += v * v;
    }
  }
  moments[2 * c] = n;
  sum(moments);
  const total = moments[2 * c]!;
  const count = total * h * w;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  const invStd = new Float64Array(c);
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    mean[k] = moments[k]! / count;
    variance[k] = Math.max(moments[c + k]! / count - mean[k]! * mean[k]!, 0);
    invStd[k] = 1 / Math.sqrt(variance[k]! + epsilon);
    scale[k] = gamma[k]! * invStd[k]!;
    shift[k] = beta[k]! - mean[k]! * scale[k]!;
  }
  const h2 = h >> 1;
  const w2 = w >> 1;
  const arg = new Uint8Array(n * h2 * w2 * c);
  const rowStride = w * c;
  let p = 0;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h2; y++) {
      let o00 = ((i * h + 2 * y) * w) * c;
      for (let x = 0; x < w2; x++, o00 += 2 * c, p += c) {
        const o01 = o00 + c;
        const o10 = o00 + rowStride;
        const o11 = o10 + c;
        for (let k = 0; k < c; k++) {
          const s = scale[k]!;
          const t = shift[k]!;
          let best = z[o00 + k]! * s + t;
          let at = 0;
          const v1 = z[o01 + k]! * s + t;
          if (v1 > best) { best = v1; at = 1; }
          const v2 = z[o10 + k]! * s + t;
          if (v2 > best) { best = v2; at = 2; }
          const v3 = z[o11 + k]! * s + t;
          if (v3 > best) { best = v3; at = 3; }
          if (best > 0) {
            out[p + k] = best;
            arg[p + k] = at;
          } else {
            out[p + k] = 0;
            arg[p + k] = 255;
          }
        }
      }
    }
  }
  return { saved: { mean, invStd, arg, total }, variance };
}

/**
 * The backward pass of bnReluPoolForward: from the gradient of the pooled output `dOut`, writes
 * the gradient of the conv output into `dz` and returns the gradients of gamma and beta (summed
 * over all shards). With `channelsFirst`, dz is written as [c, n·h·w] (what a filter gradient by
 * matrix product wants) instead of NHWC.
 */
export function bnReluPoolBackward(
  dOut: Float32Array, z: Float32Array, shape: BlockShape, gamma: Float32Array, saved: BlockSaved,
  dz: Float32Array, sum: ShardSum, channelsFirst = false,
): { dGamma: Float32Array; dBeta: Float32Array } {
  const { n, h, w, c } = shape;
  const { mean, invStd, arg, total } = saved;
  const h2 = h >> 1;
  const w2 = w >> 1;
  const rowStride = w * c;
  const offset = [0, c, rowStride, rowStride + c];
  // Σ dy and Σ dy·x̂ over the positions that received a gradient (the max of each window).
  const sums = new Float64Array(2 * c);
  let p = 0;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h2; y++) {
      let o00 = ((i * h + 2 * y) * w) * c;
      for (let x = 0; x < w2; x++, o00 += 2 * c, p += c) {
        for (let k = 0; k < c; k++) {
          const at = arg[p + k]!;
          if (at === 255) continue;
          const d = dOut[p + k]!;
          sums[k]! += d;
          sums[c + k]! += d * (z[o00 + offset[at]! + k]! - mean[k]!) * invStd[k]!;
        }
      }
    }
  }
  sum(sums);
  const count = total * h * w;
  // dz = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)), affine in z away from the window maxima.
  const a = new Float32Array(c);
  const b = new Float32Array(c);
  const g = new Float32Array(c);
  const dGamma = new Float32Array(c);
  const dBeta = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    dBeta[k] = sums[k]!;
    dGamma[k] = sums[c + k]!;
    const gi = gamma[k]! * invStd[k]!;
    const mb = sums[k]! / count;
    const mg = sums[c + k]! / count;
    g[k] = gi;
    a[k] = -gi * mg * invStd[k]!;
    b[k] = -gi * mb + gi * mg * invStd[k]! * mean[k]!;
  }
  const rows = n * h * w;
  const target = channelsFirst ? scratch(rows * c) : dz;
  // Window by window: the four values of each, plus the pooled gradient at the window's max.
  p = 0;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h2; y++) {
      let o00 = ((i * h + 2 * y) * w) * c;
      for (let x = 0; x < w2; x++, o00 += 2 * c, p += c) {
        const o01 = o00 + c;
        const o10 = o00 + rowStride;
        const o11 = o10 + c;
        for (let k = 0; k < c; k++) {
          const ak = a[k]!;
          const bk = b[k]!;
          target[o00 + k] = z[o00 + k]! * ak + bk;
          target[o01 + k] = z[o01 + k]! * ak + bk;
          target[o10 + k] = z[o10 + k]! * ak + bk;
          target[o11 + k] = z[o11 + k]! * ak + bk;
          const at = arg[p + k]!;
          if (at !== 255) target[o00 + offset[at]! + k]! += g[k]! * dOut[p + k]!;
        }
      }
    }
  }
  // Rows and columns that 'valid' pooling left out (odd sizes) get no pooled gradient.
  if (h !== 2 * h2 || w !== 2 * w2) {
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < h; y++) {
        for (let x = y >= 2 * h2 ? 0 : 2 * w2; x < w; x++) {
          const o = ((i * h + y) * w + x) * c;
          for (let k = 0; k < c; k++) target[o + k] = z[o + k]! * a[k]! + b[k]!;
        }
      }
    }
  }
  if (channelsFirst) transpose2d(target, rows, c, dz);
  return { dGamma, dBeta };
}

let scratchBuffer = new Float32Array(0);
/** A reused buffer of at least `size` floats (a fresh 40 MB array per step costs its page faults every time). */
function scratch(size: number): Float32Array {
  if (scratchBuffer.length < size) scratchBuffer = new Float32Array(size);
  return scratchBuffer.subarray(0, size);
}

/** dst[j·rows + i] = src[i·cols + j]: a [rows, cols] matrix transposed, in cache-sized tiles. */
export function transpose2d(src: Float32Array, rows: number, cols: number, dst: Float32Array, dstOffset = 0, dstStride = rows): void {
  const T = 32;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(i0 + T, rows);
    for (let j0 = 0; j0 < cols; j0 += T) {
      const j1 = Math.min(j0 + T, cols);
      for (let j = j0; j < j1; j++) {
        const d = dstOffset + j * dstStride;
        for (let i = i0; i < i1; i++) dst[d + i] = src[i * cols + j]!;
      }
    }
  }
}

/**
 * NHWC → CHWN (a conv filter gradient's input as a batch of channels): for each pixel, an
 * [n, c] matrix transposed.
 */
export function nhwcToChwn(src: Float32Array, n: number, h: number, w: number, c: number, dst: Float32Array): void {
  const pixels = h * w;
  const T = 32;
  for (let i0 = 0; i0 < n; i0 += T) {
    const i1 = Math.min(i0 + T, n);
    for (let q = 0; q < pixels; q++) {
      for (let k = 0; k < c; k++) {
        const d = (k * pixels + q) * n;
        for (let i = i0; i < i1; i++) dst[d + i] = src[(i * pixels + q) * c + k]!;
      }
    }
  }
}

/** NHWC → HWNC (a conv output gradient as a filter): contiguous runs of c values move. */
export function nhwcToHwnc(src: Float32Array, n: number, h: number, w: number, c: number, dst: Float32Array): void {
  const pixels = h * w;
  for (let i = 0; i < n; i++) {
    for (let q = 0; q < pixels; q++) {
      const from = (i * pixels + q) * c;
      dst.set(src.subarray(from, from + c), (q * n + i) * c);
    }
  }
}

/**
 * im2col of a batch of images (bytes, NHWC) scaled by 1/255, for a stride-1 convolution with
 * `top`/`left` zero padding and an output the size of the input: [n·h·w, kh·kw·c], columns in
 * the filter's (ky, kx, channel) order.
 */
export function imagePatches(images: Uint8Array, n: number, h: number, w: number, c: number, kh: number, kw: number, top: number, left: number): Float32Array {
  const k = kh * kw * c;
  const out = new Float32Array(n * h * w * k);
  let q = 0;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++, q += k) {
        for (let ky = 0; ky < kh; ky++) {
          const sy = y + ky - top;
          if (sy < 0 || sy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const sx = x + kx - left;
            if (sx < 0 || sx >= w) continue;
            const from = ((i * h + sy) * w + sx) * c;
            const to = q + (ky * kw + kx) * c;
            for (let ch = 0; ch < c; ch++) out[to + ch] = images[from + ch]! / 255;
          }
        }
      }
    }
  }
  return out;
}

export interface EpisodeLayout {
  ways: number;
  shots: number;
  queries: number;
}

/**
 * The prototypical loss of one episode (embeddings [ways × (shots + queries), dim], class by
 * class, shots before queries; as pretrain/prototypical-loss.ts) with its gradient with respect to
 * the embeddings. Computed in float64.
 */
export function prototypicalLossGrad(
  embeddings: Float64Array, dim: number, layout: EpisodeLayout,
): { loss: number; accuracy: number; grad: Float64Array } {
  const { ways, shots, queries } = layout;
  const per = shots + queries;
  const protos = new Float64Array(ways * dim);
  for (let k = 0; k < ways; k++) {
    for (let s = 0; s < shots; s++) {
      const r = (k * per + s) * dim;
      for (let d = 0; d < dim; d++) protos[k * dim + d]! += embeddings[r + d]!;
    }
    for (let d = 0; d < dim; d++) protos[k * dim + d]! /= shots;
  }
  const grad = new Float64Array(embeddings.length);
  const dProtos = new Float64Array(ways * dim);
  const logits = new Float64Array(ways);
  const nq = ways * queries;
  let loss = 0;
  let correct = 0;
  for (let k = 0; k < ways; k++) {
    for (let q = 0; q < queries; q++) {
      const r = (k * per + shots + q) * dim;
      let best = -Infinity;
      let at = 0;
      for (let j = 0; j < ways; j++) {
        let dist = 0;
        for (let d = 0; d < dim; d++) {
          const diff = embeddings[r + d]! - protos[j * dim + d]!;
          dist += diff * diff;
        }
        logits[j] = -dist;
        if (-dist > best) { best = -dist; at = j; }
      }
      if (at === k) correct++;
      let z = 0;
      for (let j = 0; j < ways; j++) z += Math.exp(logits[j]! - best);
      loss += Math.log(z) + best - logits[k]!;
      for (let j = 0; j < ways; j++) {
        // dL/dlogit_j, and logit_j = −‖e − p_j‖².
        const gl = (Math.exp(logits[j]! - best) / z - (j === k ? 1 : 0)) / nq;
        for (let d = 0; d < dim; d++) {
          const diff = embeddings[r + d]! - protos[j * dim + d]!;
          grad[r + d]! -= 2 * gl * diff;
          dProtos[j * dim + d]! += 2 * gl * diff;
        }
      }
    }
  }
  for (let k = 0; k < ways; k++) {
    for (let s = 0; s < shots; s++) {
      const r = (k * per + s) * dim;
      for (let d = 0; d < dim; d++) grad[r + d]! += dProtos[k * dim + d]! / shots;
    }
  }
  return { loss: loss / nq, accuracy: correct / nq, grad };
}
