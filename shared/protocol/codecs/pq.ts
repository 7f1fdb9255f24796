import { SeededRng } from '../../learning/rng.js';
import { FLOAT32_MAX } from './f32.js';
import { CodecError, assertDim, nonFiniteInputError, type VectorCodec } from './vector-codec.js';

/** One byte per subspace, so at most 256 centroids. */
export const PQ_MAX_CENTROIDS = 256;
/** Lloyd iterations when trainPqCodebook is not told otherwise (it stops early once stable). */
export const PQ_DEFAULT_ITERATIONS = 10;

/** "PQCB" */
const MAGIC = [0x50, 0x51, 0x43, 0x42] as const;
const VERSION = 1;
const HEADER_BYTES = 16;

/**
 * A product-quantisation codebook: the dimension is split into `subspaces` contiguous chunks of
 * dim / subspaces elements, each with its own `centroids` centroids.
 */
export interface PqCodebook {
  readonly dim: number;
  readonly subspaces: number;
  /** Centroids per subspace, 1..256. */
  readonly centroids: number;
  /**
   * subspaces × centroids × (dim / subspaces) float32 values: centroid c of subspace s starts at
   * (s * centroids + c) * (dim / subspaces).
   */
  readonly table: Float32Array;
}

export interface PqTrainOptions {
  /** Number of contiguous chunks; must divide dim. */
  subspaces: number;
  /** Centroids per subspace, 1..256. */
  centroids: number;
  /** Lloyd iterations after k-means++ (0 keeps the k-means++ seeds); default PQ_DEFAULT_ITERATIONS. */
  iterations?: number;
  seed: number;
}

function assertPositiveInt(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new CodecError(`pq: ${what} must be a positive integer, got ${String(value)}`);
  }
}

/** Checks the shape of a codebook (not its values). */
function assertShape(dim: number, subspaces: number, centroids: number): void {
  assertPositiveInt('dim', dim);
  assertPositiveInt('subspaces', subspaces);
  assertPositiveInt('centroids', centroids);
  if (centroids > PQ_MAX_CENTROIDS) {
    throw new CodecError(`pq: at most ${PQ_MAX_CENTROIDS} centroids per subspace, got ${centroids}`);
  }
  if (dim % subspaces !== 0) {
    throw new CodecError(`pq: dimension ${dim} is not divisible by ${subspaces} subspaces`);
  }
}

/** Checks shape, table length and that every centroid value is finite. */
function assertCodebook(cb: PqCodebook): void {
  assertShape(cb.dim, cb.subspaces, cb.centroids);
  if (!(cb.table instanceof Float32Array) || cb.table.length !== cb.centroids * cb.dim) {
    throw new CodecError(
      `pq: the centroid table must be a Float32Array of ${cb.centroids} × ${cb.dim} values, got ${
        cb.table instanceof Float32Array ? cb.table.length : typeof cb.table
      }`,
    );
  }
  const sub = cb.dim / cb.subspaces;
  for (let i = 0; i < cb.table.length; i++) {
    if (!Number.isFinite(cb.table[i]!)) {
      const entry = Math.floor(i / sub);
      throw new CodecError(
        `pq: centroid ${entry % cb.centroids} of subspace ${Math.floor(entry / cb.centroids)} has a non-finite value (${cb.table[i]})`,
      );
    }
  }
}

/**
 * Squared distance between x[xi, xi + sub) and c[ci, ci + sub), summed in element order (the
 * common chunk sizes are unrolled; the result is the same).
 */
function sqDist(x: Float64Array, xi: number, c: Float64Array, ci: number, sub: number): number {
  if (sub === 4) {
    const t0 = x[xi]! - c[ci]!;
    const t1 = x[xi + 1]! - c[ci + 1]!;
    const t2 = x[xi + 2]! - c[ci + 2]!;
    const t3 = x[xi + 3]! - c[ci + 3]!;
    return t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3;
  }
  if (sub === 8) {
    const t0 = x[xi]! - c[ci]!;
    const t1 = x[xi + 1]! - c[ci + 1]!;
    const t2 = x[xi + 2]! - c[ci + 2]!;
    const t3 = x[xi + 3]! - c[ci + 3]!;
    const t4 = x[xi + 4]! - c[ci + 4]!;
    const t5 = x[xi + 5]! - c[ci + 5]!;
    const t6 = x[xi + 6]! - c[ci + 6]!;
    const t7 = x[xi + 7]! - c[ci + 7]!;
    return t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3 + t4 * t4 + t5 * t5 + t6 * t6 + t7 * t7;
  }
  if (sub === 2) {
    const t0 = x[xi]! - c[ci]!;
    const t1 = x[xi + 1]! - c[ci + 1]!;
    return t0 * t0 + t1 * t1;
  }
  let d = 0;
  for (let e = 0; e < sub; e++) {
    const t = x[xi + e]! - c[ci + e]!;
    d += t * t;
  }
  return d;
}

