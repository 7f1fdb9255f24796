import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { CoordinatorServer, NOT_AUTHENTICATED } from '../coordinator/transport/coordinator-server.js';
import { FederationState } from '../coordinator/federation/federation-state.js';
import { UpdateIntake } from '../coordinator/federation/update-intake.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { classBlockPayloadBytes, encodeClassBlock } from '../shared/protocol/class-block.js';
import { ClientKeys } from '../shared/protocol/client-keys.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { protofedParser } from '../shared/protocol/socket-parser.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';

const DIM = 4;
const KEYS = ClientKeys.generate(['c0', 'c1', 'meter', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'gone', 'twice']);
const f32 = getCodec('f32');

let server: CoordinatorServer;
let state: FederationState;
let url: string;

beforeAll(async () => {
  state = new FederationState(DIM);
  server = new CoordinatorServer({
    host: '127.0.0.1', port: 0, keys: KEYS, dim: DIM, modelHash: 'model-a',
    uplinkCodec: 'f32', downlinkCodec: 'f32', lastAppliedSeq: (id) => state.lastAppliedSeq(id),
    runId: 'run-a', tableVersion: () => state.version, hasLeft: (id) => id === 'gone',
  });
  const intake = new UpdateIntake(state, { codec: f32 });
  server.on('update', (session, update) => intake.take(session.clientId!, update, session));
  const { port } = await server.listen();
  url = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server.close();
});

function next(socket: Socket, event: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => socket.once(event, (frame: Uint8Array) => resolve(decodeMessage(frame))));
}

function hello(overrides: Record<string, unknown> = {}): Uint8Array {
  const clientId = String(overrides.clientId ?? 'c0');
  return encodeMessage({ v: PROTOCOL_VERSION, clientId, token: KEYS.has(clientId) ? KEYS.secretOf(clientId) : 'no-key-for-this-id', codecs: ['f32'], dim: DIM, modelHash: 'model-a', tableVersion: 0, codebook: '', ...overrides });
}

async function connect(helloFrame: Uint8Array = hello()): Promise<{ socket: Socket; first: Promise<[string, Record<string, unknown>]> }> {
  const socket = connectSocket();
  const first = Promise.race([
    next(socket, 'welcome').then((m) => ['welcome', m] as [string, Record<string, unknown>]),
    next(socket, 'refused').then((m) => ['refused', m] as [string, Record<string, unknown>]),
  ]);
  socket.on('connect', () => socket.emit('hello', helloFrame));
  return { socket, first };
}

/** A class block written by hand, with no checks, so that tests can break every rule. */
function rawBlock(ids: number[], counts: number[], vectors: Uint8Array, flags = 0): Uint8Array {
  const bytes: number[] = [flags];
  const varint = (v: number): void => {
    while (v >= 0x80) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
  };
  varint(ids.length);
  ids.forEach((id, i) => varint(i === 0 ? id : id - ids[i - 1]!));
  counts.forEach(varint);
  return Uint8Array.from([...bytes, ...vectors]);
}

function update(overrides: Record<string, unknown> = {}, vector: Uint8Array = f32.encode([1, 2, 3, 4]), count = 5): Record<string, unknown> {
  return { v: PROTOCOL_VERSION, seq: 1, base: 0, mission: 0, classes: rawBlock([3], [count], vector), ...overrides };
}

function connectSocket(): Socket {
  return io(url, { transports: ['websocket'], reconnection: false, parser: protofedParser });
}

function snapshot(): string {
  return JSON.stringify({ v: state.version, t: state.global.classIds().map((id) => [id, state.global.get(id)!.count, Array.from(state.global.get(id)!.sum)]) });
}

