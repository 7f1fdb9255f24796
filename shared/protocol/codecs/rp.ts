import { SeededRng } from '../../learning/rng.js';
import { FLOAT32_MAX } from './f32.js';
import {
  CodecError,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type CodecName,
  type VectorCodec,
} from './vector-codec.js';

/**
 * Seed of every random projection. Sender and receiver derive the same matrix from it and the
 * dimension, so the matrix is never sent; changing it changes every rp encoding.
 */
export const RP_SEED = 0x72703634;
/** Largest supported dimension (keeps the cached matrices and the error-bound constants small). */
export const RP_MAX_DIM = 65536;

const BYTES_PER_COEFFICIENT = 4;
/** Bound on max |R Rᵀ - I| asserted after construction (the real value is ~1e-15). */
const MAX_ORTHONORMALITY_DEFECT = 2 ** -30;

type RpCodecName = Extract<CodecName, 'rp-8' | 'rp-16' | 'rp-32'>;

/** The first `rows` rows of a dimension's basis, packed row-major, and a bound on max |R Rᵀ - I|. */
interface Projection {
  readonly matrix: Float64Array;
  /** Rigorous upper bound on max_jk |(R Rᵀ - I)_jk| over these rows, rounding included. */
  readonly eta: number;
}

/** Rows are generated one after another, so the first m rows never depend on how many follow. */
interface Basis {
  readonly dim: number;
  readonly rng: SeededRng;
  readonly rows: Float64Array[];
  readonly prefixes: Map<number, Projection>;
}

/** Bases by dimension, most recently used last; at most MAX_CACHED_DIMS (rebuilt identically on demand). */
const bases = new Map<number, Basis>();
const MAX_CACHED_DIMS = 8;

/**
 * Next orthonormal row: a Rademacher (±1) vector from the seeded stream, orthogonalised against the
 * rows so far by two passes of modified Gram–Schmidt ("twice is enough"), then normalised. A draw
 * that is (nearly) inside the span of the previous rows is discarded and redrawn. Only IEEE basic
 * operations are used (no Math.log/cos as Gaussian sampling would need), so the matrix is
 * bit-identical on every conforming JavaScript engine.
 */
function nextRow(basis: Basis): Float64Array {
  const { dim: n, rng, rows } = basis;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const x = new Float64Array(n);
    for (let k = 0; k < n; k += 32) {
      let word = rng.nextUint32();
      const end = Math.min(n, k + 32);
      for (let i = k; i < end; i++) {
        x[i] = word & 1 ? 1 : -1;
        word >>>= 1;
      }
    }
    for (let pass = 0; pass < 2; pass++) {
      for (const q of rows) {
        let d = 0;
        for (let i = 0; i < n; i++) d += q[i]! * x[i]!;
        for (let i = 0; i < n; i++) x[i] = x[i]! - d * q[i]!;
      }
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
    // The draw had squared norm n; keep it only if a fair share survives the projection.
    if (!(s >= n * 1e-3)) continue;
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < n; i++) x[i] = x[i]! * inv;
    return x;
  }
  throw new Error(`rp: could not extend the basis of dimension ${n} past ${rows.length} rows`);
}

/** γ_k = k·u / (1 - k·u) rounded up generously (k <= 2^16, u = 2^-53). */
function gamma(k: number): number {
  return k * 2 ** -53 * (1 + 2 ** -20);
}

/** The cached projection with `rows` orthonormal rows for vectors of dimension `dim`. */
function projection(dim: number, rows: number): Projection {
  let basis = bases.get(dim);
  if (basis) {
    bases.delete(dim);
  } else {
    basis = { dim, rng: new SeededRng(RP_SEED).fork(`dim ${dim}`), rows: [], prefixes: new Map() };
    if (bases.size >= MAX_CACHED_DIMS) bases.delete(bases.keys().next().value!);
  }
  bases.set(dim, basis);
  const cached = basis.prefixes.get(rows);
  if (cached) return cached;
  while (basis.rows.length < rows) basis.rows.push(nextRow(basis));
  const matrix = new Float64Array(rows * dim);
  for (let j = 0; j < rows; j++) matrix.set(basis.rows[j]!, j * dim);
  // Computed defect plus the dot products' own rounding: |fl(a·b) - a·b| <= γ_n ‖a‖‖b‖ <= γ_n (1 + η).
  let defect = 0;
  for (let j = 0; j < rows; j++) {
    for (let k = j; k < rows; k++) {
      let d = 0;
      for (let i = 0; i < dim; i++) d += matrix[j * dim + i]! * matrix[k * dim + i]!;
      const e = Math.abs(j === k ? d - 1 : d);
      if (e > defect) defect = e;
    }
  }
  const eta = (defect + gamma(dim)) * (1 + 2 ** -20);
  if (!(eta <= MAX_ORTHONORMALITY_DEFECT)) {
    throw new Error(`rp: basis of dimension ${dim} is not orthonormal (defect ${eta})`);
  }
  const result: Projection = Object.freeze({ matrix, eta });
  basis.prefixes.set(rows, result);
  return result;
}