/**
 * out[q − from] = sqDist(x, at, cg, q * sub, sub) for rows from..to−1 of cg, in one call (the hot
 * loop of kMeans; same arithmetic, so the same values, as sqDist).
 */
function distancesTo(x: Float64Array, at: number, cg: Float64Array, from: number, to: number, sub: number, out: Float64Array): void {
  if (sub === 8) {
    const x0 = x[at]!;
    const x1 = x[at + 1]!;
    const x2 = x[at + 2]!;
    const x3 = x[at + 3]!;
    const x4 = x[at + 4]!;
    const x5 = x[at + 5]!;
    const x6 = x[at + 6]!;
    const x7 = x[at + 7]!;
    for (let q = from, o = 0; q < to; q++, o++) {
      const b = q * 8;
      const t0 = x0 - cg[b]!;
      const t1 = x1 - cg[b + 1]!;
      const t2 = x2 - cg[b + 2]!;
      const t3 = x3 - cg[b + 3]!;
      const t4 = x4 - cg[b + 4]!;
      const t5 = x5 - cg[b + 5]!;
      const t6 = x6 - cg[b + 6]!;
      const t7 = x7 - cg[b + 7]!;
      out[o] = t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3 + t4 * t4 + t5 * t5 + t6 * t6 + t7 * t7;
    }
    return;
  }
  if (sub === 4) {
    const x0 = x[at]!;
    const x1 = x[at + 1]!;
    const x2 = x[at + 2]!;
    const x3 = x[at + 3]!;
    for (let q = from, o = 0; q < to; q++, o++) {
      const b = q * 4;
      const t0 = x0 - cg[b]!;
      const t1 = x1 - cg[b + 1]!;
      const t2 = x2 - cg[b + 2]!;
      const t3 = x3 - cg[b + 3]!;
      out[o] = t0 * t0 + t1 * t1 + t2 * t2 + t3 * t3;
    }
    return;
  }
  if (sub === 2) {
    const x0 = x[at]!;
    const x1 = x[at + 1]!;
    for (let q = from, o = 0; q < to; q++, o++) {
      const b = q * 2;
      const t0 = x0 - cg[b]!;
      const t1 = x1 - cg[b + 1]!;
      out[o] = t0 * t0 + t1 * t1;
    }
    return;
  }
  for (let q = from, o = 0; q < to; q++, o++) {
    const b = q * sub;
    let d = 0;
    for (let e = 0; e < sub; e++) {
      const t = x[at + e]! - cg[b + e]!;
      d += t * t;
    }
    out[o] = d;
  }
}

/**
 * Relative margin for the triangle-inequality shortcuts below: a point is skipped only when its
 * bounds clear the test by this much, far above the bounds' accumulated rounding (~1e-14), so the
 * shortcuts never change a result and ties are always resolved by a full scan (lower index wins).
 */
const MARGIN = 1e-9;

/** k-means++ seeds, and each point's nearest seed (lower index on ties) and squared distance to it. */
interface Seeding {
  c: Float64Array;
  near: Int32Array;
  d2: Float64Array;
}

/**
 * k-means++ seeding: the first seed is a uniform point, each next one a point drawn with
 * probability proportional to its squared distance to the nearest seed so far (uniform when all
 * distances are 0, i.e. fewer distinct points than seeds). Returns k × sub seeds.
 */
