import { EventEmitter } from 'node:events';
import { Packr } from 'msgpackr';
import { CLIENT_MESSAGE_TYPES, COORDINATOR_MESSAGE_TYPES, PROTOCOL_LIMITS } from './messages.js';

/**
 * A socket.io parser (the `parser` option of both server and client) that puts every packet in
 * one binary WebSocket frame. socket.io's default parser sends an event with a binary argument as
 * two frames, a JSON text frame with a placeholder and then the bytes, which costs about 50 bytes
 * per message: as much as five 64-d int8 prototypes.
 *
 * Layout of a frame:
 * - a protocol event (one binary argument, default namespace, no ack id):
 *   `0xE0 + event index`, then the message bytes: one byte of framing.
 * - any other packet (connect, disconnect, errors, other events): `0x00`, then a msgpack map
 *   `{ type, nsp, data?, id? }`.
 */
// An event's index here is its byte on the wire: events added later go at the end.
const EVENTS: readonly string[] = [
  'hello', 'update', 'report', 'welcome', 'refused', 'mission', 'ack', 'table', 'evaluate', 'error', 'shutdown', 'codebook', 'leave',
];
if (EVENTS.length !== CLIENT_MESSAGE_TYPES.length + COORDINATOR_MESSAGE_TYPES.length) throw new Error('socket-parser: a message type has no event byte');
const EVENT_BASE = 0xe0;
const GENERIC = 0x00;
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

interface Packet {
  type: number;
  nsp: string;
  data?: unknown;
  id?: number;
}

const EVENT = 2;
const MAX_PACKET_TYPE = 6;

export class Encoder {
  encode(packet: Packet): Uint8Array[] {
    const data = packet.data as unknown[] | undefined;
    if (packet.type === EVENT && packet.nsp === '/' && packet.id === undefined && Array.isArray(data)
      && data.length === 2 && typeof data[0] === 'string' && data[1] instanceof Uint8Array) {
      const index = EVENTS.indexOf(data[0]);
      if (index >= 0) {
        const frame = data[1];
        const out = new Uint8Array(1 + frame.byteLength);
        out[0] = EVENT_BASE + index;
        out.set(frame, 1);
        return [out];
      }
    }
    const generic: Packet = { type: packet.type, nsp: packet.nsp };
    if (packet.data !== undefined) generic.data = withoutUndefined(packet.data);
    if (packet.id !== undefined) generic.id = packet.id;
    const body = packr.pack(generic);
    const out = new Uint8Array(1 + body.byteLength);
    out[0] = GENERIC;
    out.set(body, 1);
    return [out];
  }
}

/**
 * A packet's data with the keys whose value is undefined left out (socket.io's connect reply has
 * `pid: undefined`, which msgpackr would write as an extension type no other msgpack reader takes).
 */
function withoutUndefined(data: unknown): unknown {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || data instanceof Uint8Array) return data;
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
}

/** A frame that is not a packet of this parser; socket.io closes the connection on it. */
export class SocketFrameError extends Error {}

/**
 * Event names the decoder gives frames that are packets but not protocol messages, so that the
 * receiver can answer them with the `error` the protocol promises instead of losing the connection:
 * an event byte of no protocol event (`0xE0 + i` past the list), and a protocol event sent as a
 * generic `0x00` packet. Their one argument is the reason.
 */
export const UNKNOWN_EVENT = '\u0000unknown-event';
export const MISFRAMED_EVENT = '\u0000misframed-event';

