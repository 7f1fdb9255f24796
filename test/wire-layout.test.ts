import { describe, expect, it } from 'vitest';
import { measureWireOverhead } from '../bench/wire-overhead.js';
import { ClassBlockError, classBlockPayloadBytes, decodeClassBlock, encodeClassBlock } from '../shared/protocol/class-block.js';
import { CODEC_NAMES, getCodec } from '../shared/protocol/codecs/index.js';
import { decodeInto } from '../shared/protocol/codecs/decode-into.js';
import { PROTOCOL_LIMITS } from '../shared/protocol/messages.js';
import { SeededRng } from '../shared/learning/rng.js';
import { Decoder, Encoder, SocketFrameError } from '../shared/protocol/socket-parser.js';

const LIMITS = { maxClasses: 1000, maxClassId: PROTOCOL_LIMITS.maxClassId, maxCount: PROTOCOL_LIMITS.maxCount, maxVectorBytes: 1 << 20 };

describe('the class block', () => {
  it('round-trips ids, counts (up to 2^48) and vectors, raw and deflated', () => {
    const rng = new SeededRng(3);
    for (let trial = 0; trial < 50; trial++) {
      const n = rng.int(40);
      const ids = rng.sample(PROTOCOL_LIMITS.maxClassId, n).sort((a, b) => a - b);
      const counts = ids.map(() => (rng.next() < 0.1 ? PROTOCOL_LIMITS.maxCount : 1 + rng.int(1000)));
      const vectors = Uint8Array.from({ length: n * 9 }, () => rng.int(4));
      for (const deflate of [false, true]) {
        const bytes = encodeClassBlock(ids, counts, vectors, { deflate });
        const block = decodeClassBlock(bytes, LIMITS);
        expect(block.classIds).toEqual(ids);
        expect(block.counts).toEqual(counts);
        expect([...block.vectors]).toEqual([...vectors]);
        expect(block.payloadBytes).toBe(classBlockPayloadBytes(bytes));
        if (!deflate) expect(block.payloadBytes).toBe(vectors.byteLength);
      }
    }
  });

  it('costs a few bytes per class beside the vectors', () => {
    const ids = Array.from({ length: 10 }, (_, i) => 100 + i * 37);
    const bytes = encodeClassBlock(ids, ids.map(() => 5), new Uint8Array(720));
    expect(bytes.byteLength - 720).toBeLessThanOrEqual(1 + 1 + 11 + 10);
  });

  it('deflate shrinks redundant vectors and refuses to inflate past the limit', () => {
    const vectors = new Uint8Array(64 * 1024);
    const bytes = encodeClassBlock([1], [1], vectors, { deflate: true });
    expect(bytes.byteLength).toBeLessThan(1024);
    expect(() => decodeClassBlock(bytes, { ...LIMITS, maxVectorBytes: 1000 })).toThrow(ClassBlockError);
  });

  it('a block of rows (share-embeddings) may repeat ids; a block of classes may not', () => {
    const rows = encodeClassBlock([2, 2, 5], [1, 1, 1], new Uint8Array(3), { rows: true });
    expect(decodeClassBlock(rows, LIMITS)).toMatchObject({ classIds: [2, 2, 5], rows: true });
    const forged = Uint8Array.from(rows);
    forged[0] = 0;
    expect(() => decodeClassBlock(forged, LIMITS)).toThrow(/ascend strictly/);
  });

  it('the sender refuses what the receiver would refuse', () => {
    expect(() => encodeClassBlock([3, 3], [1, 1], new Uint8Array(0))).toThrow(/ascend strictly/);
    expect(() => encodeClassBlock([3], [0], new Uint8Array(0))).toThrow(/positive integer/);
    expect(() => encodeClassBlock([3], [1, 2], new Uint8Array(0))).toThrow(/1 class ids but 2 counts/);
  });
});

describe('decoding into place', () => {
  it('gives decode() for every codec, at any byte offset, and refuses bytes that run short', () => {
    const rng = new SeededRng(8);
    for (const name of CODEC_NAMES) {
      const codec = getCodec(name);
      for (const dim of [33, 64]) {
        const v = Float64Array.from({ length: dim }, () => rng.next() * 6 - 3);
        const bytes = codec.encode(v);
        const padded = new Uint8Array(bytes.byteLength + 5);
        padded.set(bytes, 3);
        const out = new Float64Array(dim + 2).fill(7);
        decodeInto(codec, padded, 3, dim, out, 1);
        expect([...out.subarray(1, dim + 1)], `${name} ${dim}`).toEqual([...codec.decode(bytes, dim)]);
        expect([out[0], out[dim + 1]]).toEqual([7, 7]);
        expect(() => decodeInto(codec, padded, 6, dim, out, 0), name).toThrow();
      }
    }
  });
});

describe('the protofed socket.io parser', () => {
  function roundTrip(packet: object): unknown {
    const [frame] = new Encoder().encode(packet as never);
    const decoder = new Decoder();
    let out: unknown;
    decoder.on('decoded', (p) => (out = p));
    decoder.add(frame);
    return out;
  }

  it('puts a protocol event in one binary frame with one byte of framing', () => {
    const message = Uint8Array.from([1, 2, 3]);
    const [frame, ...rest] = new Encoder().encode({ type: 2, nsp: '/', data: ['update', message] });
    expect(rest).toEqual([]);
    expect(frame!.byteLength).toBe(message.byteLength + 1);
    const decoded = roundTrip({ type: 2, nsp: '/', data: ['update', message] }) as { data: [string, Uint8Array] };
    expect(decoded.data[0]).toBe('update');
    expect([...decoded.data[1]]).toEqual([1, 2, 3]);
  });

  it('carries every other packet (connect, errors, unknown events, acks) generically', () => {
    for (const packet of [
      { type: 0, nsp: '/', data: { sid: 'abc' } },
      { type: 1, nsp: '/' },
      { type: 4, nsp: '/', data: { message: 'nope' } },
      { type: 2, nsp: '/', data: ['delete-everything', 'text'] },
      { type: 2, nsp: '/admin', data: ['update', Uint8Array.from([9])], id: 4 },
    ]) {
      expect(roundTrip(packet)).toEqual(packet);
    }
  });

  it('rejects frames that are not its packets, with a reason', () => {
    const add = (chunk: unknown) => () => new Decoder().add(chunk);
    expect(add('42["hello"]')).toThrow(/text frame/);
    expect(add(new Uint8Array(0))).toThrow(/empty frame/);
    expect(add(Uint8Array.from([0x7f, 1]))).toThrow(/unknown frame kind 0x7f/);
    expect(add(Uint8Array.from([0, 0xc1]))).toThrow(SocketFrameError);
    expect(add(Uint8Array.from([0, 0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x09]))).toThrow(/not a socket.io packet/);
  });
});

describe('bytes on the wire', () => {
  it('the framing model predicts the socket bytes exactly, and 10 int8 classes cost at most 10% over their payload', async () => {
    for (const classes of [1, 10, 100]) {
      const w = await measureWireOverhead(classes, 5);
      expect(w.estimatedWireBytes, `${classes} classes`).toBe(w.wireBytes);
      if (classes === 10) expect(w.ratio).toBeLessThanOrEqual(1.1);
    }
  });
});
