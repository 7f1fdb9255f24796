import { Packr } from 'msgpackr';
import { PROTOCOL_LIMITS } from './messages.js';

// Plain msgpack maps (no msgpackr records or extensions), so any msgpack library can read them.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

export class MalformedMessageError extends Error {}

/** Encodes one protocol message as msgpack bytes. */
export function encodeMessage(message: object): Uint8Array {
  return packr.pack(message);
}

/** Decodes msgpack bytes into a plain object; anything else raises MalformedMessageError. */
export function decodeMessage(frame: unknown): Record<string, unknown> {
  if (!(frame instanceof Uint8Array)) {
    throw new MalformedMessageError(`expected one binary msgpack frame, got ${describe(frame)}`);
  }
  if (frame.byteLength > PROTOCOL_LIMITS.maxMessageBytes) {
    throw new MalformedMessageError(`message of ${frame.byteLength} bytes exceeds the limit of ${PROTOCOL_LIMITS.maxMessageBytes}`);
  }
  let value: unknown;
  try {
    value = packr.unpack(frame);
  } catch (err) {
    throw new MalformedMessageError(`bad msgpack: ${(err as Error).message}`);
  }
  // msgpackr reads the never-used byte 0xC1 as a marker object: only a plain map is a message.
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new MalformedMessageError(`expected a msgpack map, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'binary';
  return typeof value;
}
