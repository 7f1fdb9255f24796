import { describe, expect, it, vi } from 'vitest';
import {
  CODECS,
  FLOAT32_MAX,
  RP_MAX_DIM,
  RP_SEED,
  describeCodec,
  rpProjection,
  type VectorCodec,
} from '../shared/protocol/codecs/index.js';
import { SeededRng } from '../shared/learning/rng.js';
import { expectCodecError } from './support/codec-errors.js';

const FAMILY = [
  ['rp-8', 8],
  ['rp-16', 16],
  ['rp-32', 32],
] as const;


/** R v for the row-major m × n matrix R. */
function project(r: Float64Array, m: number, v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const y = new Float64Array(m);
  for (let j = 0; j < m; j++) for (let i = 0; i < n; i++) y[j] = y[j]! + r[j * n + i]! * v[i]!;
  return y;
}

/** Rᵀ y. */
function lift(r: Float64Array, m: number, n: number, y: ArrayLike<number>): Float64Array {
  const out = new Float64Array(n);
  for (let j = 0; j < m; j++) for (let i = 0; i < n; i++) out[i] = out[i]! + r[j * n + i]! * y[j]!;
  return out;
}

function coefficients(bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, j) => dv.getFloat32(4 * j, true));
}

function gaussianVector(rng: SeededRng, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => rng.normal() * scale);
}

const norm = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  Array.from(a).reduce((e, x, i) => Math.max(e, Math.abs(x - b[i]!)), 0);

