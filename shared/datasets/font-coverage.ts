import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { DataFileError } from './labelled-dataset.js';

/*
 * Which characters a font really has, read from its cmap table: canvas silently falls back to a
 * system font for a missing character, so rendering alone cannot tell.
 */

const coverageCache = new Map<string, Set<number>>();

/** The code points a font file maps to a real glyph (glyph id ≠ 0), read from its cmap table. */
export function fontCoverage(path: string): Set<number> {
  const cached = coverageCache.get(path);
  if (cached) return cached;
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new DataFileError(path, `cannot read font file (${(err as Error).message})`);
  }
  const cmap = sfntTable(bytes, 'cmap', path);
  if (!cmap) throw new DataFileError(path, 'font has no cmap table');
  const covered = parseCmap(cmap, path);
  coverageCache.set(path, covered);
  return covered;
}

/** One table of a TrueType/OpenType font, plain or inside WOFF 1.0 (zlib-compressed tables). */
function sfntTable(bytes: Buffer, tag: string, path: string): Buffer | undefined {
  if (bytes.length < 12) throw new DataFileError(path, `truncated font file (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signature = view.getUint32(0);
  if (signature === 0x774f4646) {
    const numTables = view.getUint16(12);
    for (let i = 0; i < numTables; i++) {
      const at = 44 + 20 * i;
      if (bytes.toString('latin1', at, at + 4) !== tag) continue;
      const offset = view.getUint32(at + 4);
      const compLength = view.getUint32(at + 8);
      const origLength = view.getUint32(at + 12);
      const data = bytes.subarray(offset, offset + compLength);
      try {
        return compLength < origLength ? inflateSync(data) : data;
      } catch (err) {
        throw new DataFileError(path, `corrupt WOFF table '${tag}' (${(err as Error).message})`);
      }
    }
    return undefined;
  }
  if (signature === 0x00010000 || signature === 0x4f54544f || signature === 0x74727565) {
    const numTables = view.getUint16(4);
    for (let i = 0; i < numTables; i++) {
      const at = 12 + 16 * i;
      if (bytes.toString('latin1', at, at + 4) !== tag) continue;
      const offset = view.getUint32(at + 8);
      return bytes.subarray(offset, offset + view.getUint32(at + 12));
    }
    return undefined;
  }
  if (signature === 0x774f4632) throw new DataFileError(path, 'WOFF2 fonts are not read here; use the .woff file');
  throw new DataFileError(path, `not a TrueType, OpenType or WOFF font (signature 0x${signature.toString(16)})`);
}

function parseCmap(table: Buffer, path: string): Set<number> {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const covered = new Set<number>();
  const numTables = view.getUint16(2);
  const seenOffsets = new Set<number>();
  for (let i = 0; i < numTables; i++) {
    const platform = view.getUint16(4 + 8 * i);
    const encoding = view.getUint16(6 + 8 * i);
    const offset = view.getUint32(8 + 8 * i);
    const unicode = platform === 0 || (platform === 3 && (encoding === 1 || encoding === 10));
    if (!unicode || seenOffsets.has(offset)) continue;
    seenOffsets.add(offset);
    if (offset + 2 > table.length) throw new DataFileError(path, 'cmap subtable offset past the end of the table');
    const format = view.getUint16(offset);
    switch (format) {
      case 4: {
        const segX2 = view.getUint16(offset + 6);
        const ends = offset + 14;
        const starts = ends + segX2 + 2;
        const deltas = starts + segX2;
        const rangeOffsets = deltas + segX2;
        for (let s = 0; s < segX2 / 2; s++) {
          const end = view.getUint16(ends + 2 * s);
          const start = view.getUint16(starts + 2 * s);
          const delta = view.getUint16(deltas + 2 * s);
          const rangeOffset = view.getUint16(rangeOffsets + 2 * s);
          for (let c = start; c <= end && c !== 0xffff; c++) {
            let glyph: number;
            if (rangeOffset === 0) {
              glyph = (c + delta) & 0xffff;
            } else {
              const at = rangeOffsets + 2 * s + rangeOffset + 2 * (c - start);
              glyph = at + 2 <= table.length ? view.getUint16(at) : 0;
              if (glyph !== 0) glyph = (glyph + delta) & 0xffff;
            }
            if (glyph !== 0) covered.add(c);
          }
        }
        break;
      }
      case 6: {
        const first = view.getUint16(offset + 6);
        const count = view.getUint16(offset + 8);
        for (let k = 0; k < count; k++) if (view.getUint16(offset + 10 + 2 * k) !== 0) covered.add(first + k);
        break;
      }
      case 12:
      case 13: {
        const groups = view.getUint32(offset + 12);
        for (let g = 0; g < groups; g++) {
          const at = offset + 16 + 12 * g;
          const start = view.getUint32(at);
          const end = Math.min(view.getUint32(at + 4), 0x10ffff);
          const glyph = view.getUint32(at + 8);
          for (let c = start; c <= end; c++) {
            const id = format === 12 ? glyph + (c - start) : glyph;
            if (id !== 0) covered.add(c);
          }
        }
        break;
      }
      case 0: {
        for (let c = 0; c < 256; c++) if (view.getUint8(offset + 6 + c) !== 0) covered.add(c);
        break;
      }
      default:
        // Formats 2, 8, 10 and 14 are for legacy CJK encodings or variation selectors.
        break;
    }
  }
  return covered;
}
