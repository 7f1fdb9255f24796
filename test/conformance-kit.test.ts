import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodePqCodebook, encodePqCodebook } from '../shared/protocol/codecs/index.js';
import { unpackU32, type ClassBlock } from '../shared/protocol/messages.js';
import { validateClientMessage, validateCoordinatorMessage } from '../shared/protocol/validation.js';
import { Decoder, Encoder } from '../shared/protocol/socket-parser.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';
import {
  codebookFromJson, codecOf, decodeBlockVectors, eventByte, hex, materialise, unhex,
  type ClassBlockMeaning, type CodecCase, type MessageCase, type PacketCase, type Typed,
} from './support/conformance-kit.js';
import { captureSession } from './support/engine-session.js';

const kit = (file: string): unknown => JSON.parse(readFileSync(new URL(`../docs/conformance/${file}`, import.meta.url), 'utf8'));
const codecs = kit('codecs.json') as { pqCodebook: { dim: number; subspaces: number; centroids: number; table: number[]; bytes: string }; cases: CodecCase[] };
const messages = kit('messages.json') as { pqCodebook: { dim: number; subspaces: number; centroids: number; table: number[] }; cases: MessageCase[] };
const packets = kit('packets.json') as { cases: PacketCase[] };
const codebook = codebookFromJson(codecs.pqCodebook);

/** What a receiver makes of a validated field, in the typed JSON of the recorded meaning. */
function meaningOf(received: unknown, recorded: Typed, raw: unknown): Typed {
  if (recorded !== null && typeof recorded === 'object' && !Array.isArray(recorded)) {
    if ('$u32' in recorded) return { $u32: [...unpackU32(received as Uint8Array)] };
    if ('$bin' in recorded) return { $bin: hex(received as Uint8Array) };
    if ('$classBlock' in recorded) {
      const r = recorded.$classBlock as unknown as ClassBlockMeaning;
      const block = received as ClassBlock;
      // The sender's side of the meaning (means, reference) is not on the wire; the rest is.
      return {
        $classBlock: {
          ...r,
          deflate: ((raw as Uint8Array)[0]! & 0x01) !== 0,
          rows: block.rows,
          classIds: block.classIds,
          counts: block.counts,
          decoded: decodeBlockVectors(block, r.codec, r.dim, codebook),
        } as unknown as Typed,
      };
    }
    const out: Record<string, Typed> = {};
    const rec = recorded as Record<string, Typed>;
    for (const key of Object.keys(received as object)) {
      out[key] = key in rec ? meaningOf((received as Record<string, unknown>)[key], rec[key]!, (raw as Record<string, unknown>)[key]) : (received as Record<string, Typed>)[key]!;
    }
    return out;
  }
  if (Array.isArray(recorded)) return (received as unknown[]).map((x, i) => meaningOf(x, recorded[i]!, (raw as unknown[])[i]));
  return received as Typed;
}

describe('the conformance kit: codecs', () => {
  it('covers every codec', () => {
    const covered = new Set(codecs.cases.map((c) => c.codec));
    for (const name of ['f64', 'f32', 'bf16', 'f16', 'int8', 'int8-b32', 'int4', 'int4-b32', 'int8-h16', 'int4-h16', 'binary', 'topk-16', 'topk-32', 'rp-8', 'rp-16', 'rp-32', 'pq-2x4']) {
      expect(covered.has(name), name).toBe(true);
    }
  });

  it('the pq codebook encodes to its recorded bytes and back', () => {
    expect(hex(encodePqCodebook(codebook))).toBe(codecs.pqCodebook.bytes);
    expect([...decodePqCodebook(unhex(codecs.pqCodebook.bytes)).table]).toEqual(codecs.pqCodebook.table);
  });

  for (const c of codecs.cases) {
    it(`${c.name}: encodes to exactly the recorded bytes and decodes to the recorded values`, () => {
      const codec = codecOf(c.codec, codebook);
      expect(codec.encodedLength(c.dim)).toBe(c.bytes.length / 2);
      expect(hex(codec.encode(Float64Array.from(c.input)))).toBe(c.bytes);
      expect([...codec.decode(unhex(c.bytes), c.dim)]).toEqual(c.decoded);
    });
  }
});

