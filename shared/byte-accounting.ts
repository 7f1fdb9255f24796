export type Direction = 'up' | 'down';

/** Bytes of one kind of message in one direction. */
export interface ByteTally {
  messages: number;
  /** Codec payload: the encoded vectors only. */
  payloadBytes: number;
  /** The whole msgpack message. */
  encodedBytes: number;
}

/**
 * Counts messages and bytes per direction and message type. `up` is client → coordinator.
 *
 * @example
 * const meter = new ByteMeter();
 * meter.count('up', 'update', 640, 702);
 * meter.totals('up'); // { messages: 1, payloadBytes: 640, encodedBytes: 702 }
 */
export class ByteMeter {
  private readonly tallies = new Map<string, ByteTally>();

  count(direction: Direction, type: string, payloadBytes: number, encodedBytes: number): void {
    const key = `${direction}:${type}`;
    let t = this.tallies.get(key);
    if (!t) this.tallies.set(key, (t = { messages: 0, payloadBytes: 0, encodedBytes: 0 }));
    t.messages++;
    t.payloadBytes += payloadBytes;
    t.encodedBytes += encodedBytes;
  }

  /** Sum over the message types of one direction, all of them or only those `which` accepts. */
  totals(direction: Direction, which: (type: string) => boolean = () => true): ByteTally {
    const sum = { messages: 0, payloadBytes: 0, encodedBytes: 0 };
    for (const [key, t] of this.tallies) {
      if (!key.startsWith(`${direction}:`) || !which(key.slice(direction.length + 1))) continue;
      sum.messages += t.messages;
      sum.payloadBytes += t.payloadBytes;
      sum.encodedBytes += t.encodedBytes;
    }
    return sum;
  }

  /** A meter holding the sums of several meters (e.g. all clients of a run). */
  static combine(meters: Iterable<ByteMeter>): ByteMeter {
    const sum = new ByteMeter();
    for (const m of meters) {
      for (const [key, t] of m.tallies) {
        const acc = sum.tallies.get(key) ?? { messages: 0, payloadBytes: 0, encodedBytes: 0 };
        acc.messages += t.messages;
        acc.payloadBytes += t.payloadBytes;
        acc.encodedBytes += t.encodedBytes;
        sum.tallies.set(key, acc);
      }
    }
    return sum;
  }

  /** `{ up: { update: {...}, ... }, down: {...} }` */
  byType(): Record<Direction, Record<string, ByteTally>> {
    const out: Record<Direction, Record<string, ByteTally>> = { up: {}, down: {} };
    for (const [key, t] of this.tallies) {
      const [direction, type] = key.split(':') as [Direction, string];
      out[direction][type] = { ...t };
    }
    return out;
  }
}
