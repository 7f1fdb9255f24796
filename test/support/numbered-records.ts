/** Record i of the log tests: its number, then 16 to 4,111 bytes that depend on it only. */
export function numberedRecord(i: number): Uint8Array {
  const length = 4 + 16 + ((i * 2654435761) >>> 0) % 4096;
  const record = new Uint8Array(length);
  new DataView(record.buffer).setUint32(0, i, true);
  for (let k = 4; k < length; k++) record[k] = (i * 31 + k * 7) & 0xff;
  return record;
}

/** Whether `record` is exactly record i. */
export function isNumberedRecord(record: Uint8Array, i: number): boolean {
  const expected = numberedRecord(i);
  return record.byteLength === expected.byteLength && expected.every((b, k) => record[k] === b);
}
