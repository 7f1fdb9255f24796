/**
 * RankMe (Garrido et al. 2023): the effective rank of an embedding matrix, exp of the entropy of
 * its normalised singular values, p_k = σ_k / Σσ + ε. Between 1 and min(rows, dim); higher means
 * the embeddings use more directions. Computed from the eigenvalues of the d×d Gram matrix
 * (σ_k² = λ_k) in float64.
 *
 * @example
 * rankMe(embeddings, rows, dim); // e.g. 41.7 for 64-d conv4 embeddings
 */
export function rankMe(embeddings: ArrayLike<number>, rows: number, dim: number, epsilon = 1e-7): number {
  if (embeddings.length !== rows * dim) throw new RangeError(`expected ${rows}×${dim} values, got ${embeddings.length}`);
  const gram = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dim; i++) row[i] = embeddings[r * dim + i]!;
    for (let i = 0; i < dim; i++) {
      const ri = row[i]!;
      if (ri === 0) continue;
      const base = i * dim;
      for (let j = i; j < dim; j++) gram[base + j]! += ri * row[j]!;
    }
  }
  for (let i = 0; i < dim; i++) for (let j = 0; j < i; j++) gram[i * dim + j] = gram[j * dim + i]!;
  const singular = symmetricEigenvalues(gram, dim).map((l) => Math.sqrt(Math.max(l, 0)));
  const total = singular.reduce((a, b) => a + b, 0);
  if (total === 0) return 1;
  let entropy = 0;
  for (const s of singular) {
    const p = s / total + epsilon;
    entropy -= p * Math.log(p);
  }
  return Math.exp(entropy);
}

/**
 * Eigenvalues of a symmetric n×n matrix (row-major; overwritten): Householder reduction to
 * tridiagonal form, then the implicit QL algorithm (Numerical Recipes' tred2/tqli, values only).
 */
export function symmetricEigenvalues(a: Float64Array, n: number): number[] {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const at = (i: number, j: number): number => a[i * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    const l = i - 1;
    let h = 0;
    if (l > 0) {
      let scale = 0;
      for (let k = 0; k <= l; k++) scale += Math.abs(at(i, k));
      if (scale === 0) {
        e[i] = at(i, l);
      } else {
        for (let k = 0; k <= l; k++) {
          a[i * n + k]! /= scale;
          h += at(i, k) * at(i, k);
        }
        let f = at(i, l);
        const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        a[i * n + l] = f - g;
        f = 0;
        for (let j = 0; j <= l; j++) {
          let gj = 0;
          for (let k = 0; k <= j; k++) gj += at(j, k) * at(i, k);
          for (let k = j + 1; k <= l; k++) gj += at(k, j) * at(i, k);
          e[j] = gj / h;
          f += e[j]! * at(i, j);
        }
        const hh = f / (h + h);
        for (let j = 0; j <= l; j++) {
          const fj = at(i, j);
          const gj = e[j]! - hh * fj;
          e[j] = gj;
          for (let k = 0; k <= j; k++) a[j * n + k]! -= fj * e[k]! + gj * at(i, k);
        }
      }
    } else {
      e[i] = at(i, l);
    }
    d[i] = h;
  }
  for (let i = 0; i < n; i++) d[i] = at(i, i);
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iterations > 60) throw new Error('symmetricEigenvalues: no convergence');
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = Math.hypot(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      for (; i >= l; i--) {
        let f = s * e[i]!;
        const b = c * e[i]!;
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1]! -= p;
          e[m] = 0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - p;
        r = (d[i]! - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        f = 0;
      }
      if (r === 0 && i >= l) continue;
      d[l]! -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return Array.from(d);
}
