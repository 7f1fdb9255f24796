import type { DurableStore, Recovered } from './durable-store.js';

/**
 * A store that keeps nothing: for runs without a results folder, which cannot be resumed, so
 * that they pay neither the memory nor the time of a journal.
 */
export class NoStore implements DurableStore {
  readonly discards = true;
  readonly recovered: Recovered = { snapshot: undefined, records: [], droppedTailBytes: 0 };

  append(): void {}

  appendInPlace(): void {}

  flush(): Promise<void> {
    return Promise.resolve();
  }

  async snapshot(): Promise<void> {}

  async close(): Promise<void> {}
}
