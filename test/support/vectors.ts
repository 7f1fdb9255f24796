/** A tiny seeded generator of uniforms in [0, 1), independent of the code under test. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The largest |a[i] − b[i]|, and the largest |a[i]| it is relative to. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): { error: number; scale: number } {
  return { error: maxAbsError(a, b), scale: maxAbsError(a, new Float32Array(a.length)) };
}

/** The largest |a[i] − b[i]| over i in [from, to). */
export function maxAbsError(a: ArrayLike<number>, b: ArrayLike<number>, from = 0, to = a.length): number {
  let e = 0;
  for (let i = from; i < to; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  return e;
}
