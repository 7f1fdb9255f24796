/**
 * Regenerates the conformance kit (docs/conformance/*.json) with protofed's own encoders:
 *
 *   npx tsx docs/conformance/generate.ts
 *
 * Every input below is fixed; the bytes are whatever protofed's codecs, class block encoder,
 * msgpack encoder and socket.io parser make of it. test/conformance-kit.test.ts checks the
 * committed files against the encoders and decoders, so a change in any encoder's output fails
 * that test until the kit is regenerated (and the change is then a protocol change: say so in
 * docs/PROTOCOL.md).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeClassBlock } from '../../shared/protocol/class-block.js';
import { codebookHash } from '../../shared/protocol/codecs/codec-spec.js';
import { CODEC_NAMES, encodePqCodebook, type PqCodebook } from '../../shared/protocol/codecs/index.js';
import { PROTOCOL_VERSION } from '../../shared/protocol/messages.js';
import { Encoder } from '../../shared/protocol/socket-parser.js';
import { encodeMessage } from '../../shared/protocol/wire-format.js';
import { captureSession } from '../../test/support/engine-session.js';
import {
  codecOf, decodeBlockVectors, eventByte, hex, materialise,
  type ClassBlockMeaning, type CodecCase, type MessageCase, type PacketCase, type Typed,
} from '../../test/support/conformance-kit.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The kit's pq codebook: 4-d, 2 subspaces of 2 elements, 4 centroids each (all exact in float32). */
const CODEBOOK_JSON = {
  dim: 4, subspaces: 2, centroids: 4,
  table: [0, 0, 1, 0, 0, 1, 1, 1, /* subspace 1: */ -1, -1, 2, 2, 0.5, -0.5, -2, 3],
};
const CODEBOOK: PqCodebook = { ...CODEBOOK_JSON, table: Float32Array.from(CODEBOOK_JSON.table) };

// ---------------------------------------------------------------- codecs

const BASIC5 = [0.5, -1.25, 3.1, 0.017, -2.6];
const WIDE40 = Array.from({ length: 40 }, (_, i) => Math.round((Math.sin(i * 1.7) * (i < 32 ? 2 : 50) + i / 10) * 1000) / 1000);
const codecInputs: Record<string, { name: string; input: number[]; note?: string }[]> = {
  f64: [{ name: 'basic', input: [0.1, -1 / 3, 1e-300, 12345.678, 2 ** 53 + 2] }],
  f32: [{ name: 'round to nearest even', input: [0.1, -1 / 3, 1e-45, 3.4e38, 1 + 2 ** -24, 1 + 3 * 2 ** -24], note: '1 + 2^-24 is a tie and rounds to 1 (even); 1 + 3·2^-24 rounds up to 1 + 2^-22' }],
  bf16: [{ name: 'round to nearest even', input: [1, 0.1, -2, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3e38, 1e-40], note: 'rounds the float64 directly (not via float32); 1 + 2^-8 is a tie and rounds to 1' }],
  f16: [{ name: 'round to nearest even, subnormals', input: [1, 0.1, -2, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 1e-6, -6e-8], note: '1e-6 and -6e-8 are subnormal (spacing 2^-24)' }],
  int8: [
    { name: 'basic', input: BASIC5 },
    { name: 'ties round to even', input: [0, 255, 2.5, 3.5, 100.5], note: 'offset 0 and scale 1 exactly: t = 2.5 → 2, 3.5 → 4, 100.5 → 100' },
    { name: 'constant vector', input: [1.5, 1.5, 1.5], note: 'scale 0, every code 0' },
  ],
  'int8-b32': [{ name: 'two blocks', input: WIDE40 }],
  int4: [
    { name: 'basic (odd dim: a zero high nibble pads)', input: BASIC5 },
    { name: 'ties round to even', input: [0, 15, 2.5, 3.5, 7.5], note: 'offset 0 and scale 1: 2.5 → 2, 3.5 → 4, 7.5 → 8' },
  ],
  'int4-b32': [{ name: 'two blocks', input: WIDE40 }],
  'int8-h16': [{ name: 'basic', input: BASIC5 }],
  'int4-h16': [{ name: 'basic', input: BASIC5 }],
  binary: [{ name: 'signs', input: [0.5, -1.25, 0, 3.1, -0.017, 2.6, -1, 4, 0.25], note: '0 counts as non-negative (bit set)' }],
  'topk-16': [
    { name: 'dim above k, ties to the lower index', input: Array.from({ length: 20 }, (_, i) => (i % 5 === 0 ? -3 : (i % 7) / 2)) },
    { name: 'dim below k: empty slots', input: BASIC5 },
  ],
  'topk-32': [{ name: 'dim above k', input: WIDE40 }],
  'rp-8': [{ name: 'dim 8', input: [1, -2, 0.5, 3, 0, -1, 2.25, 4] }, { name: 'dim 12', input: Array.from({ length: 12 }, (_, i) => i - 5.5) }],
  'rp-16': [{ name: 'dim 16', input: Array.from({ length: 16 }, (_, i) => Math.cos(i)) }],
  'rp-32': [{ name: 'dim 40', input: WIDE40 }],
  'pq-2x4': [
    { name: 'nearest centroids', input: [0.9, 0.2, 1.8, 2.1] },
    { name: 'a tie goes to the lower index', input: [0.5, 0, -2, 3], note: 'subspace 0: (0.5, 0) is as far from centroid 0 as from centroid 1' },
  ],
};

