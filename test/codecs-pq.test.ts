import { describe, expect, it } from 'vitest';
import {
  PQ_MAX_CENTROIDS,
  createPqCodec,
  decodePqCodebook,
  encodePqCodebook,
  getCodec,
  pqCodebookBytes,
  pqMeanSquaredError,
  trainPqCodebook,
  type PqCodebook,
} from '../shared/protocol/codecs/index.js';
import { SeededRng } from '../shared/learning/rng.js';
import { expectCodecError } from './support/codec-errors.js';


/** `rows` points around `clusters` Gaussian centres (non-negative, like ReLU embeddings). */
function clustered(seed: number, rows: number, dim: number, clusters: number, noise = 0.3): Float32Array {
  const rng = new SeededRng(seed);
  const centres = Array.from({ length: clusters }, () => Float64Array.from({ length: dim }, () => rng.normal() * 2));
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const c = centres[rng.int(clusters)]!;
    for (let i = 0; i < dim; i++) out[r * dim + i] = Math.max(0, c[i]! + noise * rng.normal());
  }
  return out;
}

/** Plain Lloyd from given seeds, in the order of operations trainPqCodebook documents; null if a cluster empties. */
function referenceLloyd(x: Float32Array, rows: number, dim: number, s: number, sub: number, seeds: Float64Array, k: number, iterations: number): Float64Array | null {
  const pts = new Float64Array(rows * sub);
  for (let r = 0; r < rows; r++) for (let e = 0; e < sub; e++) pts[r * sub + e] = x[r * dim + s * sub + e]!;
  const c = seeds.slice();
  const assign = new Int32Array(rows);
  const nearest = (r: number): number => {
    let best = Infinity;
    let at = 0;
    for (let j = 0; j < k; j++) {
      let d = 0;
      for (let e = 0; e < sub; e++) {
        const t = pts[r * sub + e]! - c[j * sub + e]!;
        d += t * t;
      }
      if (d < best) {
        best = d;
        at = j;
      }
    }
    return at;
  };
  for (let r = 0; r < rows; r++) assign[r] = nearest(r);
  for (let it = 0; it < iterations; it++) {
    const sums = new Float64Array(k * sub);
    const counts = new Float64Array(k);
    for (let r = 0; r < rows; r++) {
      const j = assign[r]!;
      counts[j]!++;
      for (let e = 0; e < sub; e++) sums[j * sub + e]! += pts[r * sub + e]!;
    }
    for (let j = 0; j < k; j++) {
      if (counts[j] === 0) return null;
      const inv = 1 / counts[j]!;
      for (let e = 0; e < sub; e++) c[j * sub + e] = sums[j * sub + e]! * inv;
    }
    if (it === iterations - 1) break;
    let changed = 0;
    for (let r = 0; r < rows; r++) {
      const j = nearest(r);
      if (j !== assign[r]) {
        assign[r] = j;
        changed++;
      }
    }
    if (changed === 0) break;
  }
  return c;
}

/** Brute-force nearest centroid per subspace, ties to the lower index. */
function bruteForceCodes(cb: PqCodebook, v: ArrayLike<number>): number[] {
  const sub = cb.dim / cb.subspaces;
  return Array.from({ length: cb.subspaces }, (_, s) => {
    let best = Infinity;
    let at = 0;
    for (let c = 0; c < cb.centroids; c++) {
      let d = 0;
      for (let e = 0; e < sub; e++) d += (v[s * sub + e]! - cb.table[(s * cb.centroids + c) * sub + e]!) ** 2;
      if (d < best) {
        best = d;
        at = c;
      }
    }
    return at;
  });
}

const DIM = 32;
const ROWS = 3000;
const DATA = clustered(1, ROWS, DIM, 60);

