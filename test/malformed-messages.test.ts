import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { CoordinatorServer } from '../coordinator/coordinator-server.js';
import { FederationState } from '../coordinator/federation-state.js';
import { UpdateIntake } from '../coordinator/update-intake.js';
import { getCodec } from '../shared/codecs/index.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { decodeMessage, encodeMessage } from '../shared/wire-format.js';

const DIM = 4;
const f32 = getCodec('f32');

let server: CoordinatorServer;
let state: FederationState;
let url: string;

beforeAll(async () => {
  state = new FederationState(DIM);
  server = new CoordinatorServer({
    host: '127.0.0.1', port: 0, token: 'secret', dim: DIM, modelHash: 'model-a',
    uplinkCodec: 'f32', downlinkCodec: 'f32', lastAppliedSeq: (id) => state.lastAppliedSeq(id),
  });
  new UpdateIntake(server, state, f32);
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
  return encodeMessage({ v: PROTOCOL_VERSION, clientId: 'c0', token: 'secret', codecs: ['f32'], dim: DIM, modelHash: 'model-a', tableVersion: 0, ...overrides });
}

async function connect(helloFrame: Uint8Array = hello()): Promise<{ socket: Socket; first: Promise<[string, Record<string, unknown>]> }> {
  const socket = io(url, { transports: ['websocket'], reconnection: false });
  const first = Promise.race([
    next(socket, 'welcome').then((m) => ['welcome', m] as [string, Record<string, unknown>]),
    next(socket, 'refused').then((m) => ['refused', m] as [string, Record<string, unknown>]),
  ]);
  socket.on('connect', () => socket.emit('hello', helloFrame));
  return { socket, first };
}

function update(overrides: Record<string, unknown> = {}, vector: Uint8Array = f32.encode([1, 2, 3, 4]), count = 5): Record<string, unknown> {
  return { v: PROTOCOL_VERSION, clientId: 'c0', seq: 1, baseVersion: 0, mission: 0, codec: 'f32', classes: [{ classId: 3, count, vector }], ...overrides };
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
    const cases: [string, unknown, RegExp][] = [
      ['bad msgpack', Uint8Array.from([0xc1, 0x00, 0xff]), /bad msgpack/],
      ['truncated msgpack', encodeMessage(update()).subarray(0, 20), /bad msgpack/],
      ['not binary', 'hello there', /expected one binary msgpack frame/],
      ['a msgpack array', encodeMessage([1, 2, 3]), /expected a msgpack map/],
      ['unknown version', encodeMessage(update({ v: 99 })), /unsupported protocol version 99/],
      ['missing version', encodeMessage({ ...update(), v: undefined }), /unsupported protocol version/],
      ['wrong dim', encodeMessage(update({}, f32.encode([1, 2, 3]))), /vector of 12 bytes, expected 16/],
      ['NaN in a vector', encodeMessage(update({}, nanVector)), /not finite|NaN/i],
      ['count 0', encodeMessage(update({}, undefined, 0)), /classes\[0\]\.count/],
      ['negative count', encodeMessage(update({}, undefined, -3)), /classes\[0\]\.count/],
      ['fractional count', encodeMessage(update({}, undefined, 2.5)), /classes\[0\]\.count/],
      ['seq 0', encodeMessage(update({ seq: 0 })), /field "seq"/],
      ['another client id', encodeMessage(update({ clientId: 'c9' })), /names client "c9"/],
      ['wrong codec', encodeMessage(update({ codec: 'int8' })), /negotiated uplink codec is "f32"/],
      ['vector as a list of numbers', encodeMessage(update({ classes: [{ classId: 1, count: 1, vector: [1, 2, 3, 4] }] })), /classes\[0\]\.vector.*binary/],
    ];
    const before = snapshot();
    for (const [what, frame, reason] of cases) {
      const reply = next(socket, 'error');
      socket.emit('update', frame);
      const error = await reply;
      expect(error.reason, what).toMatch(reason);
      expect(error.v).toBe(PROTOCOL_VERSION);
      expect(snapshot(), what).toBe(before);
    }
    // An unknown event is answered too.
    const reply = next(socket, 'error');
    socket.emit('delete-everything', encodeMessage({ v: 1 }));
    expect((await reply).reason).toMatch(/unknown message type "delete-everything"/);

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

  it('refuses a hello with a wrong token, dim, model hash, codec or version, with the reason', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ token: 'guess', clientId: 'x1' }, /wrong token/],
      [{ dim: 5, clientId: 'x2' }, /embedding dim 5 does not match the coordinator's 4/],
      [{ modelHash: 'model-b', clientId: 'x3' }, /model hash "model-b" does not match/],
      [{ codecs: ['int8'], clientId: 'x4' }, /needs codecs f32/],
      [{ v: 2, clientId: 'x5' }, /unsupported protocol version 2/],
      [{ clientId: 'bad id!' }, /field "clientId"/],
    ];
    for (const [overrides, reason] of cases) {
      const { socket, first } = await connect(hello(overrides));
      const [kind, message] = await first;
      expect(kind).toBe('refused');
      expect(message.reason).toMatch(reason);
      socket.disconnect();
    }
  });

  it('answers an update sent before hello with an error', async () => {
    const socket = io(url, { transports: ['websocket'], reconnection: false });
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
    const reply = next(socket, 'error');
    socket.emit('update', encodeMessage(update()));
    expect((await reply).reason).toMatch(/"update" before hello/);
    socket.disconnect();
  });
});

describe('byte accounting', () => {
  it('the coordinator counts exactly the bytes of the frames that cross the socket, both ways', async () => {
    const socket = io(url, { transports: ['websocket'], reconnection: false });
    let received = 0;
    let receivedPayload = 0;
    socket.onAny((_event: string, frame: Uint8Array) => {
      received += frame.byteLength;
      const classes = (decodeMessage(frame).classes ?? []) as { vector: Uint8Array }[];
      for (const c of classes) receivedPayload += c.vector.byteLength;
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
      const classes = Array.from({ length: seq }, (_, i) => ({ classId: i, count: 2, vector: f32.encode([i, 1, 2, 3]) }));
      emit('update', encodeMessage(update({ clientId: 'meter', seq, classes })));
      await ack;
    }
    const err = next(socket, 'error');
    emit('update', encodeMessage(update({ clientId: 'meter', seq: 4, v: 7 })));
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