describe('the conformance kit: messages', () => {
  it('covers every message type in both directions', () => {
    const types = new Set(messages.cases.map((c) => c.type));
    for (const t of [...Object.keys(validateClientMessage), ...Object.keys(validateCoordinatorMessage)]) expect(types.has(t), t).toBe(true);
  });

  for (const c of messages.cases) {
    it(`${c.name}: encodes to exactly the recorded frame`, () => {
      const msgpack = encodeMessage(materialise(c.meaning, codebook) as object);
      expect(hex(msgpack)).toBe(c.msgpack);
      expect(c.eventByte).toBe(`0x${eventByte(c.type).toString(16)}`);
      // The protofed socket.io parser frames the event: its byte, then the message.
      const [frame] = new Encoder().encode({ type: 2, nsp: '/', data: [c.type, msgpack] } as never);
      expect(hex(frame!)).toBe(c.frame);
    });

    it(`${c.name}: the recorded frame decodes, through the production validation, to the recorded meaning`, () => {
      const events: { data: [string, Uint8Array] }[] = [];
      const decoder = new Decoder();
      decoder.on('decoded', (p: { data: [string, Uint8Array] }) => events.push(p));
      decoder.add(unhex(c.frame));
      expect(events).toHaveLength(1);
      const [type, body] = events[0]!.data;
      expect(type).toBe(c.type);
      const raw = decodeMessage(body);
      const validators = (c.direction === 'client-to-coordinator' ? validateClientMessage : validateCoordinatorMessage) as Record<string, (o: Record<string, unknown>) => unknown>;
      const message = validators[type]!(raw);
      const expected = c.meaning as Record<string, Typed>;
      expect(meaningOf(message, expected, raw)).toEqual(expected);
      // Keys in the recorded order: the order protofed writes.
      expect(Object.keys(raw)).toEqual(Object.keys(expected));
    });
  }
});

/** A packet's meaning with "$undefined" as a key that is present and undefined (as socket.io sends pid). */
function withUndefined(value: Typed): unknown {
  if (value === '$undefined') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(withUndefined);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = withUndefined(v);
  return out;
}

describe('the conformance kit: socket.io and engine.io packets', () => {
  for (const c of packets.cases.filter((p) => p.kind === 'socket.io packet')) {
    it(`${c.name}: the parser makes and reads the recorded frame`, () => {
      const meaning = withUndefined(c.meaning) as object;
      const [frame] = new Encoder().encode(meaning as never);
      expect(hex(frame!)).toBe(c.frame);
      const got: unknown[] = [];
      const decoder = new Decoder();
      decoder.on('decoded', (p: unknown) => got.push(p));
      decoder.add(unhex(c.frame));
      expect(got).toEqual([meaning]);
    });
  }

  it('a live coordinator speaks the recorded engine.io and socket.io frames', async () => {
    const frames = await captureSession({ pingIntervalMs: 200 });
    const open = frames[0]!;
    expect(open).toMatchObject({ direction: 'down', kind: 'text' });
    expect(open.data[0]).toBe('0');
    const handshake = JSON.parse(open.data.slice(1)) as { sid: string; upgrades: string[]; pingTimeout: number; maxPayload: number };
    expect(Object.keys(handshake)).toEqual(['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
    expect(handshake.upgrades).toEqual([]);
    // The connect reply is the recorded one with this connection's sid, and no extension type.
    const reply = packets.cases.find((p) => p.name === 'socket.io connect reply')!;
    // The socket.io sid (20 characters, str8 of 20: b4) is random and not the engine.io one.
    const anySid = (frame: string): string => frame.replace(/a3736964b4[0-9a-f]{40}/, 'a3736964b4<sid>');
    expect(frames[2]).toMatchObject({ direction: 'down', kind: 'binary' });
    expect(anySid(frames[2]!.data)).toBe(anySid(reply.frame));
    // The welcome is a protocol event (0xE3) whose message validates.
    expect(frames[4]).toMatchObject({ direction: 'down', kind: 'binary' });
    expect(frames[4]!.data.slice(0, 2)).toBe('e3');
    expect(validateCoordinatorMessage.welcome(decodeMessage(unhex(frames[4]!.data.slice(2))))).toMatchObject({ clientId: 'c0', lastAppliedSeq: 0 });
    // Then an engine.io ping, a text frame "2", answered by "3".
    expect(frames.slice(-2)).toEqual([{ direction: 'down', kind: 'text', data: '2' }, { direction: 'up', kind: 'text', data: '3' }]);
  });
});