describe('trainPqCodebook', () => {
  it('produces a codebook of the requested shape whose training beats random centroids, k-means++ alone and fewer centroids', () => {
    const cb = trainPqCodebook(DATA, ROWS, DIM, { subspaces: 8, centroids: 64, seed: 3 });
    expect([cb.dim, cb.subspaces, cb.centroids, cb.table.length]).toEqual([DIM, 8, 64, 64 * DIM]);
    const trained = pqMeanSquaredError(cb, DATA, ROWS);
    // Random centroids: 64 random training rows.
    const rng = new SeededRng(4);
    const table = new Float32Array(64 * DIM);
    const sub = DIM / 8;
    for (let s = 0; s < 8; s++) {
      rng.sample(ROWS, 64).forEach((r, c) => table.set(DATA.subarray(r * DIM + s * sub, r * DIM + s * sub + sub), (s * 64 + c) * sub));
    }
    const random = pqMeanSquaredError({ dim: DIM, subspaces: 8, centroids: 64, table }, DATA, ROWS);
    const seedsOnly = pqMeanSquaredError(trainPqCodebook(DATA, ROWS, DIM, { subspaces: 8, centroids: 64, seed: 3, iterations: 0 }), DATA, ROWS);
    const fewer = pqMeanSquaredError(trainPqCodebook(DATA, ROWS, DIM, { subspaces: 8, centroids: 8, seed: 3 }), DATA, ROWS);
    const more = pqMeanSquaredError(trainPqCodebook(DATA, ROWS, DIM, { subspaces: 8, centroids: 256, seed: 3 }), DATA, ROWS);
    expect(trained).toBeLessThan(0.8 * random);
    expect(trained).toBeLessThan(seedsOnly);
    expect(trained).toBeLessThan(0.8 * fewer);
    expect(more).toBeLessThan(trained);
    // More subspaces (shorter chunks) with the same centroids quantise more finely.
    expect(pqMeanSquaredError(trainPqCodebook(DATA, ROWS, DIM, { subspaces: 16, centroids: 64, seed: 3 }), DATA, ROWS)).toBeLessThan(trained);
  });

  it('runs exactly the Lloyd iterations of plain k-means from the k-means++ seeds', () => {
    let compared = 0;
    for (const [dim, subspaces, k, seed] of [
      [32, 8, 16, 1], [32, 4, 64, 2], [32, 16, 256, 3], [24, 8, 32, 4], [16, 16, 8, 5], [32, 8, 256, 6],
    ] as const) {
      const rows = 1200;
      const data = clustered(seed, rows, dim, 40);
      const sub = dim / subspaces;
      const seeds = trainPqCodebook(data, rows, dim, { subspaces, centroids: k, seed, iterations: 0 });
      for (const iterations of [1, 4, 25]) {
        const cb = trainPqCodebook(data, rows, dim, { subspaces, centroids: k, seed, iterations });
        for (let s = 0; s < subspaces; s++) {
          const start = Float64Array.from(seeds.table.subarray(s * k * sub, (s + 1) * k * sub));
          const expected = referenceLloyd(data, rows, dim, s, sub, start, k, iterations);
          if (!expected) continue; // an emptied cluster: the relocation rule is the library's own
          expect(Array.from(cb.table.subarray(s * k * sub, (s + 1) * k * sub)), `${dim}/${subspaces}/${k} it ${iterations} s ${s}`).toEqual(
            Array.from(expected, Math.fround),
          );
          compared++;
        }
      }
    }
    // No cluster empties in these cases; the relocation path is covered by the duplicate-points test.
    expect(compared).toBeGreaterThanOrEqual(150);
  });

  it('gives the same codebook for the same seed, and another for another seed', () => {
    const a = encodePqCodebook(trainPqCodebook(DATA, ROWS, DIM, { subspaces: 4, centroids: 32, seed: 9 }));
    const b = encodePqCodebook(trainPqCodebook(Float64Array.from(DATA), ROWS, DIM, { subspaces: 4, centroids: 32, seed: 9 }));
    const c = encodePqCodebook(trainPqCodebook(DATA, ROWS, DIM, { subspaces: 4, centroids: 32, seed: 10 }));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('copes with fewer distinct points than centroids', () => {
    const data = new Float32Array(5 * 4).map((_, i) => i % 8);
    const cb = trainPqCodebook(data, 5, 4, { subspaces: 2, centroids: 16, seed: 1 });
    const codec = createPqCodec(cb);
    for (let r = 0; r < 5; r++) {
      const v = data.subarray(r * 4, r * 4 + 4);
      expect(Array.from(codec.decode(codec.encode(v), 4))).toEqual(Array.from(v));
    }
  });

  it('rejects bad shapes, options and data', () => {
    const opts = { subspaces: 4, centroids: 16, seed: 1 };
    expectCodecError(() => trainPqCodebook(DATA, ROWS, DIM, { ...opts, subspaces: 5 }), /not divisible by 5 subspaces/);
    expectCodecError(() => trainPqCodebook(DATA, ROWS, DIM, { ...opts, centroids: PQ_MAX_CENTROIDS + 1 }), /at most 256 centroids/);
    expectCodecError(() => trainPqCodebook(DATA, ROWS, DIM, { ...opts, centroids: 0 }), /centroids must be a positive integer/);
    expectCodecError(() => trainPqCodebook(DATA, ROWS, DIM, { ...opts, iterations: -1 }), /iterations/);
    expectCodecError(() => trainPqCodebook(DATA, ROWS + 1, DIM, opts), /embedding values/);
    expectCodecError(() => trainPqCodebook(DATA, 0, DIM, opts), /rows must be a positive integer/);
    const bad = DATA.slice();
    bad[77] = Number.NaN;
    expectCodecError(() => trainPqCodebook(bad, ROWS, DIM, opts), /embedding value 77 \(row 2\)/);
  });
});

describe('pq codebook bytes', () => {
  const cb = trainPqCodebook(DATA, ROWS, DIM, { subspaces: 8, centroids: 16, seed: 5 });
  const bytes = encodePqCodebook(cb);

  it('round-trip exactly, with a 16-byte header, from any byte offset', () => {
    expect(bytes.length).toBe(16 + 4 * 16 * DIM);
    expect(pqCodebookBytes(cb)).toBe(bytes.length);
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0x50, 0x51, 0x43, 0x42]);
    const dv = new DataView(bytes.buffer);
    expect([dv.getUint16(4, true), dv.getUint16(6, true), dv.getUint32(8, true), dv.getUint32(12, true)]).toEqual([1, 16, 8, DIM]);
    const back = decodePqCodebook(bytes);
    expect([back.dim, back.subspaces, back.centroids]).toEqual([DIM, 8, 16]);
    expect(Array.from(back.table)).toEqual(Array.from(cb.table));
    expect(encodePqCodebook(back)).toEqual(bytes);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 1);
    expect(Array.from(decodePqCodebook(shifted.subarray(1, 1 + bytes.length)).table)).toEqual(Array.from(cb.table));
    expect(pqCodebookBytes({ dim: 64, subspaces: 16, centroids: 256, table: new Float32Array(0) })).toBe(16 + 65536);
  });

  it('refuse malformed bytes with the reason', () => {
    const mutate = (fn: (dv: DataView, b: Uint8Array) => void): Uint8Array => {
      const copy = bytes.slice();
      fn(new DataView(copy.buffer), copy);
      return copy;
    };
    expectCodecError(() => decodePqCodebook(bytes.subarray(0, 10)), /at least 16 header bytes/);
    expectCodecError(() => decodePqCodebook(bytes.subarray(0, bytes.length - 4)), /has \d+ bytes, got/);
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expectCodecError(() => decodePqCodebook(longer), /has \d+ bytes, got/);
    expectCodecError(() => decodePqCodebook(mutate((_, b) => (b[0] = 0x51))), /PQCB/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint16(4, 2, true))), /version 2/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint16(6, 0, true))), /centroids must be a positive integer/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint16(6, 257, true))), /at most 256 centroids/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint16(6, 17, true))), /has \d+ bytes, got/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint32(8, 0, true))), /subspaces must be a positive integer/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint32(8, 5, true))), /not divisible/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint32(12, 0, true))), /dim must be a positive integer/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setUint32(12, 0xffffffff, true))), /not divisible|has \d+ bytes/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setFloat32(16 + 4 * 100, Number.NaN, true))), /centroid 9 of subspace 1 has a non-finite value/);
    expectCodecError(() => decodePqCodebook(mutate((dv) => dv.setFloat32(bytes.length - 4, -Infinity, true))), /centroid 15 of subspace 7/);
    expectCodecError(() => encodePqCodebook({ ...cb, table: new Float32Array(3) }), /Float32Array of 16 × 32 values/);
  });
});

