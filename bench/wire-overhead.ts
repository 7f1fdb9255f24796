import { io } from 'socket.io-client';
import { CoordinatorServer } from '../coordinator/transport/coordinator-server.js';
import { FederationState } from '../coordinator/federation/federation-state.js';
import { ClientKeys } from '../shared/protocol/client-keys.js';
import { UpdateIntake } from '../coordinator/federation/update-intake.js';
import { encodeClassBlock } from '../shared/protocol/class-block.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { framingBytes, protofedParser } from '../shared/protocol/socket-parser.js';
import { encodeMessage } from '../shared/protocol/wire-format.js';

export interface WireOverhead {
  classes: number;
  updates: number;
  /** Codec payload bytes of all updates (the encoded vectors). */
  payloadBytes: number;
  /** Whole msgpack messages. */
  encodedBytes: number;
  /** Bytes the coordinator's TCP socket read for them. */
  wireBytes: number;
  /** What the framing model (shared/protocol/socket-parser.ts framingBytes) predicts for them. */
  estimatedWireBytes: number;
  /** wireBytes / payloadBytes. */
  ratio: number;
}

const BENCH_KEY = 'bench-key-0123456789';

/**
 * Sends `updates` updates of `classes` 64-d int8 classes from a real socket.io client to a
 * coordinator on loopback, and reads the bytes off the coordinator's TCP socket. One-off costs
 * (the HTTP upgrade, connect and hello) are taken out by measuring from after the welcome.
 */
export async function measureWireOverhead(classes: number, updates = 20, codecName = 'int8'): Promise<WireOverhead> {
  const dim = 64;
  const codec = getCodec(codecName);
  const state = new FederationState(dim);
  const server = new CoordinatorServer({
    host: '127.0.0.1', port: 0, keys: ClientKeys.from([['c0', BENCH_KEY]]), dim, modelHash: 'm', uplinkCodec: codecName, downlinkCodec: codecName,
    lastAppliedSeq: (id) => state.lastAppliedSeq(id), runId: 'bench', tableVersion: () => state.version,
  });
  const intake = new UpdateIntake(state, { codec });
  server.on('update', (session, update) => intake.take(session.clientId!, update, session));
  const { port } = await server.listen();
  const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, parser: protofedParser });
  try {
    await new Promise<void>((resolve) => {
      socket.once('welcome', () => resolve());
      socket.on('connect', () => socket.emit('hello', encodeMessage({ v: PROTOCOL_VERSION, clientId: 'c0', token: BENCH_KEY, codecs: [codecName], dim, modelHash: 'm', tableVersion: 0, codebook: '' })));
    });
    const wire = (): number => server.wireBytes('c0')!.up;
    const before = wire();
    let payloadBytes = 0;
    let encodedBytes = 0;
    let estimatedWireBytes = 0;
    const ids = Array.from({ length: classes }, (_, i) => i * 7);
    for (let seq = 1; seq <= updates; seq++) {
      const acked = new Promise<void>((resolve) => socket.once('ack', () => resolve()));
      const stride = codec.encodedLength(dim);
      const vectors = new Uint8Array(classes * stride);
      for (let i = 0; i < classes; i++) vectors.set(codec.encode(Float64Array.from({ length: dim }, (_, j) => Math.sin(i * dim + j + seq))), i * stride);
      const frame = encodeMessage({ v: PROTOCOL_VERSION, seq, base: seq - 1, mission: seq - 1, classes: encodeClassBlock(ids, ids.map(() => 5), vectors) });
      payloadBytes += vectors.byteLength;
      encodedBytes += frame.byteLength;
      estimatedWireBytes += frame.byteLength + framingBytes(frame.byteLength, 'up');
      socket.emit('update', frame);
      await acked;
    }
    const wireBytes = wire() - before;
    return { classes, updates, payloadBytes, encodedBytes, wireBytes, estimatedWireBytes, ratio: Number((wireBytes / payloadBytes).toFixed(4)) };
  } finally {
    socket.disconnect();
    await server.close();
  }
}
