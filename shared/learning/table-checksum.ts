import { createHash } from 'node:crypto';
import type { PrototypeTable } from './prototype-table.js';

/**
 * SHA-256 (hex) over a table's statistics: for each class in ascending id order, its id (u32),
 * its count (f64) and its float64 sum, all little-endian. Two tables are equal, bit for bit,
 * exactly when their checksums are.
 *
 * @example
 * tableChecksum(state.global) === tableChecksum(resumed.global)
 */
export function tableChecksum(table: PrototypeTable): string {
  const hash = createHash('sha256');
  const row = Buffer.alloc(12 + 8 * table.dim);
  for (const id of table.classIds()) {
    const s = table.get(id)!;
    row.writeUInt32LE(id, 0);
    row.writeDoubleLE(s.count, 4);
    for (let i = 0; i < table.dim; i++) row.writeDoubleLE(s.sum[i]!, 12 + 8 * i);
    hash.update(row);
  }
  return hash.digest('hex');
}
