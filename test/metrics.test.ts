import { describe, expect, it } from 'vitest';
import { AccuracyMatrix } from '../shared/learning/metrics/accuracy-matrix.js';
import { accuracyOf, countByClass } from '../shared/learning/metrics/class-accuracy.js';
import { predictNearest, predictNearestOnTensors, prototypeMatrix } from '../shared/learning/nearest-prototype.js';
import { SeededRng } from '../shared/learning/rng.js';
import { linkFor, transferSeconds } from '../coordinator/link-model.js';
import { selectBackend } from '../shared/tensor/tensor-backend.js';
import { PrototypeTable } from '../shared/learning/prototype-table.js';

describe('accuracy over the union of known classes', () => {
  it('counts per class and weights every test example equally', () => {
    const counts = countByClass([0, 0, 0, 1, 2, 2], [0, 1, 0, 1, 0, 2], [0, 1, 2]);
    expect(Array.from(counts.correct)).toEqual([2, 1, 1]);
    expect(Array.from(counts.total)).toEqual([3, 1, 2]);
    expect(accuracyOf(counts)).toBeCloseTo(4 / 6, 12);
    expect(accuracyOf(counts, new Set([2]))).toBe(0.5);
    expect(accuracyOf(counts, new Set([7]))).toBeNaN();
    expect(() => countByClass([5], [5], [0, 1])).toThrow(/label 5/);
  });

  it('predicts the nearest prototype by squared Euclidean distance', () => {
    const t = new PrototypeTable(2);
    t.addEmbeddings(4, [0, 0, 2, 0], 2); // mean (1, 0)
    t.addEmbeddings(9, [10, 10], 1);
    const pred = predictNearest(Float32Array.from([1.2, 0.1, 9, 8, 5.4, 5.4]), 3, prototypeMatrix(t));
    expect(Array.from(pred)).toEqual([4, 9, 9]);
  });
});

describe('the accuracy matrix', () => {
  // a[k][j]: rows are missions, columns class groups.
  const m = new AccuracyMatrix();
  m.set(0, 0, 0.9);
  m.set(1, 0, 0.7); m.set(1, 1, 0.8);
  m.set(2, 0, 0.8); m.set(2, 1, 0.5); m.set(2, 2, 0.6);

  it('averages accuracy after each mission and over missions', () => {
    expect(m.averageAccuracy(1)).toBeCloseTo(0.75, 12);
    expect(m.averageAccuracy(2)).toBeCloseTo(1.9 / 3, 12);
    expect(m.averageIncrementalAccuracy()).toBeCloseTo((0.9 + 0.75 + 1.9 / 3) / 3, 12);
  });

  it('computes Chaudhry forgetting with the maximum over earlier missions', () => {
    // group 0: best before mission 2 is 0.9, now 0.8 → 0.1; group 1: best 0.8, now 0.5 → 0.3.
    expect(m.forgetting(2)).toBeCloseTo(0.2, 12);
    expect(m.forgetting(1)).toBeCloseTo(0.2, 12);
    expect(m.forgetting(0)).toBeNaN();
  });

  it('computes backward transfer', () => {
    // (0.8 − 0.9 + 0.5 − 0.8) / 2
    expect(m.backwardTransfer()).toBeCloseTo(-0.2, 12);
  });

  it('skips empty groups and refuses a group from the future', () => {
    const g = new AccuracyMatrix();
    g.set(0, 0, 1);
    g.set(2, 0, 0.5); // mission 1 brought no new class, group 1 stays empty
    g.set(2, 2, 0.7);
    expect(g.toJSON()).toEqual([[1], [], [0.5, null, 0.7]]);
    expect(g.forgetting(2)).toBeCloseTo(0.5, 12);
    expect(() => g.set(1, 2, 0.3)).toThrow(/learned later/);
  });
});

describe('nearest prototype on tensors', () => {
  it('agrees with the scalar float64 rule on random data, ties included', async () => {
    await selectBackend('wasm');
    const rng = new SeededRng(12);
    const dim = 24;
    const t = new PrototypeTable(dim);
    for (let c = 0; c < 40; c++) t.addEmbeddings(c * 3, Float64Array.from({ length: dim }, () => rng.next() * 4), 1);
    t.addEmbeddings(500, t.prototype(0)!, 1); // an exact duplicate of class 0: a tie, won by the lower id
    const rows = 700;
    const q = Float32Array.from({ length: rows * dim }, () => rng.next() * 4);
    q.set(Float32Array.from(t.prototype(0)!), 0);
    const protos = prototypeMatrix(t);
    const fast = await predictNearestOnTensors(q, rows, protos);
    const exact = predictNearest(q, rows, protos);
    expect(fast[0]).toBe(0);
    let same = 0;
    for (let i = 0; i < rows; i++) if (fast[i] === exact[i]) same++;
    // float32 may break a near-tie differently; on random data that is (almost) never.
    expect(same).toBeGreaterThanOrEqual(rows - 2);
  });
});

describe('the link model', () => {
  it('charges latency per message and bytes at the bandwidth, inflated by loss', () => {
    const traffic = { messages: 3, payloadBytes: 0, encodedBytes: 1, frameBytes: 30_000 };
    expect(transferSeconds(traffic, { bandwidthMbps: 10, latencyMs: 40, loss: 0 })).toBeCloseTo(0.12 + 0.024, 12);
    expect(transferSeconds(traffic, { bandwidthMbps: 10, latencyMs: 40, loss: 0.5 })).toBeCloseTo(2 * 0.144, 12);
    expect(transferSeconds({ messages: 0, payloadBytes: 0, encodedBytes: 0, frameBytes: 0 }, { bandwidthMbps: 1, latencyMs: 100, loss: 0.1 })).toBe(0);
  });

  it('gives each client its own link from a range: seeded, inside it, spread log-uniformly', () => {
    const spec = { bandwidthMbps: [1, 100] as [number, number], latencyMs: 40, loss: [0, 0.2] as [number, number] };
    const links = Array.from({ length: 2000 }, (_, i) => linkFor(spec, 7, `c${i}`));
    expect(linkFor(spec, 7, 'c5')).toEqual(links[5]);
    expect(linkFor(spec, 8, 'c5')).not.toEqual(links[5]);
    for (const l of links) {
      expect(l.bandwidthMbps).toBeGreaterThanOrEqual(1);
      expect(l.bandwidthMbps).toBeLessThanOrEqual(100);
      expect(l.latencyMs).toBe(40);
      expect(l.loss).toBeLessThan(0.2);
    }
    // Log-uniform on [1, 100]: about half the clients below the geometric mean, 10 Mbit/s.
    const below = links.filter((l) => l.bandwidthMbps < 10).length / links.length;
    expect(below).toBeGreaterThan(0.45);
    expect(below).toBeLessThan(0.55);
  });
});
