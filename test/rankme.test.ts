import { describe, expect, it } from 'vitest';
import { rankMe, symmetricEigenvalues } from '../shared/learning/metrics/rankme.js';
import { SeededRng } from '../shared/learning/rng.js';

describe('RankMe effective rank', () => {
  it('finds the eigenvalues of a symmetric matrix', () => {
    // A = Q diag(5, 2, -1, 0.5) Qᵀ for a rotation Q; the eigenvalues must come back.
    const rng = new SeededRng(3);
    const n = 4;
    const q = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.next() - 0.5));
    // Gram–Schmidt
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) {
        const dot = q[i]!.reduce((s, v, k) => s + v * q[j]![k]!, 0);
        q[i] = q[i]!.map((v, k) => v - dot * q[j]![k]!);
      }
      const norm = Math.hypot(...q[i]!);
      q[i] = q[i]!.map((v) => v / norm);
    }
    const lambda = [5, 2, -1, 0.5];
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j]! += q[k]![i]! * lambda[k]! * q[k]![j]!;
    const got = symmetricEigenvalues(a, n).sort((x, y) => x - y);
    expect(got.map((v) => Number(v.toFixed(9)))).toEqual([-1, 0.5, 2, 5]);
  });

  it('is the dimension for isotropic data and 1 for data on a line', () => {
    const rng = new SeededRng(1);
    const rows = 4000;
    const dim = 16;
    const iso = Float64Array.from({ length: rows * dim }, () => rng.next() * 2 - 1);
    expect(rankMe(iso, rows, dim)).toBeGreaterThan(15.5);
    expect(rankMe(iso, rows, dim)).toBeLessThanOrEqual(16 + 1e-6);
    const line = new Float64Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      const t = rng.next();
      for (let i = 0; i < dim; i++) line[r * dim + i] = t * (i + 1);
    }
    expect(rankMe(line, rows, dim)).toBeCloseTo(1, 3);
  });

  it('counts k equal directions as rank k', () => {
    const rows = 300;
    const dim = 10;
    const x = new Float64Array(rows * dim);
    for (let r = 0; r < rows; r++) x[r * dim + (r % 3)] = 1; // three orthogonal directions, equally used
    expect(rankMe(x, rows, dim)).toBeCloseTo(3, 4);
  });
});