/**
 * A copy of the m × dim projection matrix R (row-major, orthonormal rows) that rp-m uses for
 * vectors of dimension `dim`; the first rows are shared, so rp-8's R is the top of rp-32's.
 * Throws CodecError unless 1 <= rows <= dim <= RP_MAX_DIM.
 */
export function rpProjection(dim: number, rows: number): Float64Array {
  assertRows('rp', dim, rows);
  return projection(dim, rows).matrix.slice();
}

function assertRows(name: string, dim: number, rows: number): void {
  if (!Number.isSafeInteger(rows) || rows < 1) {
    throw new CodecError(`${name}: the number of rows must be a positive integer, got ${String(rows)}`);
  }
  if (!Number.isSafeInteger(dim) || dim < 0) {
    throw new CodecError(`${name}: dimension must be a non-negative integer, got ${String(dim)}`);
  }
  if (dim < rows) {
    throw new CodecError(`${name}: dimension ${dim} is smaller than the ${rows} projected coordinates`);
  }
  if (dim > RP_MAX_DIM) {
    throw new CodecError(`${name}: dimension ${dim} exceeds the maximum of ${RP_MAX_DIM}`);
  }
}

/**
 * Random projection to m coordinates: encode(v) = float32(R v), m float32 values (4m bytes,
 * little-endian); decode(y) = Rᵀ y. R is an m × dim matrix with orthonormal rows derived from
 * RP_SEED and dim (see rpProjection) and never sent. Needs m <= dim <= RP_MAX_DIM.
 *
 * Why nearest-prototype classification survives: with P = RᵀR (an orthogonal projection),
 * ‖q − Rᵀy‖² = ‖(I − P) q‖² + ‖R q − y‖² for any query q and coefficients y (here y =
 * float32(R p) for a prototype p). The first term is the same for every class, so nearest-mean
 * over decoded prototypes Rᵀy picks the same class as nearest-mean between projected queries R q
 * and the received coefficients. That is nearest-mean in an m-dimensional random subspace, not
 * the exact classifier: distances are distorted as in Johnson–Lindenstrauss (bench/pq-probe.ts
 * measures the cost on real embeddings).
 *
 * Per-element reconstruction error is that of an orthogonal projection, |((I − P) v)_i| <=
 * ‖(I − P) v‖₂ <= ‖v‖₂: large for single elements, but the geometry above is what matters.
 */