const codecCases: CodecCase[] = [];
for (const name of [...CODEC_NAMES, 'pq-2x4']) {
  for (const c of codecInputs[name] ?? []) {
    const codec = codecOf(name, CODEBOOK);
    const bytes = codec.encode(Float64Array.from(c.input));
    codecCases.push({ name: `${name}: ${c.name}`, codec: name, dim: c.input.length, input: c.input, bytes: hex(bytes), decoded: [...codec.decode(bytes, c.input.length)], ...(c.note ? { note: c.note } : {}) });
  }
}
for (const name of CODEC_NAMES) if (!codecInputs[name]) throw new Error(`no conformance case for codec ${name}`);

// ---------------------------------------------------------------- messages

/** A class block's meaning with `decoded` filled in from protofed's own encoding and decoding. */
function block(m: Omit<ClassBlockMeaning, 'decoded'>): Typed {
  const full = { ...m, decoded: [] as number[][] } as ClassBlockMeaning;
  const bytes = materialise({ $classBlock: full as unknown as Typed }, CODEBOOK) as Uint8Array;
  const decoded = decodeClassBlock(bytes, { maxClasses: 1e5, maxClassId: 2 ** 31 - 1, maxCount: 2 ** 48, maxVectorBytes: 1 << 26 });
  full.decoded = decodeBlockVectors(decoded, m.codec, m.dim, CODEBOOK);
  return { $classBlock: full as unknown as Typed };
}

const u32 = (values: number[]): Typed => ({ $u32: values });
const V = PROTOCOL_VERSION;
const codebookBytes = encodePqCodebook(CODEBOOK);