function kMeansPlusPlus(x: Float64Array, rows: number, sub: number, k: number, rng: SeededRng): Seeding {
  const c = new Float64Array(k * sub);
  const d2 = new Float64Array(rows);
  const near = new Int32Array(rows);
  // Sums of d2 over blocks of 64 points, so that a draw walks blocks, then one block.
  const blocks = Math.ceil(rows / 64);
  const blockSum = new Float64Array(blocks);
  const dirty = new Uint8Array(blocks);
  const sumBlock = (b: number): void => {
    let total = 0;
    const end = Math.min(rows, (b + 1) * 64);
    for (let r = b * 64; r < end; r++) total += d2[r]!;
    blockSum[b] = total;
  };
  // Each seed's points as a doubly linked list, with an upper bound on their d2, so that a whole
  // cluster that the new seed cannot reach is skipped at once.
  const head = new Int32Array(k).fill(-1);
  const next = new Int32Array(rows);
  const prev = new Int32Array(rows);
  const maxD2 = new Float64Array(k);
  const first = rng.int(rows);
  c.set(x.subarray(first * sub, first * sub + sub), 0);
  for (let r = 0; r < rows; r++) {
    const d = sqDist(x, r * sub, c, 0, sub);
    d2[r] = d;
    if (d > maxD2[0]!) maxD2[0] = d;
    prev[r] = r - 1;
    next[r] = r + 1 < rows ? r + 1 : -1;
  }
  head[0] = 0;
  for (let b = 0; b < blocks; b++) sumBlock(b);
  for (let j = 1; j < k; j++) {
    let total = 0;
    for (let b = 0; b < blocks; b++) total += blockSum[b]!;
    let pick: number;
    if (total > 0) {
      // The first point whose running sum of d2 passes the target (the last point with d2 > 0
      // if rounding keeps the sum from passing it), found block by block.
      const target = rng.next() * total;
      let acc = 0;
      let before = 0;
      let block = -1;
      for (let b = 0; b < blocks; b++) {
        if (!(blockSum[b]! > 0)) continue;
        block = b;
        before = acc;
        acc += blockSum[b]!;
        if (acc > target) break;
      }
      acc = before;
      pick = -1;
      const end = Math.min(rows, (block + 1) * 64);
      for (let r = block * 64; r < end; r++) {
        if (d2[r]! > 0) {
          pick = r;
          acc += d2[r]!;
          if (acc > target) break;
        }
      }
    } else {
      pick = rng.int(rows);
    }
    const at = j * sub;
    c.set(x.subarray(pick * sub, pick * sub + sub), at);
    for (let a = 0; a < j; a++) {
      // ‖c_j − c_a‖ >= 2‖x − c_a‖ means ‖x − c_j‖ >= ‖x − c_a‖: the new seed cannot be nearer.
      const reach = sqDist(c, at, c, a * sub, sub) / (4 * (1 + MARGIN));
      if (reach >= maxD2[a]!) continue;
      let remaining = 0;
      for (let r = head[a]!; r >= 0; ) {
        const following = next[r]!;
        const own = d2[r]!;
        const d = reach >= own ? Infinity : sqDist(x, r * sub, c, at, sub);
        if (d < own) {
          d2[r] = d;
          near[r] = j;
          dirty[r >>> 6] = 1;
          // Move r from seed a's list to seed j's.
          if (prev[r]! >= 0) next[prev[r]!] = following;
          else head[a] = following;
          if (following >= 0) prev[following] = prev[r]!;
          prev[r] = -1;
          next[r] = head[j]!;
          if (head[j]! >= 0) prev[head[j]!] = r;
          head[j] = r;
          if (d > maxD2[j]!) maxD2[j] = d;
        } else if (own > remaining) {
          remaining = own;
        }
        r = following;
      }
      maxD2[a] = remaining;
    }
    for (let b = 0; b < blocks; b++) {
      if (dirty[b]) {
        sumBlock(b);
        dirty[b] = 0;
      }
    }
  }
  return { c, near, d2 };
}

/**
 * Exact nearest-centroid search over k centroids pruned by a 1-d projection: the centroids are
 * sorted by their projection on their own principal axis w (|w| = 1), and since
 * ‖y − c‖ >= |w·y − w·c|, a search walks outward from w·y and stops once the projection gap
 * alone exceeds the second-best distance. Call index() whenever the centroids change.
 */
class NearestSearch {
  readonly axis: Float64Array;
  readonly order: Int32Array;
  readonly proj: Float64Array;
  /** Largest |projection| of a centroid, for the rounding margin of the walk. */
  private scale = 0;
  /** Results of the last search: best and second-best squared distances, best index. */
  best = Infinity;
  second = Infinity;
  bestIndex = 0;

  constructor(
    private readonly c: Float64Array,
    private readonly k: number,
    private readonly sub: number,
  ) {
    this.axis = new Float64Array(sub);
    this.order = new Int32Array(k);
    this.proj = new Float64Array(k);
  }

  index(): void {
    const { c, k, sub, axis, order, proj } = this;
    // Principal axis of the centroids by power iteration from (1, ..., 1) / √sub.
    const mean = new Float64Array(sub);
    for (let j = 0; j < k; j++) for (let e = 0; e < sub; e++) mean[e] = mean[e]! + c[j * sub + e]! / k;
    const cov = new Float64Array(sub * sub);
    for (let j = 0; j < k; j++) {
      for (let a = 0; a < sub; a++) {
        const da = c[j * sub + a]! - mean[a]!;
        for (let b = 0; b < sub; b++) cov[a * sub + b] = cov[a * sub + b]! + da * (c[j * sub + b]! - mean[b]!);
      }
    }
    axis.fill(1 / Math.sqrt(sub));
    const next = new Float64Array(sub);
    for (let it = 0; it < 50; it++) {
      next.fill(0);
      for (let a = 0; a < sub; a++) for (let b = 0; b < sub; b++) next[a] = next[a]! + cov[a * sub + b]! * axis[b]!;
      let norm = 0;
      for (let a = 0; a < sub; a++) norm += next[a]! * next[a]!;
      if (!(norm > 0)) break;
      norm = Math.sqrt(norm);
      for (let a = 0; a < sub; a++) axis[a] = next[a]! / norm;
    }
    let scale = 0;
    for (let j = 0; j < k; j++) {
      let p = 0;
      for (let e = 0; e < sub; e++) p += axis[e]! * c[j * sub + e]!;
      proj[j] = p;
      order[j] = j;
      if (Math.abs(p) > scale) scale = Math.abs(p);
    }
    this.scale = scale;
    order.sort((a, b) => proj[a]! - proj[b]! || a - b);
    const sorted = Float64Array.from(order, (j) => proj[j]!);
    proj.set(sorted);
  }

