import type { DurableStore, Recovered } from '../../coordinator/federation/durable-store.js';

/**
 * A store in memory, for tests. A flush makes records
 * "durable" in the sense that `reopen` keeps them: reopening is what a restart after a crash
 * sees, everything appended and not flushed being gone.
 *
 * @example
 * const store = new MemoryStore();
 * store.append(record);
 * const afterCrash = store.reopen();   // record is gone: it was never flushed
 */
export class MemoryStore implements DurableStore {
  private durableSnapshot: Uint8Array | undefined;
  private durableRecords: Uint8Array[] = [];
  private pending: Uint8Array[] = [];
  private lastFlush: Promise<void> = Promise.resolve();

  constructor(readonly recovered: Recovered = { snapshot: undefined, records: [], droppedTailBytes: 0 }) {
    this.durableSnapshot = recovered.snapshot;
    this.durableRecords = [...recovered.records];
  }

  /** Records appended and not flushed yet. */
  protected get pendingRecords(): Uint8Array[] {
    return this.pending;
  }

  append(record: Uint8Array): void {
    this.pending.push(Uint8Array.from(record));
  }

  appendInPlace(size: number, write: (bytes: Uint8Array, view: DataView, offset: number) => void): void {
    const record = new Uint8Array(size);
    write(record, new DataView(record.buffer), 0);
    this.pending.push(record);
  }

  flush(): Promise<void> {
    if (this.pending.length === 0) return this.lastFlush;
    const batch = this.pending;
    this.pending = [];
    this.lastFlush = this.lastFlush.then(() => {
      for (const r of batch) this.durableRecords.push(r);
    });
    return this.lastFlush;
  }

  async snapshot(payload: Uint8Array): Promise<void> {
    await this.flush();
    this.durableSnapshot = Uint8Array.from(payload);
    this.durableRecords = [];
  }

  async close(): Promise<void> {
    await this.flush();
  }

  /** A new store holding what this one made durable: what a restart after a crash finds. */
  reopen(): MemoryStore {
    return new MemoryStore({ snapshot: this.durableSnapshot, records: [...this.durableRecords], droppedTailBytes: 0 });
  }
}