describe.each(FAMILY)('%s', (name, m) => {
  const codec: VectorCodec = CODECS[name];

  it('uses a projection with orthonormal rows (R Rᵀ = I within 1e-12), shared as a prefix by larger m', () => {
    for (const n of [m, m + 1, 33, 64, 100, 1600].filter((d) => d >= m)) {
      const r = rpProjection(n, m);
      expect(r.length).toBe(m * n);
      for (let j = 0; j < m; j++) {
        for (let k = 0; k < m; k++) {
          let d = 0;
          for (let i = 0; i < n; i++) d += r[j * n + i]! * r[k * n + i]!;
          if (!(Math.abs(d - (j === k ? 1 : 0)) <= 1e-12)) throw new Error(`dim ${n}: (R Rᵀ)[${j}][${k}] = ${d}`);
        }
      }
      if (n >= 32) expect(Array.from(rpProjection(n, 32).subarray(0, m * n))).toEqual(Array.from(r));
    }
    // A copy: changing it does not change the codec.
    const r = rpProjection(64, m);
    const before = codec.encode(Float64Array.from({ length: 64 }, (_, i) => i));
    r.fill(0);
    expect(codec.encode(Float64Array.from({ length: 64 }, (_, i) => i))).toEqual(before);
  });

  it('encodes float32(R v) in 4m little-endian bytes and decodes Rᵀ y', () => {
    const rng = new SeededRng(11).fork(name);
    for (const n of [m, 64, 100, 1600]) {
      const r = rpProjection(n, m);
      for (let trial = 0; trial < 5; trial++) {
        const v = gaussianVector(rng, n, 10 ** (trial - 2));
        const bytes = codec.encode(v);
        expect(bytes.length).toBe(4 * m);
        expect(codec.encodedLength(n)).toBe(4 * m);
        const y = project(r, m, v);
        expect(coefficients(bytes)).toEqual(Array.from(y, Math.fround));
        const decoded = codec.decode(bytes, n);
        expect(decoded).toBeInstanceOf(Float64Array);
        expect(decoded.length).toBe(n);
        // Exactly Rᵀ float32(R v) up to double rounding ...
        expect(maxAbsDiff(decoded, lift(r, m, n, coefficients(bytes)))).toBeLessThanOrEqual(1e-13 * norm(v));
        // ... which is the projection RᵀR v up to float32 rounding of the coefficients.
        expect(maxAbsDiff(decoded, lift(r, m, n, y))).toBeLessThanOrEqual(Math.sqrt(m) * 2 ** -24 * norm(y) * 1.01);
      }
    }
  });

  it('is idempotent on its own output up to float32 rounding, and errorBound says so', () => {
    const rng = new SeededRng(12).fork(name);
    const v = gaussianVector(rng, 64);
    const once = codec.decode(codec.encode(v), 64);
    const twice = codec.decode(codec.encode(once), 64);
    expect(maxAbsDiff(once, twice)).toBeLessThanOrEqual(1e-6 * norm(v));
    expect(codec.errorBound(once)).toBeLessThanOrEqual(2e-6 * norm(once));
    expect(maxAbsDiff(twice, once)).toBeLessThanOrEqual(codec.errorBound(once));
  });

  it('has a guaranteed errorBound between the real error and ‖v‖₂ (1 + 1e-6), at every scale', () => {
    const rng = new SeededRng(13).fork(name);
    for (const n of [m, 64, 257]) {
      for (const scale of [1e-200, 1e-42, 1e-20, 1e-3, 1, 1e3, 1e30, FLOAT32_MAX / 64]) {
        const v = gaussianVector(rng, n, scale);
        for (let i = 0; i < n; i++) v[i] = Math.max(-FLOAT32_MAX, Math.min(FLOAT32_MAX, v[i]!));
        const err = maxAbsDiff(codec.decode(codec.encode(v), n), v);
        const bound = codec.errorBound(v);
        if (!(err <= bound)) throw new Error(`dim ${n} scale ${scale}: error ${err} > bound ${bound}`);
        if (scale >= 1e-20 && !(bound <= norm(v) * (1 + 1e-6))) throw new Error(`dim ${n} scale ${scale}: bound ${bound} > ‖v‖`);
      }
    }
    expect(codec.errorBound(new Float64Array(64))).toBe(0);
    expect(Array.from(codec.decode(codec.encode(new Float64Array(64)), 64))).toEqual(new Array(64).fill(0));
  });

  it('ranks classes by nearest mean identically with decoded prototypes and in the projected space', () => {
    const rng = new SeededRng(14).fork(name);
    const n = 64;
    const classes = 25;
    const r = rpProjection(n, m);
    for (let round = 0; round < 8; round++) {
      // Clustered data: class centres, prototypes are means of 5–20 noisy examples.
      const centres = Array.from({ length: classes }, () => gaussianVector(rng, n, 1 + round));
      const coeffs: number[][] = [];
      const decoded: Float64Array[] = [];
      for (const centre of centres) {
        const shots = 5 + rng.int(16);
        const p = new Float64Array(n);
        for (let s = 0; s < shots; s++) for (let i = 0; i < n; i++) p[i] = p[i]! + (centre[i]! + rng.normal()) / shots;
        const bytes = codec.encode(p);
        coeffs.push(coefficients(bytes));
        decoded.push(codec.decode(bytes, n));
      }
      for (let t = 0; t < 40; t++) {
        const q = centres[rng.int(classes)]!.map((x) => x + 1.5 * rng.normal());
        const rq = project(r, m, q);
        const full = decoded.map((d) => d.reduce((s, x, i) => s + (q[i]! - x) ** 2, 0));
        const projected = coeffs.map((y) => y.reduce((s, x, j) => s + (rq[j]! - x) ** 2, 0));
        // ‖q − Rᵀy‖² = ‖(I − RᵀR) q‖² + ‖R q − y‖²: the same offset for every class.
        const offset = q.reduce((s, x) => s + x * x, 0) - rq.reduce((s, x) => s + x * x, 0);
        const scale = Math.max(...full);
        full.forEach((f, c) => expect(Math.abs(f - projected[c]! - offset)).toBeLessThanOrEqual(1e-9 * scale));
        const order = (d: number[]): number[] => d.map((_, c) => c).sort((a, b) => d[a]! - d[b]! || a - b);
        expect(order(full)).toEqual(order(projected));
      }
    }
  });

  it('gives the same bytes on every call and in a fresh module instance', async () => {
    const v = Float64Array.from({ length: 64 }, (_, i) => (i % 7) - 3 + i / 64);
    const first = codec.encode(v);
    expect(codec.encode(v)).toEqual(first);
    expect(codec.encode(Float32Array.from(v))).toEqual(first);
    vi.resetModules();
    const fresh = await import('../shared/protocol/codecs/index.js');
    expect(fresh.CODECS[name]).not.toBe(codec);
    expect(fresh.CODECS[name].encode(v)).toEqual(first);
    expect(Array.from(fresh.rpProjection(64, m))).toEqual(Array.from(rpProjection(64, m)));
  });

  it('rejects dim < m, dim > RP_MAX_DIM, and projections beyond the float32 range', () => {
    expectCodecError(() => codec.encodedLength(m - 1), new RegExp(`dimension ${m - 1} is smaller than the ${m}`));
    expectCodecError(() => codec.encode(new Float64Array(m - 1)), /smaller than/);
    expectCodecError(() => codec.errorBound(new Float64Array(m - 1)), /smaller than/);
    expectCodecError(() => codec.decode(new Uint8Array(4 * m), m - 1), /smaller than/);
    expectCodecError(() => codec.encodedLength(RP_MAX_DIM + 1), /exceeds the maximum/);
    expectCodecError(() => rpProjection(m - 1, m), /smaller than/);
    expectCodecError(() => rpProjection(64, 0), /positive integer/);
    expect(codec.encodedLength(m)).toBe(4 * m);
    expect(describeCodec(name).bitsPerElement(64)).toBe((4 * m * 8) / 64);
    // Every element in range, but ‖v‖ = 8 · FLOAT32_MAX lies along R's first row (±1/8 entries).
    const r = rpProjection(64, m);
    const along = Float64Array.from({ length: 64 }, (_, i) => Math.sign(r[i]!) * FLOAT32_MAX);
    expectCodecError(() => codec.encode(along), /projected coefficient 0 .*float32 range/);
    expectCodecError(() => codec.errorBound(along), /float32 range/);
    expectCodecError(() => codec.encode(new Float64Array(64).fill(1).fill(1e39, 5, 6)), /element 5 .*float32 range/);
  });

  it('rejects non-finite coefficients on decode', () => {
    const bytes = codec.encode(new Float64Array(64).fill(1));
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const copy = bytes.slice();
      new DataView(copy.buffer).setFloat32(4 * (m - 1), bad, true);
      expectCodecError(() => codec.decode(copy, 64), new RegExp(`coefficient ${m - 1}`));
    }
  });
});