  /**
   * Nearest (lower index on ties) and second-nearest centroid of y[at, at + sub) into best,
   * second, bestIndex. Exact: a centroid is skipped only when its projection gap, less a margin
   * far above the projections' rounding, already exceeds the second-best distance.
   */
  search(y: Float64Array, at: number): void {
    const { c, k, sub, axis, order, proj } = this;
    let p = 0;
    for (let e = 0; e < sub; e++) p += axis[e]! * y[at + e]!;
    let lo = 0;
    let hi = k;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (proj[mid]! < p) lo = mid + 1;
      else hi = mid;
    }
    let left = lo - 1;
    let right = lo;
    let b1 = Infinity;
    let b2 = Infinity;
    let i1 = 0;
    const slack = MARGIN * (Math.abs(p) + this.scale);
    while (left >= 0 || right < k) {
      const gl = left >= 0 ? p - proj[left]! : Infinity;
      const gr = right < k ? proj[right]! - p : Infinity;
      let slot: number;
      let gap: number;
      if (gl <= gr) {
        slot = left--;
        gap = gl;
      } else {
        slot = right++;
        gap = gr;
      }
      // Every centroid not yet visited is at least this far away along the axis.
      const g = gap - slack;
      if (g > 0 && g * g > b2 * (1 + MARGIN)) break;
      const j = order[slot]!;
      const d = sqDist(y, at, c, j * sub, sub);
      if (d < b1 || (d === b1 && j < i1)) {
        b2 = b1;
        b1 = d;
        i1 = j;
      } else if (d < b2) {
        b2 = d;
      }
    }
    this.best = b1;
    this.second = b2;
    this.bestIndex = i1;
  }
}

/** Centroids per group in kMeans's group bounds (Ding et al. use k / 10 groups). */
const GROUP_SIZE = 10;

/**
 * Splits k centroids into t groups of nearby centroids (a few plain Lloyd steps on the centroids,
 * started from t centroids evenly spaced along the search's projection order). Returns each
 * centroid's group.
 */
function groupCentroids(c: Float64Array, k: number, sub: number, t: number, search: NearestSearch): Int32Array {
  const group = new Int32Array(k);
  if (t === 1) return group;
  const centre = new Float64Array(t * sub);
  for (let g = 0; g < t; g++) {
    const j = search.order[Math.floor(((g + 0.5) * k) / t)]!;
    centre.set(c.subarray(j * sub, j * sub + sub), g * sub);
  }
  const sums = new Float64Array(t * sub);
  const counts = new Float64Array(t);
  for (let it = 0; it < 5; it++) {
    for (let j = 0; j < k; j++) {
      let best = Infinity;
      for (let g = 0; g < t; g++) {
        const d = sqDist(c, j * sub, centre, g * sub, sub);
        if (d < best) {
          best = d;
          group[j] = g;
        }
      }
    }
    sums.fill(0);
    counts.fill(0);
    for (let j = 0; j < k; j++) {
      const g = group[j]!;
      counts[g] = counts[g]! + 1;
      for (let e = 0; e < sub; e++) sums[g * sub + e] = sums[g * sub + e]! + c[j * sub + e]!;
    }
    for (let g = 0; g < t; g++) {
      if (counts[g]! === 0) continue;
      for (let e = 0; e < sub; e++) centre[g * sub + e] = sums[g * sub + e]! / counts[g]!;
    }
  }
  return group;
}

/**
 * k-means on `rows` points of `sub` elements (row-major in `x`): k-means++ seeding, then up to
 * `iterations` Lloyd steps (mean update, then reassignment), stopping early when no assignment
 * changes. Ties go to the lower centroid index. An empty cluster moves onto the point farthest
 * from its centroid as far as the bounds below know (largest upper bound, lowest index on ties).
 * Returns k × sub centroids.
 *
 * The reassignment is exact Lloyd, accelerated by triangle-inequality bounds as in Yinyang
 * k-means (Ding et al. 2015) plus Hamerly's (2010) half-gap test: the centroids are split into
 * groups once; each point keeps an upper bound on the distance to its centroid and, per group, a
 * lower bound on the distance to the group's other centroids, moved by the centroids' drift each
 * step. A point is looked at only when the bounds cannot prove its centroid is still strictly the
 * nearest, and then only the groups whose bound does not rule them out are scanned. The first
 * assignment comes from the seeding (which knows each point's nearest seed), with group bounds
 * from each group's bounding ball. Together with MARGIN this gives plain Lloyd's assignments, so
 * the centroids are those of plain Lloyd (test/codecs-pq.test.ts checks it against one).
 */
