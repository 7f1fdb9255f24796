import WebSocket from 'ws';
import { CoordinatorServer } from '../../coordinator/transport/coordinator-server.js';
import { ClientKeys } from '../../shared/protocol/client-keys.js';
import { PROTOCOL_VERSION } from '../../shared/protocol/messages.js';
import { encodeMessage } from '../../shared/protocol/wire-format.js';

/** One WebSocket frame of a captured session, as it crossed the wire. */
export interface CapturedFrame {
  /** `up`: client to coordinator; `down`: coordinator to client. */
  direction: 'up' | 'down';
  /** A text frame (engine.io control packets) or a binary one (socket.io packets, protofed's parser). */
  kind: 'text' | 'binary';
  /** The text, or the bytes in hex. */
  data: string;
}

/**
 * Opens a raw WebSocket (no socket.io client) to a real CoordinatorServer and records every frame
 * of the beginning of a session: the engine.io open packet, the socket.io connect and its reply,
 * a hello and the welcome, one engine.io ping and the pong. What a second implementation sees on
 * the wire, byte for byte (the sid, the instance and the pid are random per connection).
 *
 * @example
 * const frames = await captureSession();
 */
export async function captureSession(options: { pingIntervalMs?: number } = {}): Promise<CapturedFrame[]> {
  const keys = ClientKeys.from([['c0', 'conformance-kit-key-c0-000000000000']]);
  const server = new CoordinatorServer({
    host: '127.0.0.1', port: 0, keys, dim: 4, modelHash: 'pixels/v1/2x2x1/scale-1-255', uplinkCodec: 'int8', downlinkCodec: 'int8',
    lastAppliedSeq: () => 0, runId: 'run-conformance', tableVersion: () => 0,
  });
  const { port } = await server.listen();
  // The engine.io ping interval is a server option; shorten it on the live engine so a ping comes soon.
  const engine = (server as unknown as { io: { engine: { opts: { pingInterval: number } } } }).io.engine;
  engine.opts.pingInterval = options.pingIntervalMs ?? 300;
  const frames: CapturedFrame[] = [];
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  const record = (direction: 'up' | 'down', data: WebSocket.RawData | string, isBinary: boolean): void => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    frames.push({ direction, kind: isBinary ? 'binary' : 'text', data: isBinary ? bytes.toString('hex') : bytes.toString('utf8') });
  };
  const send = (data: string | Uint8Array): void => {
    record('up', typeof data === 'string' ? data : Buffer.from(data), typeof data !== 'string');
    ws.send(data, { binary: typeof data !== 'string' });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the capture timed out')), 5000);
      let step = 0;
      ws.on('error', reject);
      ws.on('message', (data, isBinary) => {
        record('down', data, isBinary);
        const text = isBinary ? '' : data.toString();
        if (step === 0 && text.startsWith('0')) {
          step = 1;
          // socket.io CONNECT to the default namespace, in protofed's parser: 0x00 + msgpack {type: 0, nsp: "/"}.
          send(Uint8Array.from([0x00, 0x82, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x00, 0xa3, 0x6e, 0x73, 0x70, 0xa1, 0x2f]));
        } else if (step === 1 && isBinary) {
          step = 2;
          const hello = encodeMessage({
            v: PROTOCOL_VERSION, clientId: 'c0', token: 'conformance-kit-key-c0-000000000000', codecs: ['int8'], dim: 4,
            modelHash: 'pixels/v1/2x2x1/scale-1-255', tableVersion: 0, codebook: '', runId: '',
          });
          send(Uint8Array.from([0xe0, ...hello]));
        } else if (step === 2 && isBinary) {
          step = 3;
        } else if (step === 3 && text === '2') {
          send('3');
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    ws.close();
    await server.close();
  }
  return frames;
}
