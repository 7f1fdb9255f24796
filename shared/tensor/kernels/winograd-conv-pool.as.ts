// AssemblyScript (compiled by `npm run build:kernels` into winograd-conv-pool.wasm.ts; not TypeScript).
//
// A 3×3 'same' convolution + bias + ReLU + 2×2 stride-2 'valid' max-pool, NHWC float32, by
// Winograd F(2×2, 3×3): each 2×2 output tile takes 16 multiplies per (in, out) channel pair
// instead of 36. Each tile is exactly one pool window, so the pool is taken on the tile, and
// with an odd size the last row and column (which the pool never reads) are not computed.
// In channels a multiple of 4, out channels a multiple of 8.
/** Tiles per block: their 16 transformed inputs and products stay in cache between the three passes. */
const TB: i32 = 32;

@inline function ld(p: usize): v128 { return v128.load(p); }

/** Bytes of scratch `convPool` needs for c in and k out channels. */
export function scratchBytes(c: i32, k: i32): i32 { return 16 * TB * (c + k) * 4; }

/**
 * x: [n][h][w][c] input; u: [16][c][k] transformed weights (G g Gᵀ); bias: [k];
 * y: [n][⌊h/2⌋][⌊w/2⌋][k] output.
 */
export function convPool(x: usize, n: i32, h: i32, w: i32, c: i32, u: usize, bias: usize, k: i32, scratch: usize, y: usize): void {
  const th = h >> 1, tw = w >> 1;
  const per = th * tw;
  const tiles = n * per;
  const vb = scratch;
  const mb = scratch + <usize>(16 * TB * c * 4);
  const vq = <usize>(TB * c * 4); // stride between the 16 V matrices
  const mq = <usize>(TB * k * 4);
  const zero = f32x4.splat(0);
  for (let t0 = 0; t0 < tiles; t0 += TB) {
    const tb = min(TB, tiles - t0);
    for (let i = 0; i < tb; i++) {
      const t = t0 + i;
      const img = t / per;
      const r = t % per;
      const y0 = 2 * (r / tw) - 1;
      const x0 = 2 * (r % tw) - 1;
      const r0 = y0 >= 0, r3 = y0 + 3 < h;
      const c0 = x0 >= 0, c3 = x0 + 3 < w;
      const base = x + <usize>(((img * h + y0) * w + x0) * c * 4);
      const rowStride = <usize>(w * c * 4);
      const colStride = <usize>(c * 4);
      const out = vb + <usize>(i * c * 4);
      for (let ch = 0; ch < c; ch += 4) {
        const p = base + <usize>(ch * 4);
        // rows a = 0..3 of the tile, each as columns b = 0..3
        let d00 = zero, d01 = zero, d02 = zero, d03 = zero;
        let d10 = zero, d11 = zero, d12 = zero, d13 = zero;
        let d20 = zero, d21 = zero, d22 = zero, d23 = zero;
        let d30 = zero, d31 = zero, d32 = zero, d33 = zero;
        if (r0) {
          if (c0) d00 = ld(p);
          d01 = ld(p + colStride); d02 = ld(p + 2 * colStride);
          if (c3) d03 = ld(p + 3 * colStride);
        }
        const p1 = p + rowStride;
        if (c0) d10 = ld(p1);
        d11 = ld(p1 + colStride); d12 = ld(p1 + 2 * colStride);
        if (c3) d13 = ld(p1 + 3 * colStride);
        const p2 = p1 + rowStride;
        if (c0) d20 = ld(p2);
        d21 = ld(p2 + colStride); d22 = ld(p2 + 2 * colStride);
        if (c3) d23 = ld(p2 + 3 * colStride);
        if (r3) {
          const p3 = p2 + rowStride;
          if (c0) d30 = ld(p3);
          d31 = ld(p3 + colStride); d32 = ld(p3 + 2 * colStride);
          if (c3) d33 = ld(p3 + 3 * colStride);
        }
        // Bᵀ d (rows)
        const t00 = f32x4.sub(d00, d20), t01 = f32x4.sub(d01, d21), t02 = f32x4.sub(d02, d22), t03 = f32x4.sub(d03, d23);
        const t10 = f32x4.add(d10, d20), t11 = f32x4.add(d11, d21), t12 = f32x4.add(d12, d22), t13 = f32x4.add(d13, d23);
        const t20 = f32x4.sub(d20, d10), t21 = f32x4.sub(d21, d11), t22 = f32x4.sub(d22, d12), t23 = f32x4.sub(d23, d13);
        const t30 = f32x4.sub(d10, d30), t31 = f32x4.sub(d11, d31), t32 = f32x4.sub(d12, d32), t33 = f32x4.sub(d13, d33);
        // (Bᵀ d) B (columns), stored as V[4a+b][tile][channel]
        const o = out + <usize>(ch * 4);
        v128.store(o, f32x4.sub(t00, t02)); v128.store(o + vq, f32x4.add(t01, t02)); v128.store(o + 2 * vq, f32x4.sub(t02, t01)); v128.store(o + 3 * vq, f32x4.sub(t01, t03));
        v128.store(o + 4 * vq, f32x4.sub(t10, t12)); v128.store(o + 5 * vq, f32x4.add(t11, t12)); v128.store(o + 6 * vq, f32x4.sub(t12, t11)); v128.store(o + 7 * vq, f32x4.sub(t11, t13));
        v128.store(o + 8 * vq, f32x4.sub(t20, t22)); v128.store(o + 9 * vq, f32x4.add(t21, t22)); v128.store(o + 10 * vq, f32x4.sub(t22, t21)); v128.store(o + 11 * vq, f32x4.sub(t21, t23));
        v128.store(o + 12 * vq, f32x4.sub(t30, t32)); v128.store(o + 13 * vq, f32x4.add(t31, t32)); v128.store(o + 14 * vq, f32x4.sub(t32, t31)); v128.store(o + 15 * vq, f32x4.sub(t31, t33));
      }
    }
    for (let q = 0; q < 16; q++) gemm(vb + <usize>q * vq, u + <usize>(q * c * k * 4), mb + <usize>q * mq, tb, c, k);
    for (let i = 0; i < tb; i++) {
      const m = mb + <usize>(i * k * 4);
      const dst = y + <usize>((t0 + i) * k * 4);
      for (let j = 0; j < k; j += 4) {
        const p = m + <usize>(j * 4);
        const m00 = ld(p), m01 = ld(p + mq), m02 = ld(p + 2 * mq), m03 = ld(p + 3 * mq);
        const m10 = ld(p + 4 * mq), m11 = ld(p + 5 * mq), m12 = ld(p + 6 * mq), m13 = ld(p + 7 * mq);
        const m20 = ld(p + 8 * mq), m21 = ld(p + 9 * mq), m22 = ld(p + 10 * mq), m23 = ld(p + 11 * mq);
        const m30 = ld(p + 12 * mq), m31 = ld(p + 13 * mq), m32 = ld(p + 14 * mq), m33 = ld(p + 15 * mq);
        // Aᵀ m (rows): s0 = m0 + m1 + m2, s1 = m1 − m2 − m3
        const s00 = f32x4.add(f32x4.add(m00, m10), m20), s01 = f32x4.add(f32x4.add(m01, m11), m21), s02 = f32x4.add(f32x4.add(m02, m12), m22), s03 = f32x4.add(f32x4.add(m03, m13), m23);
        const s10 = f32x4.sub(f32x4.sub(m10, m20), m30), s11 = f32x4.sub(f32x4.sub(m11, m21), m31), s12 = f32x4.sub(f32x4.sub(m12, m22), m32), s13 = f32x4.sub(f32x4.sub(m13, m23), m33);
        const y00 = f32x4.add(f32x4.add(s00, s01), s02), y01 = f32x4.sub(f32x4.sub(s01, s02), s03);
        const y10 = f32x4.add(f32x4.add(s10, s11), s12), y11 = f32x4.sub(f32x4.sub(s11, s12), s13);
        const top = f32x4.max(f32x4.max(y00, y01), f32x4.max(y10, y11));
        v128.store(dst + <usize>(j * 4), f32x4.max(f32x4.add(top, ld(bias + <usize>(j * 4))), zero));
      }
    }
  }
}

