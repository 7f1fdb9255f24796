import { PROTOCOL_VERSION } from './messages.js';
import { framingBytes } from './socket-parser.js';
import { encodeMessage } from './wire-format.js';

export type Direction = 'up' | 'down';

/** Bytes of one kind of message in one direction. */
export interface ByteTally {
  messages: number;
  /** Codec payload: the encoded vectors only. */
  payloadBytes: number;
  /** The whole msgpack message. */
  encodedBytes: number;
  /**
   * The messages in their WebSocket frames (parser byte, frame header, client mask): what a socket
   * carries for them, exactly, in every mode. Measured socket totals add the connection set-up and
   * keep-alive pings on top.
   */
  frameBytes: number;
}

export function zeroTally(): ByteTally {
  return { messages: 0, payloadBytes: 0, encodedBytes: 0, frameBytes: 0 };
}

/** a + b, or a − b with `sign` −1. */
export function addTally(a: ByteTally, b: ByteTally, sign: 1 | -1 = 1): ByteTally {
  return {
    messages: a.messages + sign * b.messages,
    payloadBytes: a.payloadBytes + sign * b.payloadBytes,
    encodedBytes: a.encodedBytes + sign * b.encodedBytes,
    frameBytes: a.frameBytes + sign * b.frameBytes,
  };
}

/** A meter's counts, as `["direction:type", tally]` pairs (to save and load). */
export type ByteMeterEntries = [string, ByteTally][];

/**
 * Counts messages and bytes per direction and message type. `up` is client → coordinator.
 *
 * @example
 * const meter = new ByteMeter();
 * meter.count('up', 'update', 640, 702);
 * meter.totals('up'); // { messages: 1, payloadBytes: 640, encodedBytes: 702, frameBytes: 713 }
 */
export class ByteMeter {
  private readonly tallies = new Map<string, ByteTally>();
  /** Keys counted since the last takeChanged. */
  private readonly changed = new Set<string>();

  count(direction: Direction, type: string, payloadBytes: number, encodedBytes: number): void {
    const key = `${direction}:${type}`;
    let t = this.tallies.get(key);
    if (!t) this.tallies.set(key, (t = zeroTally()));
    this.changed.add(key);
    t.messages++;
    t.payloadBytes += payloadBytes;
    t.encodedBytes += encodedBytes;
    t.frameBytes += encodedBytes + framingBytes(encodedBytes, direction);
  }

  /**
   * Counts one message of which `controlBytes` are simulation control, counted as `controlType`
   * (bytes only: no message, no framing of their own).
   */
  countWithControl(direction: Direction, type: string, payloadBytes: number, encodedBytes: number, controlType: string, controlBytes: number): void {
    if (controlBytes <= 0) {
      this.count(direction, type, payloadBytes, encodedBytes);
      return;
    }
    this.count(direction, type, payloadBytes, encodedBytes);
    const main = this.tallies.get(`${direction}:${type}`)!;
    main.encodedBytes -= controlBytes;
    main.frameBytes -= controlBytes;
    const key = `${direction}:${controlType}`;
    let t = this.tallies.get(key);
    if (!t) this.tallies.set(key, (t = zeroTally()));
    this.changed.add(key);
    t.encodedBytes += controlBytes;
    t.frameBytes += controlBytes;
  }

  /** Sum over the message types of one direction, all of them or only those `which` accepts. */
  totals(direction: Direction, which: (type: string) => boolean = () => true): ByteTally {
    let sum = zeroTally();
    for (const [key, t] of this.tallies) {
      if (key.startsWith(`${direction}:`) && which(key.slice(direction.length + 1))) sum = addTally(sum, t);
    }
    return sum;
  }

  /** The counts so far, to be saved. */
  entries(): ByteMeterEntries {
    return [...this.tallies].map(([key, t]) => [key, { ...t }]);
  }

  /** Adds saved counts (the bytes a resumed run had counted before it stopped). */
  load(entries: ByteMeterEntries): void {
    for (const [key, t] of entries) {
      this.tallies.set(key, addTally(this.tallies.get(key) ?? zeroTally(), t));
      this.changed.add(key);
    }
  }

  /** Whether anything was counted (or loaded) since the last takeChanged. */
  get hasChanged(): boolean {
    return this.changed.size > 0;
  }

  /** Calls `each` with the counts of every key counted (or loaded) since the last call. */
  takeChanged(each: (key: string, tally: ByteTally) => void): void {
    for (const key of this.changed) each(key, this.tallies.get(key)!);
    this.changed.clear();
  }

  /** A meter holding the sums of several meters (e.g. all clients of a run). */
  static combine(meters: Iterable<ByteMeter>): ByteMeter {
    const sum = new ByteMeter();
    for (const m of meters) {
      for (const [key, t] of m.tallies) {
        sum.tallies.set(key, addTally(sum.tallies.get(key) ?? zeroTally(), t));
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

/**
 * The simulation-control bytes inside a message: for a mission, all but the signal a deployment
 * would send (`{v, mission}`); 0 for every other message.
 */
export function controlBytesOf(type: string, message: object, encodedBytes: number): number {
  if (type !== 'mission') return 0;
  return encodedBytes - encodeMissionSignal((message as { mission: number }).mission).byteLength;
}

function encodeMissionSignal(mission: number): Uint8Array {
  return encodeMessage({ v: PROTOCOL_VERSION, mission });
}