type Spec = { name: string; type: string; meaning: { [key: string]: Typed }; canonical?: boolean; note?: string };
const up: Spec[] = [
  {
    name: 'hello of a new client', type: 'hello',
    meaning: { v: V, clientId: 'c0', token: 'k0-secret', codecs: ['f64', 'f32', 'int8', 'deflate', 'delta', 'pq'], dim: 4, modelHash: 'pixels/v1/2x2x1/scale-1-255', tableVersion: 0, codebook: '', runId: '' },
  },
  {
    name: 'hello of a client that rejoins (run id, table version, pq codebook held)', type: 'hello',
    meaning: { v: V, clientId: 'c1', token: 'k1-secret', codecs: ['int8', 'pq'], dim: 4, modelHash: 'pixels/v1/2x2x1/scale-1-255', tableVersion: 17, codebook: codebookHash(codebookBytes), runId: '5f0c1e2d3a4b' },
  },
  {
    name: 'update (protofed, int8): two classes', type: 'update',
    meaning: { v: V, seq: 1, base: 0, mission: 0, classes: block({ codec: 'int8', dim: 4, deflate: false, rows: false, classIds: [3, 7], counts: [10, 2], means: [[0.1, 0.25, 0.5, 0.75], [0, 0.5, 1, 0.125]] }) },
  },
  {
    name: 'update (protofed, delta+int8+deflate): a change against the held prototype', type: 'update',
    meaning: {
      v: V, seq: 4, base: 12, mission: 3,
      classes: block({ codec: 'delta+int8+deflate', dim: 4, deflate: true, rows: false, classIds: [2, 130], counts: [5, 300], means: [[0.2, 0.3, 0.4, 0.5], [1, 1, 1, 1]], reference: [[0.1, 0.3, 0.5, 0.5], [0, 0, 0, 0]] }),
    },
    canonical: false, note: 'the deflate stream is zlib (level 6) output; another deflater may make other bytes. Class 130 is not held (reference 0).',
  },
  {
    name: 'update (share-embeddings, f32): rows', type: 'update',
    meaning: { v: V, seq: 2, base: 3, mission: 1, classes: block({ codec: 'f32', dim: 4, deflate: false, rows: true, classIds: [3, 3, 7], counts: [1, 1, 1], means: [[0, 0.5, 1, 0.25], [1, 0.5, 0, 0.75], [0.2, 0.2, 0.2, 0.2]] }) },
  },
  {
    name: 'report (before-merge)', type: 'report',
    meaning: { v: V, clientId: 'c0', mission: 0, phase: 'before-merge', tableVersion: 0, classIds: u32([3, 7]), correct: u32([90, 41]), total: u32([100, 100]), embeddingsComputed: 212, embeddingsCached: 0 },
  },
  {
    name: 'report (after-merge) with a count of 2^32 or more', type: 'report',
    meaning: { v: V, clientId: 'c0', mission: 5, phase: 'after-merge', tableVersion: 40, classIds: u32([]), correct: u32([]), total: u32([]), embeddingsComputed: 2 ** 32 + 7, embeddingsCached: 70000 },
    note: 'msgpackr writes an integer of 2^32 or more as float64 (0xcb); integer fields must accept it',
  },
  { name: 'leave', type: 'leave', meaning: { v: V } },
];
const down: Spec[] = [
  {
    name: 'welcome', type: 'welcome',
    meaning: { v: V, clientId: 'c0', lastAppliedSeq: 0, uplinkCodec: 'int8', downlinkCodec: 'int8', dim: 4, strategy: 'protofed', runId: '5f0c1e2d3a4b', instance: '0a1b2c3d4e5f6071', tableVersion: 0 },
  },
  {
    name: 'welcome (fedavg-head, with headTraining)', type: 'welcome',
    meaning: { v: V, clientId: 'c2', lastAppliedSeq: 3, uplinkCodec: 'delta+int8+deflate', downlinkCodec: 'int8+deflate', dim: 4, strategy: 'fedavg-head', headTraining: { epochs: 5, learningRate: 0.1, batchSize: 5 }, runId: '5f0c1e2d3a4b', instance: '0a1b2c3d4e5f6071', tableVersion: 9 },
    note: 'learningRate is a float: msgpack float64 (0xcb)',
  },
  { name: 'refused', type: 'refused', meaning: { v: V, reason: 'not authenticated: unknown client id or wrong key' } },
  {
    name: 'mission', type: 'mission',
    meaning: { v: V, mission: 0, assignment: [{ classId: 3, indices: u32([0, 17, 42, 59999]) }, { classId: 7, indices: u32([6, 1000]) }], evalClasses: u32([3, 7]) },
  },
  { name: 'mission with nothing left to learn (report only)', type: 'mission', meaning: { v: V, mission: 2, assignment: [], evalClasses: u32([1, 3, 7]) } },
  { name: 'ack', type: 'ack', meaning: { v: V, seq: 1, version: 1, duplicate: false } },
  { name: 'ack of a resend', type: 'ack', meaning: { v: V, seq: 1, version: 1, duplicate: true } },
  {
    name: 'table (int8): changed and removed classes', type: 'table',
    meaning: { v: V, version: 6, fromVersion: 2, codec: 'int8', classes: block({ codec: 'int8', dim: 4, deflate: false, rows: false, classIds: [3, 7, 300], counts: [12, 2, 65536], means: [[0.1, 0.25, 0.5, 0.75], [0, 0.5, 1, 0.125], [-1, 1, -1, 1]] }), removed: u32([5]) },
  },
  {
    name: 'table (int8+deflate)', type: 'table',
    meaning: { v: V, version: 7, fromVersion: 6, codec: 'int8', classes: block({ codec: 'int8+deflate', dim: 4, deflate: true, rows: false, classIds: [3], counts: [20], means: [[0.1, 0.2, 0.3, 0.4]] }), removed: u32([]) },
    canonical: false, note: 'codec is the bare codec name (no +deflate); the deflate stream is zlib (level 6) output',
  },
  {
    name: 'table with no classes (only removals)', type: 'table',
    meaning: { v: V, version: 8, fromVersion: 7, codec: 'int8', classes: block({ codec: 'int8', dim: 4, deflate: false, rows: false, classIds: [], counts: [], means: [] }), removed: u32([3, 7]) },
  },
  {
    name: 'table (pq-2x4)', type: 'table',
    meaning: { v: V, version: 1, fromVersion: 0, codec: 'pq', classes: block({ codec: 'pq-2x4', dim: 4, deflate: false, rows: false, classIds: [0, 1], counts: [4, 9], means: [[0.9, 0.2, 1.8, 2.1], [0.1, 0.9, -1, -1.2]] }), removed: u32([]) },
    note: 'codec is "pq" for every pq shape',
  },
  { name: 'evaluate', type: 'evaluate', meaning: { v: V, mission: 0, evalClasses: u32([3, 7]) } },
  { name: 'error about an update', type: 'error', meaning: { v: V, code: 'unexpected', reason: 'update 3 arrived before update 2: updates apply in seq order, so resend from 2', seq: 3 } },
  { name: 'error without a seq', type: 'error', meaning: { v: V, code: 'malformed', reason: 'bad msgpack: Unexpected end of MessagePack data' } },
  { name: 'shutdown', type: 'shutdown', meaning: { v: V, reason: 'the run is over' } },
  { name: 'codebook', type: 'codebook', meaning: { v: V, codebook: { $bin: hex(codebookBytes) } }, note: 'the kit\'s pq codebook (see codecs.json): "PQCB", u16 1, u16 centroids, u32 subspaces, u32 dim, then float32 centroids' },
];