describe('the coordinator under malformed messages', () => {
  it('answers each bad update with an error, keeps running and leaves the table unchanged', async () => {
    const { socket, first } = await connect();
    expect((await first)[0]).toBe('welcome');

    const nanVector = f32.encode([1, 2, 3, 4]);
    new DataView(nanVector.buffer, nanVector.byteOffset).setFloat32(4, NaN, true);
    const cases: [string, unknown, string, RegExp][] = [
      ['bad msgpack', Uint8Array.from([0xc1, 0x00, 0xff]), 'malformed', /bad msgpack/],
      ['truncated msgpack', encodeMessage(update()).subarray(0, 20), 'malformed', /bad msgpack/],
      ['the never-used msgpack byte 0xC1 alone', Uint8Array.from([0xc1]), 'malformed', /expected a msgpack map/],
      ['a msgpack array', encodeMessage([1, 2, 3]), 'malformed', /expected a msgpack map/],
      ['unknown version', encodeMessage(update({ v: 99 })), 'version', /unsupported protocol version 99/],
      ['missing version', encodeMessage({ ...update(), v: undefined }), 'version', /unsupported protocol version/],
      ['wrong dim', encodeMessage(update({}, f32.encode([1, 2, 3]))), 'invalid', /12 bytes of vectors for 1 classes, expected 16 each/],
      ['NaN in a vector', encodeMessage(update({}, nanVector)), 'invalid', /not finite|NaN/i],
      ['count 0', encodeMessage(update({}, undefined, 0)), 'invalid', /class 3: count 0 is outside/],
      ['count above the limit', encodeMessage(update({}, undefined, 2 ** 50)), 'invalid', /count \d+ is outside/],
      ['seq 0', encodeMessage(update({ seq: 0 })), 'invalid', /field "seq"/],
      ['class ids not ascending', encodeMessage(update({ classes: rawBlock([3, 3], [1, 1], new Uint8Array(32)) })), 'invalid', /ascend strictly/],
      ['a truncated class block', encodeMessage(update({ classes: Uint8Array.from([0, 2, 1, 0x85]) })), 'invalid', /ends inside/],
      ['more classes than bytes', encodeMessage(update({ classes: Uint8Array.from([0, 5, 1]) })), 'invalid', /5 classes cannot fit in 3 bytes/],
      ['unknown block flags', encodeMessage(update({ classes: rawBlock([3], [1], f32.encode([1, 2, 3, 4]), 0x80) })), 'invalid', /unknown class block flags/],
      ['too many classes', encodeMessage(update({ classes: Uint8Array.from([0, 0xc0, 0x9a, 0x0c]) })), 'limit', /200000 classes exceed the limit of 100000/],
      ['an empty class block', encodeMessage(update({ classes: Uint8Array.from([0]) })), 'invalid', /class block needs at least 2 bytes/],
      ['a deflate bomb (64 MiB and more of zeros)', encodeMessage(update({ classes: rawBlock([3], [1], deflateRawSync(new Uint8Array(65 * 1024 * 1024)), 1) })), 'limit', /inflate to more than the limit of \d+ bytes/],
      ['a deflated block that does not inflate', encodeMessage(update({ classes: rawBlock([3], [1], Uint8Array.from([1, 2, 3]), 1) })), 'invalid', /do not inflate/],
      ['classes as a list of maps', encodeMessage(update({ classes: [{ classId: 1, count: 1, vector: f32.encode([1, 2, 3, 4]) }] })), 'invalid', /field "classes": expected binary/],
    ];
    const before = snapshot();
    for (const [what, frame, code, reason] of cases) {
      const reply = next(socket, 'error');
      socket.emit('update', frame);
      const error = await reply;
      expect(error.code, what).toBe(code);
      expect(error.reason, what).toMatch(reason);
      expect(error.v).toBe(PROTOCOL_VERSION);
      expect(snapshot(), what).toBe(before);
    }
    // Frames that are packets but not protocol messages are answered too, and the connection stays.
    const raw = (socket as unknown as { io: { engine: { write(data: Uint8Array): void } } }).io.engine;
    const answers: [string, () => void, string, RegExp][] = [
      ['an unknown event name', () => socket.emit('delete-everything', encodeMessage({ v: 1 })), 'unexpected', /unknown message type "delete-everything"/],
      ['an event byte of no protocol event', () => raw.write(Uint8Array.from([0xed, 0x80])), 'unexpected', /unknown event byte 0xed/],
      ['a protocol event in the generic 0x00 form', () => socket.emit('update', 'hello there'), 'malformed', /"update" sent as a generic 0x00 packet/],
    ];
    for (const [what, send, code, reason] of answers) {
      const reply = next(socket, 'error');
      send();
      const error = await reply;
      expect(error.code, what).toBe(code);
      expect(error.reason, what).toMatch(reason);
    }

    // Still up: a valid update is applied and acked, and its resend is acked as a duplicate.
    const ack = next(socket, 'ack');
    socket.emit('update', encodeMessage(update()));
    expect(await ack).toMatchObject({ seq: 1, duplicate: false, version: 1 });
    expect(state.global.get(3)!.count).toBe(5);
    const again = next(socket, 'ack');
    socket.emit('update', encodeMessage(update()));
    expect(await again).toMatchObject({ seq: 1, duplicate: true, version: 1 });
    expect(state.global.get(3)!.count).toBe(5);
    socket.disconnect();
  });

  it('refuses a peer that does not prove its id with that id\'s own key, and tells it nothing about the run', async () => {
    const cases: Record<string, unknown>[] = [
      { token: 'guess-guess-guess-guess', clientId: 'x1' },
      // Another client's key does not make this one that client.
      { token: KEYS.secretOf('c1'), clientId: 'c0' },
      { clientId: 'stranger' },
      // Even a peer whose hello is wrong in other ways learns only that it is not authenticated.
      { token: 'guess-guess-guess-guess', clientId: 'x2', dim: 5, modelHash: 'model-b', runId: 'run-b' },
    ];
    for (const overrides of cases) {
      const { socket, first } = await connect(hello(overrides));
      const [kind, message] = await first;
      expect(kind).toBe('refused');
      expect(message.reason).toBe(NOT_AUTHENTICATED);
      socket.disconnect();
    }
  });

  it('refuses an authenticated hello with a wrong dim, model hash, codec or version, with the reason', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ dim: 5, clientId: 'x2' }, /embedding dim 5 does not match the coordinator's 4/],
      [{ modelHash: 'model-b', clientId: 'x3' }, /model hash "model-b" does not match/],
      [{ codecs: ['int8'], clientId: 'x4' }, /needs codecs f32/],
      [{ v: 1, clientId: 'x5' }, /unsupported protocol version 1/],
      [{ clientId: 'bad id!' }, /field "clientId"/],
      [{ runId: 'run-b', clientId: 'x6' }, /belongs to run run-b, but this coordinator runs run-a .*--resume/],
      [{ tableVersion: 99, clientId: 'x7' }, /holds table version 99, but this coordinator's table is at version \d+/],
      [{ clientId: 'gone' }, /client "gone" left the run: everything it contributed was unlearned, and it cannot rejoin/],
    ];
    // An id that is connected already cannot connect a second time.
    const { socket: first, first: welcomed } = await connect(hello({ clientId: 'twice' }));
    expect((await welcomed)[0]).toBe('welcome');
    cases.push([{ clientId: 'twice' }, /client id "twice" is already connected/]);
    for (const [overrides, reason] of cases) {
      const { socket, first } = await connect(hello(overrides));
      const [kind, message] = await first;
      expect(kind).toBe('refused');
      expect(message.reason).toMatch(reason);
      socket.disconnect();
    }
    first.disconnect();
  });

  it('refuses and disconnects a connection whose first message is not its hello', async () => {
    const before = snapshot();
    const socket = connectSocket();
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
    const reply = next(socket, 'refused');
    const gone = new Promise<void>((resolve) => socket.on('disconnect', () => resolve()));
    socket.emit('update', encodeMessage(update()));
    expect((await reply).reason).toBe('the first message must be hello');
    await gone;
    expect(snapshot()).toBe(before);
  });
});