function kMeans(x: Float64Array, rows: number, sub: number, k: number, iterations: number, rng: SeededRng): Float64Array {
  const seeding = kMeansPlusPlus(x, rows, sub, k, rng);
  const c = seeding.c;
  if (iterations === 0) return c;
  const state = new LloydState(x, rows, sub, seeding, k);
  for (let it = 0; it < iterations; it++) {
    state.update();
    if (it === iterations - 1 || state.reassign() === 0) break;
  }
  return c;
}

/** The state of kMeans's Lloyd iterations (see there); split into methods so each is optimised on its own. */
class LloydState {
  private readonly search: NearestSearch;
  /** Number of centroid groups. */
  private readonly t: number;
  private readonly groupOf: Int32Array;
  /** Members of group g, ascending: members[start[g] .. start[g + 1]). */
  private readonly start: Int32Array;
  private readonly members: Int32Array;
  /** The centroids in group order: row q is centroid members[q]. */
  private readonly grouped: Float64Array;
  /** Scratch: distances from the current point to one group's centroids. */
  private readonly scratch: Float64Array;
  private readonly assign: Int32Array;
  /** Upper bound on each point's distance to its centroid. */
  private readonly upper: Float64Array;
  /** rows × t: lower bound on each point's distance to every other centroid of each group. */
  private readonly lower: Float64Array;
  private readonly old: Float64Array;
  private readonly sums: Float64Array;
  private readonly counts: Float64Array;
  private readonly drift: Float64Array;
  private readonly groupDrift: Float64Array;
  private readonly halfGap: Float64Array;
  private readonly taken: Uint8Array;
  private readonly groupMin: Float64Array;
  private readonly groupMinAt: Int32Array;
  private readonly groupSecond: Float64Array;
  private readonly scanned: Uint8Array;
  /** The centroids, updated in place (the array kMeans returns). */
  private readonly c: Float64Array;

  constructor(
    private readonly x: Float64Array,
    private readonly rows: number,
    private readonly sub: number,
    seeding: Seeding,
    private readonly k: number,
  ) {
    const c = seeding.c;
    this.c = c;
    const search = new NearestSearch(c, k, sub);
    search.index();
    this.search = search;
    const t = Math.max(1, Math.round(k / GROUP_SIZE));
    this.t = t;
    const groupOf = groupCentroids(c, k, sub, t, search);
    this.groupOf = groupOf;
    const start = new Int32Array(t + 1);
    for (let j = 0; j < k; j++) start[groupOf[j]! + 1] = start[groupOf[j]! + 1]! + 1;
    for (let g = 0; g < t; g++) start[g + 1] = start[g + 1]! + start[g]!;
    const members = new Int32Array(k);
    const fill = start.slice(0, t);
    for (let j = 0; j < k; j++) {
      const g = groupOf[j]!;
      members[fill[g]!] = j;
      fill[g] = fill[g]! + 1;
    }
    this.start = start;
    this.members = members;
    this.grouped = new Float64Array(k * sub);
    this.scratch = new Float64Array(k);
    this.regroup();
    this.assign = new Int32Array(rows);
    this.upper = new Float64Array(rows);
    this.lower = new Float64Array(rows * t);
    this.old = new Float64Array(k * sub);
    this.sums = new Float64Array(k * sub);
    this.counts = new Float64Array(k);
    this.drift = new Float64Array(k);
    this.groupDrift = new Float64Array(t);
    this.halfGap = new Float64Array(k);
    this.taken = new Uint8Array(rows);
    this.groupMin = new Float64Array(t);
    this.groupMinAt = new Int32Array(t);
    this.groupSecond = new Float64Array(t);
    this.scanned = new Uint8Array(t);
    // Initial assignment: the nearest seed, known from the seeding. Group bounds from each
    // group's bounding ball: ‖x − c_j‖ >= ‖x − centre_g‖ − radius_g for every member j.
    this.assign.set(seeding.near);
    for (let r = 0; r < rows; r++) this.upper[r] = Math.sqrt(seeding.d2[r]!);
    const centre = new Float64Array(t * sub);
    const radius = new Float64Array(t);
    for (let g = 0; g < t; g++) {
      const from = start[g]!;
      const to = start[g + 1]!;
      for (let q = from; q < to; q++) {
        for (let e = 0; e < sub; e++) centre[g * sub + e] = centre[g * sub + e]! + this.grouped[q * sub + e]! / (to - from);
      }
      let r2 = 0;
      for (let q = from; q < to; q++) r2 = Math.max(r2, sqDist(this.grouped, q * sub, centre, g * sub, sub));
      radius[g] = Math.sqrt(r2) * (1 + MARGIN);
    }
    const toCentre = new Float64Array(t);
    for (let r = 0; r < rows; r++) {
      distancesTo(x, r * sub, centre, 0, t, sub, toCentre);
      for (let g = 0; g < t; g++) this.lower[r * t + g] = Math.max(0, Math.sqrt(toCentre[g]!) * (1 - MARGIN) - radius[g]!);
    }
  }