function createRpCodec(name: RpCodecName, m: number): VectorCodec {
  // Shared by the functions below; safe because each call runs to completion synchronously.
  const z = new Float64Array(m);

  function encodedLength(dim: number): number {
    assertDim(name, dim);
    assertRows(name, dim, m);
    return m * BYTES_PER_COEFFICIENT;
  }

  /**
   * Checks the input, fills z = fl(R v) and returns the sum of squares of v, fl(Σ v_i²). Throws
   * CodecError for non-finite elements, elements outside ±FLOAT32_MAX, dim outside [m,
   * RP_MAX_DIM], or a coefficient that overflows float32.
   */
  function project(vector: ArrayLike<number>): { proj: Projection; sumSquares: number } {
    const n = vector.length;
    let sumSquares = 0;
    for (let i = 0; i < n; i++) {
      const v = vector[i]!;
      if (!(Math.abs(v) <= FLOAT32_MAX)) {
        if (!Number.isFinite(v)) throw nonFiniteInputError(name, i, v);
        throw new CodecError(`${name}: element ${i} (${v}) is outside the float32 range (|v| <= ${FLOAT32_MAX})`);
      }
      sumSquares += v * v;
    }
    assertRows(name, n, m);
    const proj = projection(n, m);
    const r = proj.matrix;
    for (let j = 0; j < m; j++) {
      let d = 0;
      const row = j * n;
      for (let i = 0; i < n; i++) d += r[row + i]! * vector[i]!;
      if (!Number.isFinite(Math.fround(d))) {
        throw new CodecError(`${name}: projected coefficient ${j} (${d}) is outside the float32 range`);
      }
      z[j] = d;
    }
    return { proj, sumSquares };
  }

  function encode(vector: ArrayLike<number>): Uint8Array {
    project(vector);
    const out = new Uint8Array(m * BYTES_PER_COEFFICIENT);
    const dv = new DataView(out.buffer);
    for (let j = 0; j < m; j++) dv.setFloat32(j * BYTES_PER_COEFFICIENT, z[j]!, true);
    return out;
  }

  function decode(bytes: Uint8Array, dim: number): Float64Array {
    assertByteLength(name, bytes, dim, encodedLength(dim));
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const y = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      const c = dv.getFloat32(j * BYTES_PER_COEFFICIENT, true);
      if (!Number.isFinite(c)) throw new CodecError(`${name}: decoded coefficient ${j} is ${String(c)}`);
      y[j] = c;
    }
    const r = projection(dim, m).matrix;
    const out = new Float64Array(dim);
    // Element i sums over j ascending: out_i = fl(Σ_j R_ji y_j).
    for (let j = 0; j < m; j++) {
      const c = y[j]!;
      const row = j * dim;
      for (let i = 0; i < dim; i++) out[i] = out[i]! + r[row + i]! * c;
    }
    return out;
  }

  /**
   * A guaranteed bound: ‖(I − P) v‖₂ (evaluated from above) plus rounding slack, so at most
   * ‖v‖₂ (1 + 1e-6) and close to 0 when v already lies in the row space of R (e.g. a decoded
   * vector). Exactly 0 for a zero vector.
   *
   * Proof. Let n = dim, u = 2^-53, γ_k = k u / (1 − k u), R the stored matrix, E = R Rᵀ − I with
   * max |E_jk| <= η (bounded at construction), so ‖E‖₂ <= mη, every row and column of R has norm
   * <= √(1 + mη), and ‖Rᵀ w‖² = wᵀ(I + E)w <= (1 + mη)‖w‖².
   * Encode computes z = fl(R v) with |z_j − (R v)_j| <= γ_n ‖R_j‖ ‖v‖ + n 2^-1075 =: ε_z (Higham's
   * dot-product bound; the last term covers underflow), then y = fround(z) with |y_j − z_j| <=
   * 2^-24 |z_j| + 2^-150. So ‖y − R v‖ <= √m (ε_z + 2^-150) + 2^-24 ‖z‖ =: δ.
   * Decode computes d_i = fl((Rᵀ y)_i), off by at most γ_m ‖R e_i‖ ‖y‖ + m 2^-1075.
   * Write d − v = (RᵀR v − v) + Rᵀ(y − R v) + (d − Rᵀ y). Then
   *   ‖RᵀR v − v‖² = ‖v‖² − 2‖R v‖² + ‖RᵀR v‖² <= ‖v‖² − ‖R v‖² + mη(1 + mη)‖v‖²   (A²)
   *   |(Rᵀ(y − R v))_i| <= √(1 + mη) δ                                              (B)
   *   |d_i − (Rᵀ y)_i| <= γ_m √(1 + mη) (‖R v‖ + δ) + m 2^-1075                     (C)
   * and |d_i − v_i| <= A + B + C, since a vector's elements are bounded by its 2-norm.
   * Evaluation: ‖v‖² is bounded above from fl(Σ v_i²) (relative error γ_n, underflow n 2^-1075),
   * ‖R v‖² below from fl(Σ z_j²) and ε_z; every floating-point step is then pushed the safe way
   * by a factor 1 ± 2^-45, which dominates its own rounding, and the total by 1 + 2^-40.
   */
  function errorBound(vector: ArrayLike<number>): number {
    const { proj, sumSquares } = project(vector);
    const n = vector.length;
    let allZero = true;
    for (let i = 0; i < n && allZero; i++) if (vector[i] !== 0) allZero = false;
    // Zero in, all-zero coefficients out, zero decoded: exact.
    if (allZero) return 0;
    const up = 1 + 2 ** -45;
    const down = 1 - 2 ** -45;
    const mEta = m * proj.eta * up;
    const gn = gamma(n);
    const gm = gamma(m);
    const sqrtM = Math.sqrt(m) * up;
    const sqrtOnePlusMEta = Math.sqrt(1 + mEta) * up;
    const tiny = 2 ** -1040;

    const normV2 = (sumSquares + tiny) * (1 + 2 * gn) * up;
    const normV = Math.sqrt(normV2) * up;
    const epsZ = (gn * (1 + proj.eta) * normV + tiny) * up;

    let sumZ2 = 0;
    for (let j = 0; j < m; j++) sumZ2 += z[j]! * z[j]!;
    const normZLow = Math.sqrt(Math.max(0, (sumZ2 - tiny) * (1 - 2 * gm) * down)) * down;
    const normRvLow = Math.max(0, normZLow - sqrtM * epsZ * up) * down;
    const normRvHigh = sqrtOnePlusMEta * normV * up;
    const normZHigh = (normRvHigh + sqrtM * epsZ) * up;

    const a2 = (Math.max(0, normV2 - normRvLow * normRvLow * down) + mEta * (1 + mEta) * normV2) * up;
    const a = Math.sqrt(a2) * up;
    const delta = (sqrtM * (epsZ + 2 ** -150) + 2 ** -24 * normZHigh) * up;
    const b = sqrtOnePlusMEta * delta * up;
    const c = (gm * sqrtOnePlusMEta * (normRvHigh + delta) + tiny) * up;
    return (a + b + c) * (1 + 2 ** -40);
  }

  return Object.freeze({ name, encodedLength, encode, decode, errorBound });
}

/** Random projection to 8 float32 coefficients: 32 bytes, needs 8 <= dim <= 65536. */
export const rp8Codec: VectorCodec = createRpCodec('rp-8', 8);

/** Random projection to 16 float32 coefficients: 64 bytes, needs 16 <= dim <= 65536. */
export const rp16Codec: VectorCodec = createRpCodec('rp-16', 16);

/** Random projection to 32 float32 coefficients: 128 bytes, needs 32 <= dim <= 65536. */
export const rp32Codec: VectorCodec = createRpCodec('rp-32', 32);