describe('pq codec', () => {
  const cb = trainPqCodebook(DATA, ROWS, DIM, { subspaces: 8, centroids: 16, seed: 5 });
  const codec = createPqCodec(cb);
  const sub = DIM / 8;

  it('is named pq, is not in the registry, and writes one byte per subspace', () => {
    expect(codec.name).toBe('pq');
    expectCodecError(() => getCodec('pq'), /Unknown codec/);
    expect(codec.encodedLength(DIM)).toBe(8);
    expect(codec.encode(DATA.subarray(0, DIM)).length).toBe(8);
  });

  it('encodes the nearest centroid per subspace (ties to the lower index) and decodes their concatenation', () => {
    const rng = new SeededRng(6);
    for (let t = 0; t < 200; t++) {
      const v = Float64Array.from({ length: DIM }, (_, i) => DATA[rng.int(ROWS) * DIM + i]! + rng.normal() * 0.5);
      const codes = codec.encode(v);
      expect(Array.from(codes)).toEqual(bruteForceCodes(cb, v));
      const decoded = codec.decode(codes, DIM);
      for (let s = 0; s < 8; s++) {
        expect(Array.from(decoded.subarray(s * sub, (s + 1) * sub))).toEqual(
          Array.from(cb.table.subarray((s * 16 + codes[s]!) * sub, (s * 16 + codes[s]! + 1) * sub)),
        );
      }
      // errorBound is this vector's measured error (rounded up by a hair), not a worst case.
      let err = 0;
      for (let i = 0; i < DIM; i++) err = Math.max(err, Math.abs(decoded[i]! - v[i]!));
      expect(codec.errorBound(v)).toBeGreaterThanOrEqual(err);
      expect(codec.errorBound(v)).toBeLessThanOrEqual(err * (1 + 2 ** -49));
    }
    const dup = createPqCodec({ dim: 2, subspaces: 1, centroids: 3, table: new Float32Array([5, 5, 1, 1, 1, 1]) });
    expect(Array.from(dup.encode([1, 1]))).toEqual([1]);
  });

  it('round-trips a concatenation of centroids exactly, with errorBound 0', () => {
    const rng = new SeededRng(7);
    for (let t = 0; t < 50; t++) {
      const codes = Uint8Array.from({ length: 8 }, () => rng.int(16));
      const v = codec.decode(codes, DIM);
      expect(codec.encode(v)).toEqual(codes);
      expect(Array.from(codec.decode(codec.encode(v), DIM))).toEqual(Array.from(v));
      expect(codec.errorBound(v)).toBe(0);
      expect(codec.errorBound(Float32Array.from(v))).toBe(0);
    }
  });

  it('rejects out-of-range indices, wrong lengths and wrong dimensions', () => {
    const codes = codec.encode(DATA.subarray(0, DIM));
    for (const bad of [16, 17, 255]) {
      const copy = codes.slice();
      copy[3] = bad;
      expectCodecError(() => codec.decode(copy, DIM), new RegExp(`byte 3 holds centroid index ${bad}`));
    }
    expectCodecError(() => codec.decode(codes.subarray(1), DIM), /expected 8 bytes/);
    expectCodecError(() => codec.decode(codes, DIM + 4), /codebook is for dimension 32/);
    expectCodecError(() => codec.encode(new Float64Array(DIM - 1)), /codebook is for dimension 32, got 31/);
    expectCodecError(() => codec.errorBound([]), /codebook is for dimension/);
    expectCodecError(() => codec.encodedLength(64), /codebook is for dimension/);
    expectCodecError(() => codec.encodedLength(-1), /non-negative integer/);
    const withNaN = Float64Array.from(DATA.subarray(0, DIM));
    withNaN[9] = Number.NaN;
    expectCodecError(() => codec.encode(withNaN), /element 9/);
    withNaN[9] = 1e39;
    expectCodecError(() => codec.errorBound(withNaN), /element 9 .*float32 range/);
  });

  it('validates the codebook and keeps its own copy of the table', () => {
    expectCodecError(() => createPqCodec({ dim: 30, subspaces: 8, centroids: 16, table: new Float32Array(16 * 30) }), /not divisible/);
    expectCodecError(() => createPqCodec({ ...cb, table: Float32Array.from(cb.table).fill(Infinity, 5, 6) }), /non-finite/);
    const table = Float32Array.from(cb.table);
    const own = createPqCodec({ ...cb, table });
    const v = DATA.subarray(DIM, 2 * DIM);
    const before = own.decode(own.encode(v), DIM);
    table.fill(0);
    expect(Array.from(own.decode(own.encode(v), DIM))).toEqual(Array.from(before));
  });
});