describe('byte accounting', () => {
  it('the coordinator counts exactly the bytes of the frames that cross the socket, both ways', async () => {
    const socket = connectSocket();
    let received = 0;
    let receivedPayload = 0;
    socket.onAny((_event: string, frame: Uint8Array) => {
      received += frame.byteLength;
      const classes = decodeMessage(frame).classes;
      if (classes instanceof Uint8Array) receivedPayload += classBlockPayloadBytes(classes);
    });
    let sent = 0;
    const emit = (event: string, frame: Uint8Array): void => {
      sent += frame.byteLength;
      socket.emit(event, frame);
    };
    const welcome = next(socket, 'welcome');
    socket.on('connect', () => emit('hello', hello({ clientId: 'meter' })));
    await welcome;
    for (let seq = 1; seq <= 3; seq++) {
      const ack = next(socket, 'ack');
      const ids = Array.from({ length: seq }, (_, i) => i);
      const vectors = new Uint8Array(ids.flatMap((i) => [...f32.encode([i, 1, 2, 3])]));
      emit('update', encodeMessage(update({ seq, classes: encodeClassBlock(ids, ids.map(() => 2), vectors) })));
      await ack;
    }
    const err = next(socket, 'error');
    emit('update', encodeMessage(update({ seq: 4, v: 7 })));
    await err;
    const meter = server.meter('meter');
    expect(meter.totals('up').encodedBytes).toBe(sent);
    expect(meter.totals('down').encodedBytes).toBe(received);
    expect(meter.totals('down').payloadBytes).toBe(receivedPayload);
    expect(meter.byType().up.update!.payloadBytes).toBe((1 + 2 + 3) * f32.encodedLength(DIM));
    expect(meter.byType().up.update!.messages).toBe(4);
    expect(meter.byType().down.ack!.messages).toBe(3);
    socket.disconnect();
  });
});