  /** Copies the centroids into group order. */
  private regroup(): void {
    const { c, k, sub, members, grouped } = this;
    for (let q = 0; q < k; q++) {
      const from = members[q]! * sub;
      for (let e = 0; e < sub; e++) grouped[q * sub + e] = c[from + e]!;
    }
  }

  /** Moves every centroid to the mean of its points; an empty one onto the worst-served point. */
  update(): void {
    const { x, rows, sub, c, k, assign, upper, sums, counts, taken } = this;
    this.old.set(c);
    sums.fill(0);
    counts.fill(0);
    for (let r = 0; r < rows; r++) {
      const j = assign[r]!;
      counts[j] = counts[j]! + 1;
      const at = r * sub;
      const to = j * sub;
      for (let e = 0; e < sub; e++) sums[to + e] = sums[to + e]! + x[at + e]!;
    }
    taken.fill(0);
    for (let j = 0; j < k; j++) {
      const to = j * sub;
      if (counts[j]! > 0) {
        const inv = 1 / counts[j]!;
        for (let e = 0; e < sub; e++) c[to + e] = sums[to + e]! * inv;
        continue;
      }
      let far = -1;
      for (let r = 0; r < rows; r++) {
        if (!taken[r] && (far < 0 || upper[r]! > upper[far]!)) far = r;
      }
      if (far < 0) continue;
      taken[far] = 1;
      c.set(x.subarray(far * sub, far * sub + sub), to);
    }
  }

  /** Reassigns every point to its nearest centroid (exactly); returns how many changed. */
  reassign(): number {
    const { sub, c, k, old, drift, groupDrift, groupOf, halfGap, search } = this;
    search.index();
    this.regroup();
    groupDrift.fill(0);
    for (let j = 0; j < k; j++) {
      const p = Math.sqrt(sqDist(c, j * sub, old, j * sub, sub));
      drift[j] = p;
      const g = groupOf[j]!;
      if (p > groupDrift[g]!) groupDrift[g] = p;
      // Half the distance from centroid j to its nearest other centroid (the search finds j
      // itself, or a lower-index duplicate, at distance 0; `second` is then the nearest other).
      search.search(c, j * sub);
      halfGap[j] = 0.5 * Math.sqrt(search.second);
    }
    let changed = 0;
    for (let r = 0; r < this.rows; r++) if (this.reassignPoint(r)) changed++;
    return changed;
  }

  private reassignPoint(r: number): boolean {
    const { x, sub, c, t, assign, upper, lower, drift, groupDrift, halfGap, start, members, scanned } = this;
    const { groupMin, groupMinAt, groupSecond, grouped, scratch } = this;
    const a = assign[r]!;
    const lb = r * t;
    let globalLower = Infinity;
    for (let g = 0; g < t; g++) {
      const l = lower[lb + g]! - groupDrift[g]!;
      lower[lb + g] = l;
      if (l < globalLower) globalLower = l;
    }
    const bound = Math.max(globalLower, halfGap[a]!) * (1 - MARGIN);
    let u = upper[r]! + drift[a]!;
    if (u < bound) {
      upper[r] = u;
      return false;
    }
    const at = r * sub;
    const oldSq = sqDist(x, at, c, a * sub, sub);
    u = Math.sqrt(oldSq);
    upper[r] = u;
    if (u < bound) return false;
    // Scan every group whose bound does not rule it out against the best so far.
    let bestSq = oldSq;
    let best = a;
    let bestDist = u;
    for (let g = 0; g < t; g++) {
      scanned[g] = 0;
      if (bestDist < lower[lb + g]! * (1 - MARGIN)) continue;
      scanned[g] = 1;
      let m1 = Infinity;
      let m2 = Infinity;
      let m1At = -1;
      const from = start[g]!;
      const end = start[g + 1]!;
      distancesTo(x, at, grouped, from, end, sub, scratch);
      for (let q = from; q < end; q++) {
        const j = members[q]!;
        const d = scratch[q - from]!;
        if (d < m1) {
          m2 = m1;
          m1 = d;
          m1At = j;
        } else if (d < m2) {
          m2 = d;
        }
        if (d < bestSq || (d === bestSq && j < best)) {
          bestSq = d;
          best = j;
          bestDist = Math.sqrt(d);
        }
      }
      groupMin[g] = m1;
      groupMinAt[g] = m1At;
      groupSecond[g] = m2;
    }
    // New group bounds (on distances to the group's centroids other than the new one): exact for
    // scanned groups; an unscanned group keeps its bound, lowered to the old centroid's distance
    // if that centroid is now "other".
    for (let g = 0; g < t; g++) {
      if (scanned[g]) lower[lb + g] = Math.sqrt(groupMinAt[g] === best ? groupSecond[g]! : groupMin[g]!);
    }
    if (best === a) return false;
    const ga = this.groupOf[a]!;
    if (!scanned[ga] && u < lower[lb + ga]!) lower[lb + ga] = u;
    assign[r] = best;
    upper[r] = Math.sqrt(bestSq);
    return true;
  }
}

