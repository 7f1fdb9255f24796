/**
 * Where the engine makes its state durable: an ordered stream of records and, now and then, a
 * snapshot that replaces every record before it. Kept this small so that another store (a
 * networked log for a coordinator tier that outgrows one machine) can take the file log's place.
 *
 * @example
 * const store = await RecordLog.open('results/run/state');
 * const { snapshot, records } = store.recovered;   // what survived the last run
 * store.append(record);
 * await store.flush();                             // durable from here on: now ack it
 * await store.snapshot(payload);                   // the records so far are folded into it
 */
export interface DurableStore {
  /** What the store held when it was opened. */
  readonly recovered: Recovered;
  /** True for a store that keeps nothing (a run without a results folder): no snapshot is worth building. */
  readonly discards?: boolean;
  /** Queues a record; it is durable once a later flush resolves. */
  append(record: Uint8Array): void;
  /**
   * Queues a record of `size` bytes that `write` fills in place, at `offset` of `bytes` (also seen
   * through `view`): no record is allocated and copied on the merge's hot path.
   */
  appendInPlace(size: number, write: (bytes: Uint8Array, view: DataView, offset: number) => void): void;
  /**
   * Makes every record appended so far durable. Calls made while a write is under way share the
   * next write (group commit), so many acks cost one fsync.
   */
  flush(): Promise<void>;
  /** Replaces everything so far (flushed first) by `payload`, the state it all amounts to. */
  snapshot(payload: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface Recovered {
  /** The latest complete snapshot, or undefined for none. */
  snapshot: Uint8Array | undefined;
  /** The records appended after that snapshot, in order. */
  records: Uint8Array[];
  /** Bytes at the end of the log that did not form a whole, checksummed batch (a torn write), dropped. */
  droppedTailBytes: number;
}