describe('rp codecs', () => {
  it('derive the pinned projection from RP_SEED (changing it breaks every peer that has not changed)', () => {
    // Exact rational input; the matrix uses only IEEE basic operations, so these bytes are the
    // same on every platform. The smaller codecs' bytes are prefixes (shared first rows).
    const v = Float64Array.from({ length: 64 }, (_, i) => (i % 7) - 3 + i / 64);
    const golden =
      '0000173ff48def3ee963cdbfd3026b3e61039ebda2067d3f6674c3c0126c8f3f8542fbbf8784b53fa6e0c73e3c26abbf' +
      '13103c405c96383f980c15bfae1d16402777cf3f00040fc09007efbf0d362bbf0793243f02450ec045daa3401778a9bf' +
      '39c46640e42677bed1b85ebeccab8040934e8cc0ee66b83f11443fbfb4310fc0';
    expect(RP_SEED).toBe(0x72703634);
    for (const [name, m] of FAMILY) {
      expect(Buffer.from(CODECS[name].encode(v)).toString('hex')).toBe(golden.slice(0, 8 * m));
    }
  });

  it('keep more of a vector as m grows', () => {
    const rng = new SeededRng(15);
    const v = gaussianVector(rng, 64);
    const errors = FAMILY.map(([name]) => norm(CODECS[name].decode(CODECS[name].encode(v), 64).map((x, i) => x - v[i]!)));
    expect(errors[0]).toBeGreaterThan(errors[1]!);
    expect(errors[1]).toBeGreaterThan(errors[2]!);
  });
});
