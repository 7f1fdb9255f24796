import { expect } from 'vitest';
import type { VectorCodec } from '../../shared/protocol/codecs/index.js';

/** A 16-bit float format: its conversions and the exponent mask whose all-ones value is Inf/NaN. */
export interface SixteenBitFormat {
  toBits: (x: number) => number;
  fromBits: (bits: number) => number;
  exponentMask: number;
}

/**
 * Every finite non-negative pattern round-trips (and its negation), and every midpoint between
 * neighbours rounds to even, with points just below and above it rounding down and up.
 */
export function expectExactRoundTripsAndTiesToEven({ toBits, fromBits, exponentMask }: SixteenBitFormat): void {
  for (let h = 0; h < exponentMask; h++) {
    const x = fromBits(h);
    if (toBits(x) !== h || toBits(-x) !== (h | 0x8000)) {
      throw new Error(`round trip failed for 0x${h.toString(16)}`);
    }
    if (h === exponentMask - 1) continue;
    const next = fromBits(h + 1);
    const mid = (x + next) / 2;
    const even = h % 2 === 0 ? h : h + 1;
    const below = mid - (next - x) * 2 ** -20;
    const above = mid + (next - x) * 2 ** -20;
    if (toBits(mid) !== even || toBits(below) !== h || toBits(above) !== h + 1) {
      throw new Error(`rounding failed between 0x${h.toString(16)} and 0x${(h + 1).toString(16)}`);
    }
  }
}

/** The codec decodes every finite pattern and re-encodes it to the same bytes; `finite` is their number. */
export function expectEveryFinitePatternDecodes(codec: VectorCodec, exponentMask: number, finite: number): void {
  const bytes = new Uint8Array(2 * finite);
  let n = 0;
  for (let h = 0; h <= 0xffff; h++) {
    if ((h & exponentMask) === exponentMask) continue;
    bytes[2 * n] = h & 0xff;
    bytes[2 * n + 1] = h >>> 8;
    n++;
  }
  expect(n).toBe(finite);
  const reencoded = codec.encode(codec.decode(bytes, n));
  expect(Buffer.compare(reencoded, bytes)).toBe(0);
}