function messageCase(direction: MessageCase['direction'], s: Spec): MessageCase {
  const msgpack = encodeMessage(materialise(s.meaning, CODEBOOK) as object);
  const event = eventByte(s.type);
  return {
    name: s.name, direction, type: s.type, eventByte: `0x${event.toString(16)}`, meaning: s.meaning,
    msgpack: hex(msgpack), frame: `${event.toString(16)}${hex(msgpack)}`, canonical: s.canonical ?? true, ...(s.note ? { note: s.note } : {}),
  };
}
const messageCases = [...up.map((s) => messageCase('client-to-coordinator', s)), ...down.map((s) => messageCase('coordinator-to-client', s))];

// ---------------------------------------------------------------- socket.io and engine.io packets

const encoder = new Encoder();
const packet = (p: object): string => hex(encoder.encode(p as never)[0]!);
const SID = 'AAAAAAAAAAAAAAAAAAAA';
const packetCases: PacketCase[] = [
  { name: 'engine.io open', direction: 'coordinator-to-client', kind: 'engine.io text frame', meaning: '0 + JSON', frame: `0{"sid":"${SID}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":67108880}`, note: 'the first frame; sid is random; maxPayload is the run\'s message limit + 16' },
  { name: 'socket.io connect', direction: 'client-to-coordinator', kind: 'socket.io packet', meaning: { type: 0, nsp: '/' }, frame: packet({ type: 0, nsp: '/' }) },
  {
    name: 'socket.io connect reply', direction: 'coordinator-to-client', kind: 'socket.io packet', meaning: { type: 0, nsp: '/', data: { sid: SID } },
    frame: packet({ type: 0, nsp: '/', data: { sid: SID, pid: undefined } }),
    note: 'socket.io gives its connect reply a pid that is undefined (connection-state recovery is off); the parser leaves undefined values out, so the reply is plain msgpack',
  },
  { name: 'socket.io disconnect', direction: 'coordinator-to-client', kind: 'socket.io packet', meaning: { type: 1, nsp: '/' }, frame: packet({ type: 1, nsp: '/' }), note: 'the coordinator ends a connection (after shutdown or refused) with this, then closes the WebSocket' },
  { name: 'engine.io ping', direction: 'coordinator-to-client', kind: 'engine.io text frame', meaning: '2', frame: '2', note: 'every pingInterval ms' },
  { name: 'engine.io pong', direction: 'client-to-coordinator', kind: 'engine.io text frame', meaning: '3', frame: '3', note: 'answer each ping within pingTimeout ms, or the coordinator closes the connection' },
];

// ---------------------------------------------------------------- write

/** JSON with two-space indents, and lists of plain values on one line. */
const format = (value: unknown): string => JSON.stringify(value, null, 2).replace(/\[\s+([^[\]{}]*?)\s+\]/g, (_, items: string) => `[${items.split(/,\s+/).join(', ')}]`);
const write = (file: string, value: unknown): void => writeFileSync(join(here, file), `${format(value)}\n`);
write('codecs.json', { protocolVersion: V, pqCodebook: { ...CODEBOOK_JSON, bytes: hex(codebookBytes) }, cases: codecCases });
write('messages.json', { protocolVersion: V, pqCodebook: CODEBOOK_JSON, cases: messageCases });
write('packets.json', { protocolVersion: V, cases: packetCases });
write('session.json', {
  note: 'One real session with a CoordinatorServer, captured from a raw WebSocket (test/support/engine-session.ts), shortened ping interval. sid, pid, instance are random: this transcript illustrates; packets.json and messages.json are the reference.',
  frames: await captureSession(),
});
console.log(`wrote ${codecCases.length} codec cases, ${messageCases.length} messages, ${packetCases.length} packets to ${here}`);
