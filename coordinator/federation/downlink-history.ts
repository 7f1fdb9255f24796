import type { VectorCodec } from '../../shared/protocol/codecs/vector-codec.js';

/**
 * What clients hold, class by class: every prototype the coordinator has sent, as the clients
 * decoded it, with the version at which that class last changed before it was sent. A client at
 * table version v holds, for class c, the entry of c with the highest such version ≤ v (a table
 * from any older version carries every class changed since, each encoded from the same
 * statistics), so this is what a `delta+` uplink update with `base` v was encoded against.
 *
 * @example
 * history.record(7, 12, bytes, codec);   // class 7, changed at version 12, sent as these bytes
 * history.held(7, 15);                   // what a client at version 15 holds for class 7
 */
export class DownlinkHistory {
  private readonly byClass = new Map<number, { since: number; mean: Float64Array | undefined }[]>();

  constructor(readonly dim: number) {}

  /** A class sent (as `bytes` in `codec`) with the statistics it has had since version `since`. */
  record(classId: number, since: number, bytes: Uint8Array, codec: VectorCodec): void {
    const list = this.byClass.get(classId) ?? [];
    if (list.at(-1)?.since === since) return;
    // Versions only grow; an entry from a replay that a table had already recorded is not added twice.
    if ((list.at(-1)?.since ?? -1) > since) return;
    list.push({ since, mean: codec.decode(bytes, this.dim) });
    this.byClass.set(classId, list);
  }

  /** A class removed (exact unlearning) at version `since`: clients from then on hold nothing for it. */
  recordRemoval(classId: number, since: number): void {
    const list = this.byClass.get(classId);
    if (list && list.at(-1)?.since !== since) list.push({ since, mean: undefined });
  }

  /** Every entry, to be saved. */
  export(): [number, [number, Float64Array | null][]][] {
    return [...this.byClass].map(([classId, list]) => [classId, list.map((e) => [e.since, e.mean ?? null])]);
  }

  /** Entries saved by export (a resumed run's). */
  import(entries: [number, [number, Float64Array | null][]][]): void {
    for (const [classId, list] of entries) this.byClass.set(classId, list.map(([since, mean]) => ({ since, mean: mean ?? undefined })));
  }

  /** The prototype a client at table version `version` holds for a class, or undefined for none. */
  held(classId: number, version: number): Float64Array | undefined {
    const list = this.byClass.get(classId);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.since <= version) return list[i]!.mean;
    return undefined;
  }
}
