import type { ByteMeterEntries, ByteTally } from '../../shared/protocol/byte-accounting.js';
import type { MeteredClientLinks, WireBytes } from './client-links.js';

/**
 * The byte counts that changed since the last progress record, written with each durable batch
 * of the journal: whole tallies (not differences) of the changed (client, message type) pairs, as
 * rows of `tallies` (client index, key index, messages, payload, encoded, frame bytes), and the
 * socket bytes of the clients whose sockets carried more.
 */
export interface BytesProgress {
  clients: string[];
  keys: string[];
  tallies: Float64Array;
  wire: Record<string, WireBytes>;
}

const ROW = 6;

/**
 * Writes the clients' byte counts into the journal's progress records, and gives a resumed run
 * the counts the killed one had reached: those of its last finished mission, with the progress
 * written after it laid over them.
 *
 * @example
 * const bytes = new BytesProgressBook(links, clientIds);
 * bytes.restore(journal.missions.at(-1), journal.progress);
 * journal.progressSource = () => bytes.take();
 */
export class BytesProgressBook {
  /** Each client's socket bytes as the last progress record wrote them. */
  private readonly wireWritten = new Map<string, string>();

  constructor(private readonly links: MeteredClientLinks, private readonly clientIds: readonly string[]) {}

  /** The counts that changed since the last call; undefined when none did. */
  take(): BytesProgress | undefined {
    const keys = new Map<string, number>();
    const clients: string[] = [];
    const rows: number[] = [];
    const wire: Record<string, WireBytes> = {};
    let wired = false;
    let id = '';
    let client = -1;
    const row = (key: string, t: ByteTally): void => {
      if (client < 0) client = clients.push(id) - 1;
      let k = keys.get(key);
      if (k === undefined) keys.set(key, (k = keys.size));
      rows.push(client, k, t.messages, t.payloadBytes, t.encodedBytes, t.frameBytes);
    };
    const sockets = this.links.wireBytes !== undefined;
    for (const clientId of this.clientIds) {
      const meter = this.links.meter(clientId);
      if (meter.hasChanged) {
        id = clientId;
        client = -1;
        meter.takeChanged(row);
      }
      if (!sockets) continue;
      const w = this.links.wireBytes!(clientId);
      const text = w ? `${w.up}/${w.down}` : '';
      if (w && this.wireWritten.get(clientId) !== text) {
        this.wireWritten.set(clientId, text);
        wire[clientId] = w;
        wired = true;
      }
    }
    if (rows.length === 0 && !wired) return undefined;
    return { clients, keys: [...keys.keys()], tallies: Float64Array.from(rows), wire };
  }

  /** Loads the counts a killed run had reached into the links (added to what they counted since). */
  restore(last: { meters: Record<string, ByteMeterEntries>; wire?: Record<string, WireBytes> | undefined } | undefined, progress: readonly BytesProgress[]): void {
    const meters = new Map<string, Map<string, ByteTally>>(Object.entries(last?.meters ?? {}).map(([id, entries]) => [id, new Map(entries)]));
    const wire = { ...last?.wire };
    for (const p of progress) {
      for (let r = 0; r < p.tallies.length; r += ROW) {
        const id = p.clients[p.tallies[r]!]!;
        let tallies = meters.get(id);
        if (!tallies) meters.set(id, (tallies = new Map()));
        const [messages, payloadBytes, encodedBytes, frameBytes] = p.tallies.subarray(r + 2, r + ROW);
        tallies.set(p.keys[p.tallies[r + 1]!]!, { messages: messages!, payloadBytes: payloadBytes!, encodedBytes: encodedBytes!, frameBytes: frameBytes! });
      }
      Object.assign(wire, p.wire);
    }
    for (const [id, tallies] of meters) this.links.meter(id).load([...tallies]);
    for (const [id, bytes] of Object.entries(wire)) this.links.carryWire?.(id, bytes);
  }

  /** Every client's socket bytes so far (for the mission record); undefined without sockets. */
  wireBytes(): Record<string, WireBytes> | undefined {
    const wire: Record<string, WireBytes> = {};
    for (const id of this.clientIds) {
      const w = this.links.wireBytes?.(id);
      if (w) wire[id] = w;
    }
    return Object.keys(wire).length > 0 ? wire : undefined;
  }
}
