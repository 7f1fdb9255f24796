import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { DurableStore, Recovered } from './durable-store.js';

const BATCH_MAGIC = 0x424c4650; // "PFLB"
const SNAPSHOT_MAGIC = 0x4e534650; // "PFSN"
const BATCH_HEADER = 4 + 4 + 4;
const SNAPSHOT_HEADER = 4 + 4 + 8 + 32;
const FORMAT = 1;

/**
 * The file store of a run's state: one snapshot and the log that follows it, in `dir`.
 *
 * The log is a sequence of batches, each `u32 magic · u32 length · u32 CRC-32C · records`,
 * a record being `u32 length · bytes`. A flush writes everything appended since the last one as
 * one batch and fdatasyncs it (group commit); a batch that a crash cut short, or whose checksum
 * fails, ends the log: it is dropped whole when the store is opened again (its records were never
 * acknowledged, since acks wait for the flush). A snapshot (`u32 magic · u32 format · u64 length ·
 * SHA-256 · payload`) is written to a temporary file, synced and renamed; only then does a new,
 * empty log start and the old pair go.
 *
 * @example
 * const log = await RecordLog.open('results/run/state');
 * for (const r of log.recovered.records) replay(r);
 * log.append(encodeRecord(update));
 * await log.flush();
 */