export class Decoder extends EventEmitter {
  add(chunk: unknown): void {
    const bytes = toBytes(chunk);
    if (bytes.byteLength === 0) throw new SocketFrameError('empty frame');
    this.check(bytes);
    const head = bytes[0]!;
    if (head >= EVENT_BASE && head < EVENT_BASE + EVENTS.length) {
      this.decoded(EVENTS[head - EVENT_BASE]!, bytes.subarray(1));
      return;
    }
    if (head > EVENT_BASE) {
      this.decoded(UNKNOWN_EVENT, `unknown event byte 0x${head.toString(16)}`);
      return;
    }
    if (head !== GENERIC) throw new SocketFrameError(`unknown frame kind 0x${head.toString(16)}`);
    let packet: unknown;
    try {
      packet = packr.unpack(bytes.subarray(1));
    } catch (err) {
      throw new SocketFrameError(`bad msgpack in a socket.io packet: ${(err as Error).message}`);
    }
    const p = checkPacket(packet);
    if (p.type === EVENT && p.nsp === '/' && EVENTS.includes((p.data as unknown[])[0] as string)) {
      this.decoded(MISFRAMED_EVENT, `"${(p.data as unknown[])[0]}" sent as a generic 0x00 packet: protocol events travel as one byte 0xE0 + i, then the message`);
      return;
    }
    this.emit('decoded', p);
  }

  destroy(): void {
    this.removeAllListeners();
  }

  /** Refuses a frame before it is decoded (by size, or by what may come when). */
  protected check(bytes: Uint8Array): void {
    if (bytes.byteLength > PROTOCOL_LIMITS.maxMessageBytes + 1) throw new SocketFrameError(`frame of ${bytes.byteLength} bytes exceeds the limit`);
  }

  protected decoded(event: string, argument: unknown): void {
    this.emit('decoded', { type: EVENT, nsp: '/', data: [event, argument] });
  }
}

/**
 * The coordinator's decoder: until a connection has sent its hello, it may send only small
 * frames (the socket.io connect packet and the hello, at most PROTOCOL_LIMITS.maxHelloBytes), so
 * a peer that has not authenticated cannot make the coordinator hold or decode anything large.
 * A larger frame closes the connection before it is decoded.
 */
export class CoordinatorDecoder extends Decoder {
  private helloSeen = false;

  protected override check(bytes: Uint8Array): void {
    if (!this.helloSeen && bytes.byteLength > PROTOCOL_LIMITS.maxHelloBytes + 1) {
      throw new SocketFrameError(`frame of ${bytes.byteLength} bytes before hello (at most ${PROTOCOL_LIMITS.maxHelloBytes} before a hello)`);
    }
    super.check(bytes);
  }

  protected override decoded(event: string, argument: unknown): void {
    if (event === 'hello') this.helloSeen = true;
    super.decoded(event, argument);
  }
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (typeof chunk === 'string') throw new SocketFrameError('text frame: this connection speaks the protofed binary parser');
  throw new SocketFrameError(`unexpected frame of type ${typeof chunk}`);
}

function checkPacket(value: unknown): Packet {
  const p = value as Packet;
  if (p === null || typeof p !== 'object' || !Number.isInteger(p.type) || p.type < 0 || p.type > MAX_PACKET_TYPE) {
    throw new SocketFrameError('not a socket.io packet');
  }
  if (typeof p.nsp !== 'string' || !p.nsp.startsWith('/')) throw new SocketFrameError('packet without a namespace');
  if (p.id !== undefined && (!Number.isInteger(p.id) || p.id < 0)) throw new SocketFrameError('bad packet id');
  if (p.type === EVENT && (!Array.isArray(p.data) || typeof p.data[0] !== 'string')) throw new SocketFrameError('event packet without a name');
  return p;
}

/** The parser object for socket.io's `parser` option (clients). */
export const protofedParser = { protocol: 5, Encoder, Decoder };

/** The coordinator's parser: the same frames, with the limits on what comes before a hello. */
export const protofedCoordinatorParser = { protocol: 5, Encoder, Decoder: CoordinatorDecoder };

/**
 * Bytes one protocol message takes on a WebSocket, beyond its encoded bytes: the parser's one
 * byte and the WebSocket frame header (2, 4 or 10 bytes by length, plus a 4-byte mask from client
 * to server, as RFC 6455 requires). Engine.io adds nothing per binary message on a WebSocket.
 */
export function framingBytes(encodedBytes: number, direction: 'up' | 'down'): number {
  const payload = encodedBytes + 1;
  const header = payload < 126 ? 2 : payload < 65_536 ? 4 : 10;
  return 1 + header + (direction === 'up' ? 4 : 0);
}