// C[rows][k] = A[rows][c] · B[c][k]; 4 rows × 8 columns at a time (rows past the end repeat the last).
function gemm(a: usize, b: usize, out: usize, rows: i32, c: i32, k: i32): void {
  const ca = <usize>(c * 4);
  const kb = <usize>(k * 4);
  for (let r = 0; r < rows; r += 4) {
    const a0 = a + <usize>r * ca;
    const a1 = a + <usize>min(r + 1, rows - 1) * ca;
    const a2 = a + <usize>min(r + 2, rows - 1) * ca;
    const a3 = a + <usize>min(r + 3, rows - 1) * ca;
    for (let j = 0; j < k; j += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let bp = b + <usize>(j * 4);
      for (let cc = 0; cc < c; cc++) {
        const b0 = ld(bp), b1 = ld(bp + 16);
        const off = <usize>(cc * 4);
        const x0 = v128.load32_splat(a0 + off), x1 = v128.load32_splat(a1 + off);
        const x2 = v128.load32_splat(a2 + off), x3 = v128.load32_splat(a3 + off);
        c00 = f32x4.add(c00, f32x4.mul(x0, b0)); c01 = f32x4.add(c01, f32x4.mul(x0, b1));
        c10 = f32x4.add(c10, f32x4.mul(x1, b0)); c11 = f32x4.add(c11, f32x4.mul(x1, b1));
        c20 = f32x4.add(c20, f32x4.mul(x2, b0)); c21 = f32x4.add(c21, f32x4.mul(x2, b1));
        c30 = f32x4.add(c30, f32x4.mul(x3, b0)); c31 = f32x4.add(c31, f32x4.mul(x3, b1));
        bp += kb;
      }
      const o0 = out + <usize>(r * k + j) * 4;
      v128.store(o0, c00); v128.store(o0 + 16, c01);
      if (r + 1 < rows) { v128.store(o0 + kb, c10); v128.store(o0 + kb + 16, c11); }
      if (r + 2 < rows) { v128.store(o0 + 2 * kb, c20); v128.store(o0 + 2 * kb + 16, c21); }
      if (r + 3 < rows) { v128.store(o0 + 3 * kb, c30); v128.store(o0 + 3 * kb + 16, c31); }
    }
  }
}