export class RecordLog implements DurableStore {
  private buffer = Buffer.allocUnsafe(1 << 16);
  /** The buffer of the batch written last; free again once that write is done. */
  private spare = Buffer.allocUnsafe(1 << 16);
  private view = viewOf(this.buffer);
  private used = 0;
  private writing: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;
  private lastFlush: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private generation: number,
    private handle: FileHandle,
    readonly recovered: Recovered,
    private readonly sync: boolean,
  ) {}

  /**
   * Opens (or creates) the store in `dir`, reads what it holds and drops a torn tail.
   * `sync: false` skips fdatasync (only for measuring what it costs).
   */
  static async open(dir: string, options: { sync?: boolean } = {}): Promise<RecordLog> {
    mkdirSync(dir, { recursive: true });
    const numbered = (prefix: string): number[] => readdirSync(dir)
      .map((f) => new RegExp(`^${prefix}-(\\d+)\\.bin$`).exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
    let generation = 0;
    let snapshot: Uint8Array | undefined;
    for (const n of numbered('snapshot')) {
      snapshot = readSnapshot(join(dir, snapshotName(n)));
      if (snapshot) {
        generation = n;
        break;
      }
    }
    const logPath = join(dir, logName(generation));
    let bytes: Buffer;
    try {
      bytes = readFileSync(logPath);
    } catch {
      bytes = Buffer.alloc(0);
    }
    const { records, validBytes } = readBatches(bytes);
    const droppedTailBytes = bytes.byteLength - validBytes;
    if (droppedTailBytes > 0) {
      truncateSync(logPath, validBytes);
      syncPath(logPath);
    }
    const handle = await open(logPath, 'a');
    if (bytes.byteLength === 0) syncPath(dir);
    for (const n of numbered('snapshot')) if (n !== generation) rmSync(join(dir, snapshotName(n)), { force: true });
    for (const n of numbered('log')) if (n !== generation) rmSync(join(dir, logName(n)), { force: true });
    return new RecordLog(dir, generation, handle, { snapshot, records, droppedTailBytes }, options.sync ?? true);
  }

  append(record: Uint8Array): void {
    this.appendInPlace(record.byteLength, (bytes, _view, offset) => bytes.set(record, offset));
  }

  appendInPlace(size: number, write: (bytes: Uint8Array, view: DataView, offset: number) => void): void {
    if (this.closed) throw new Error('the record log is closed');
    const need = this.used + 4 + size;
    if (need > this.buffer.byteLength) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.buffer.byteLength));
      this.buffer.copy(grown, 0, 0, this.used);
      this.buffer = grown;
      this.view = viewOf(grown);
    }
    this.view.setUint32(this.used, size, true);
    write(this.buffer, this.view, this.used + 4);
    this.used = need;
  }

  flush(): Promise<void> {
    // With nothing new, the last flush handed out: it settles after every earlier one's callbacks
    // (an ack queued on it goes out before whatever waits on this one).
    if (this.used === 0) return this.lastFlush;
    // One write at a time; every flush asked for meanwhile joins the next one.
    this.queued ??= this.writing.then(() => {
      this.queued = undefined;
      return (this.writing = this.writeBatch());
    });
    this.lastFlush = this.queued;
    return this.queued;
  }

  async snapshot(payload: Uint8Array): Promise<void> {
    await this.flush();
    const next = this.generation + 1;
    const path = join(this.dir, snapshotName(next));
    const header = Buffer.alloc(SNAPSHOT_HEADER);
    header.writeUInt32LE(SNAPSHOT_MAGIC, 0);
    header.writeUInt32LE(FORMAT, 4);
    header.writeBigUInt64LE(BigInt(payload.byteLength), 8);
    createHash('sha256').update(payload).digest().copy(header, 16);
    const fd = openSync(`${path}.tmp`, 'w');
    try {
      writeFileSync(fd, header);
      writeFileSync(fd, payload);
      if (this.sync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(`${path}.tmp`, path);
    const previous = this.generation;
    await this.handle.close();
    this.handle = await open(join(this.dir, logName(next)), 'a');
    this.generation = next;
    if (this.sync) syncPath(this.dir);
    rmSync(join(this.dir, snapshotName(previous)), { force: true });
    rmSync(join(this.dir, logName(previous)), { force: true });
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.handle.close();
  }

  private async writeBatch(): Promise<void> {
    const batch = this.buffer.subarray(0, this.used);
    [this.buffer, this.spare] = [this.spare, this.buffer];
    this.view = viewOf(this.buffer);
    this.used = 0;
    const header = Buffer.allocUnsafe(BATCH_HEADER);
    header.writeUInt32LE(BATCH_MAGIC, 0);
    header.writeUInt32LE(batch.byteLength, 4);
    header.writeUInt32LE(crc32c(batch), 8);
    await this.handle.writev([header, batch]);
    if (this.sync) await this.handle.datasync();
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function snapshotName(n: number): string {
  return `snapshot-${String(n).padStart(6, '0')}.bin`;
}

function logName(n: number): string {
  return `log-${String(n).padStart(6, '0')}.bin`;
}

/** A snapshot's payload, or undefined when the file is incomplete or fails its checksum. */
function readSnapshot(path: string): Uint8Array | undefined {
  const bytes = readFileSync(path);
  if (bytes.byteLength < SNAPSHOT_HEADER || bytes.readUInt32LE(0) !== SNAPSHOT_MAGIC || bytes.readUInt32LE(4) !== FORMAT) return undefined;
  const length = Number(bytes.readBigUInt64LE(8));
  if (bytes.byteLength !== SNAPSHOT_HEADER + length) return undefined;
  const payload = bytes.subarray(SNAPSHOT_HEADER);
  return createHash('sha256').update(payload).digest().equals(bytes.subarray(16, 48)) ? payload : undefined;
}

/** The records of every whole batch with a good checksum, up to the first that is not. */
function readBatches(bytes: Buffer): { records: Uint8Array[]; validBytes: number } {
  const records: Uint8Array[] = [];
  let at = 0;
  while (at + BATCH_HEADER <= bytes.byteLength) {
    if (bytes.readUInt32LE(at) !== BATCH_MAGIC) break;
    const length = bytes.readUInt32LE(at + 4);
    const start = at + BATCH_HEADER;
    if (start + length > bytes.byteLength) break;
    const batch = bytes.subarray(start, start + length);
    if (crc32c(batch) !== bytes.readUInt32LE(at + 8)) break;
    const inBatch: Uint8Array[] = [];
    let r = 0;
    while (r + 4 <= batch.byteLength) {
      const n = batch.readUInt32LE(r);
      if (r + 4 + n > batch.byteLength) break;
      inBatch.push(batch.subarray(r + 4, r + 4 + n));
      r += 4 + n;
    }
    if (r !== batch.byteLength) break;
    for (const r of inBatch) records.push(r);
    at = start + length;
  }
  return { records, validBytes: at };
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