function dist2(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number, n: number): number {
  let d = 0;
  for (let e = 0; e < n; e++) {
    const t = a[ai + e]! - b[bi + e]!;
    d += t * t;
  }
  return d;
}

function assertEmbeddings(embeddings: Float32Array | Float64Array, rows: number, dim: number): void {
  assertPositiveInt('rows', rows);
  assertPositiveInt('dim', dim);
  if (embeddings.length !== rows * dim) {
    throw new CodecError(`pq: expected ${rows} × ${dim} = ${rows * dim} embedding values, got ${embeddings.length}`);
  }
  for (let i = 0; i < embeddings.length; i++) {
    const v = embeddings[i]!;
    if (!(Math.abs(v) <= FLOAT32_MAX)) {
      throw new CodecError(`pq: embedding value ${i} (row ${Math.floor(i / dim)}) is ${String(v)}; only finite float32-range values can be used`);
    }
  }
}

/**
 * Trains a product-quantisation codebook: dim is split into `subspaces` contiguous chunks and each
 * chunk gets its own k-means (k-means++ seeding from SeededRng(seed) forked per subspace, then
 * Lloyd iterations, stopping early when stable). Centroids are stored as float32. Throws
 * CodecError for bad shapes or options (dim not divisible by subspaces, centroids outside 1..256),
 * or non-finite data. The same data and options give the same codebook.
 *
 * @example
 * const cb = trainPqCodebook(embeddings, rows, 64, { subspaces: 16, centroids: 256, seed: 1 });
 * const codec = createPqCodec(cb); // 16 bytes per 64-d vector
 */
export function trainPqCodebook(
  embeddings: Float32Array | Float64Array,
  rows: number,
  dim: number,
  options: PqTrainOptions,
): PqCodebook {
  const { subspaces, centroids, seed } = options;
  const iterations = options.iterations ?? PQ_DEFAULT_ITERATIONS;
  assertShape(dim, subspaces, centroids);
  if (!Number.isSafeInteger(iterations) || iterations < 0) {
    throw new CodecError(`pq: iterations must be a non-negative integer, got ${String(iterations)}`);
  }
  if (!Number.isFinite(seed)) throw new CodecError(`pq: seed must be a finite number, got ${String(seed)}`);
  assertEmbeddings(embeddings, rows, dim);
  const sub = dim / subspaces;
  const table = new Float32Array(centroids * dim);
  const root = new SeededRng(seed);
  const x = new Float64Array(rows * sub);
  for (let s = 0; s < subspaces; s++) {
    for (let r = 0; r < rows; r++) {
      for (let e = 0; e < sub; e++) x[r * sub + e] = embeddings[r * dim + s * sub + e]!;
    }
    const c = kMeans(x, rows, sub, centroids, iterations, root.fork(`pq subspace ${s}`));
    table.set(c, s * centroids * sub);
  }
  return Object.freeze({ dim, subspaces, centroids, table });
}

/**
 * Serialises a codebook: a 16-byte little-endian header — "PQCB", u16 version (1), u16
 * centroids, u32 subspaces, u32 dim — then the float32 table (centroids × dim values).
 */
export function encodePqCodebook(cb: PqCodebook): Uint8Array {
  assertCodebook(cb);
  const out = new Uint8Array(pqCodebookBytes(cb));
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  dv.setUint16(4, VERSION, true);
  dv.setUint16(6, cb.centroids, true);
  dv.setUint32(8, cb.subspaces, true);
  dv.setUint32(12, cb.dim, true);
  for (let i = 0; i < cb.table.length; i++) dv.setFloat32(HEADER_BYTES + 4 * i, cb.table[i]!, true);
  return out;
}

/** The exact length of encodePqCodebook(cb): 16 + 4 × centroids × dim bytes. */
export function pqCodebookBytes(cb: PqCodebook): number {
  assertShape(cb.dim, cb.subspaces, cb.centroids);
  return HEADER_BYTES + 4 * cb.centroids * cb.dim;
}

/**
 * Parses encodePqCodebook's bytes (any byteOffset). Throws CodecError naming the problem for a
 * short buffer, a wrong magic or version, an invalid shape (centroids outside 1..256, dim not
 * divisible by subspaces), a length that does not match the header, or a non-finite centroid.
 */
export function decodePqCodebook(bytes: Uint8Array): PqCodebook {
  if (bytes.length < HEADER_BYTES) {
    throw new CodecError(`pq: a codebook needs at least ${HEADER_BYTES} header bytes, got ${bytes.length}`);
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new CodecError('pq: not a codebook (the bytes do not start with "PQCB")');
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== VERSION) throw new CodecError(`pq: unsupported codebook version ${version} (expected ${VERSION})`);
  const centroids = dv.getUint16(6, true);
  const subspaces = dv.getUint32(8, true);
  const dim = dv.getUint32(12, true);
  assertShape(dim, subspaces, centroids);
  const expected = HEADER_BYTES + 4 * centroids * dim;
  if (bytes.length !== expected) {
    throw new CodecError(
      `pq: a codebook of ${subspaces} subspaces × ${centroids} centroids for dimension ${dim} has ${expected} bytes, got ${bytes.length}`,
    );
  }
  const table = new Float32Array(centroids * dim);
  for (let i = 0; i < table.length; i++) table[i] = dv.getFloat32(HEADER_BYTES + 4 * i, true);
  const cb: PqCodebook = Object.freeze({ dim, subspaces, centroids, table });
  assertCodebook(cb);
  return cb;
}

/**
 * Mean squared error per element of quantising `rows` vectors (row-major) with the codebook: the
 * quantity k-means minimises.
 */
export function pqMeanSquaredError(cb: PqCodebook, embeddings: Float32Array | Float64Array, rows: number): number {
  const codec = createPqCodec(cb);
  assertEmbeddings(embeddings, rows, cb.dim);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const v = embeddings.subarray(r * cb.dim, (r + 1) * cb.dim);
    const d = codec.decode(codec.encode(v), cb.dim);
    for (let i = 0; i < cb.dim; i++) total += (d[i]! - v[i]!) ** 2;
  }
  return total / (rows * cb.dim);
}

/**
 * A product-quantisation codec for one codebook (name 'pq'; not in the registry because it needs
 * the codebook, which the peers exchange separately — see pqCodebookBytes). encode writes one
 * byte per subspace, the index of the nearest centroid (squared Euclidean, ties to the lower
 * index); decode concatenates the indexed float32 centroids. Only vectors of the codebook's
 * dimension are accepted. The table is copied, so later changes to cb.table do not affect it.
 */
export function createPqCodec(cb: PqCodebook): VectorCodec {
  assertCodebook(cb);
  const { dim, subspaces, centroids } = cb;
  const sub = dim / subspaces;
  const table = Float64Array.from(cb.table);
  const name = 'pq';
  // Shared by the functions below; safe because each call runs to completion synchronously.
  const codes = new Uint8Array(subspaces);

  function assertCodebookDim(d: number): void {
    assertDim(name, d);
    if (d !== dim) throw new CodecError(`pq: this codebook is for dimension ${dim}, got ${d}`);
  }

  function encodedLength(d: number): number {
    assertCodebookDim(d);
    return subspaces;
  }

  /** Validates the vector and fills `codes`. */
  function quantise(vector: ArrayLike<number>): void {
    for (let i = 0; i < vector.length; i++) {
      const v = vector[i]!;
      if (!(Math.abs(v) <= FLOAT32_MAX)) {
        if (!Number.isFinite(v)) throw nonFiniteInputError(name, i, v);
        throw new CodecError(`pq: element ${i} (${v}) is outside the float32 range (|v| <= ${FLOAT32_MAX})`);
      }
    }
    assertCodebookDim(vector.length);
    for (let s = 0; s < subspaces; s++) {
      const at = s * sub;
      const base = s * centroids * sub;
      let bestD = Infinity;
      let bestC = 0;
      for (let c = 0; c < centroids; c++) {
        const d = dist2(vector, at, table, base + c * sub, sub);
        if (d < bestD) {
          bestD = d;
          bestC = c;
        }
      }
      codes[s] = bestC;
    }
  }

  function encode(vector: ArrayLike<number>): Uint8Array {
    quantise(vector);
    return codes.slice();
  }

  function decode(bytes: Uint8Array, d: number): Float64Array {
    assertCodebookDim(d);
    if (bytes.length !== subspaces) {
      throw new CodecError(`pq: expected ${subspaces} bytes for dimension ${dim}, got ${bytes.length}`);
    }
    const out = new Float64Array(dim);
    for (let s = 0; s < subspaces; s++) {
      const c = bytes[s]!;
      if (c >= centroids) {
        throw new CodecError(`pq: byte ${s} holds centroid index ${c}, but the codebook has ${centroids} centroids per subspace`);
      }
      const from = (s * centroids + c) * sub;
      for (let e = 0; e < sub; e++) out[s * sub + e] = table[from + e]!;
    }
    return out;
  }

  /**
   * Measured per vector, not a worst case: the largest |decode(encode(v))_i − v_i| of this very
   * vector (the codec is deterministic), times 1 + 2^-51 to cover the rounding of the subtraction.
   * 0 exactly when v is a concatenation of centroids.
   */
  function errorBound(vector: ArrayLike<number>): number {
    quantise(vector);
    let worst = 0;
    for (let s = 0; s < subspaces; s++) {
      const from = (s * centroids + codes[s]!) * sub;
      for (let e = 0; e < sub; e++) {
        const err = Math.abs(table[from + e]! - vector[s * sub + e]!);
        if (err > worst) worst = err;
      }
    }
    return worst * (1 + 2 ** -51);
  }

  return Object.freeze({ name, encodedLength, encode, decode, errorBound });
}
