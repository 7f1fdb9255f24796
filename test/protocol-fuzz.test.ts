import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { AssignmentBook } from '../coordinator/federation/assignment-book.js';
import { FederationState } from '../coordinator/federation/federation-state.js';
import { UpdateIntake } from '../coordinator/federation/update-intake.js';
import { CoordinatorServer } from '../coordinator/transport/coordinator-server.js';
import { SeededRng } from '../shared/learning/rng.js';
import { tableChecksum } from '../shared/learning/table-checksum.js';
import { encodeClassBlock } from '../shared/protocol/class-block.js';
import { ClientKeys } from '../shared/protocol/client-keys.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { runMessageLimit } from '../shared/protocol/message-limits.js';
import { PROTOCOL_LIMITS, PROTOCOL_VERSION, packU32, type ErrorCode } from '../shared/protocol/messages.js';
import { protofedParser } from '../shared/protocol/socket-parser.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';
import { strategyNamed } from '../shared/strategies/registry.js';

/**
 * 10,000 random and mutated messages against a live coordinator, before and after hello. Seeded:
 * PROTOFED_FUZZ_SEED=<n> replays a run. Every message must get a documented answer (an `error`
 * with a documented code, `refused`, a disconnect, or the duplicate ack a resend earns); nothing
 * may be applied, the coordinator must stay up, and its memory must stay bounded.
 */
const SEED = Number(process.env.PROTOFED_FUZZ_SEED ?? 20261130);
const MESSAGES = 10_000;
const BEFORE_HELLO = 600;
const DIM = 8;
const f32 = getCodec('f32');
const KEYS = ClientKeys.generate(['c0', 'c1']);
const CODES: readonly ErrorCode[] = ['malformed', 'version', 'invalid', 'unexpected', 'limit'];
const LIMIT = runMessageLimit({ tableDim: DIM, uplinkStride: f32.encodedLength(DIM), classes: 20 });

let server: CoordinatorServer;
let state: FederationState;
let url: string;

beforeAll(async () => {
  state = new FederationState(DIM);
  const book = new AssignmentBook();
  book.assign('c0', 0, [{ classId: 3, indices: [0, 1, 2, 3, 4] }, { classId: 7, indices: [5, 6] }], new Set([3, 7]));
  server = new CoordinatorServer({
    host: '127.0.0.1', port: 0, keys: KEYS, dim: DIM, modelHash: 'model-a', uplinkCodec: 'f32', downlinkCodec: 'f32',
    lastAppliedSeq: (id) => state.lastAppliedSeq(id), runId: 'run-a', tableVersion: () => state.version, maxMessageBytes: LIMIT,
    connectionLimits: { pending: 64, pendingPerAddress: 64 },
  });
  const intake = new UpdateIntake(state, { codec: f32, assignments: { book, strategy: strategyNamed('protofed') } });
  server.on('update', (session, update) => intake.take(session.clientId!, update, session));
  const { port } = await server.listen();
  url = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server.close();
});

type Answer = { kind: 'error'; code: string; reason: string } | { kind: 'ack'; duplicate: boolean } | { kind: 'refused'; reason: string } | { kind: 'welcome' } | { kind: 'disconnect' };

/** One connection that records what the coordinator answers, in order. */
class Peer {
  readonly socket: Socket;
  readonly answers: Answer[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  constructor() {
    this.socket = io(url, { transports: ['websocket'], reconnection: false, parser: protofedParser });
    const push = (a: Answer): void => {
      this.answers.push(a);
      for (const w of this.waiters.splice(0)) w();
    };
    this.socket.on('error', (f: Uint8Array) => {
      const m = decodeMessage(f);
      push({ kind: 'error', code: String(m.code), reason: String(m.reason) });
    });
    this.socket.on('ack', (f: Uint8Array) => push({ kind: 'ack', duplicate: decodeMessage(f).duplicate === true }));
    this.socket.on('refused', (f: Uint8Array) => push({ kind: 'refused', reason: String(decodeMessage(f).reason) }));
    this.socket.on('welcome', () => push({ kind: 'welcome' }));
    this.socket.on('disconnect', () => {
      this.closed = true;
      push({ kind: 'disconnect' });
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.connected) return resolve();
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  /** Resolves once an answer matching `done` (or a disconnect) has come; the answers since `from`. */
  async until(from: number, done: (a: Answer) => boolean, what: string): Promise<Answer[]> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const since = this.answers.slice(from);
      if (since.some((a) => a.kind === 'disconnect' || done(a))) return since;
      if (Date.now() > deadline) throw new Error(`no answer to ${what} within 5 s (seed ${SEED}); answers so far: ${JSON.stringify(since)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  raw(frame: Uint8Array): void {
    (this.socket as unknown as { io: { engine: { write(data: Uint8Array): void } } }).io.engine.write(frame);
  }
}

function hello(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: PROTOCOL_VERSION, clientId: 'c0', token: KEYS.secretOf('c0'), codecs: ['f32'], dim: DIM, modelHash: 'model-a', tableVersion: 0, codebook: '', ...overrides };
}

function vector(values: number[]): Uint8Array {
  return f32.encode(values);
}

const legitUpdate = (): Record<string, unknown> => ({
  v: PROTOCOL_VERSION, seq: 1, base: 0, mission: 0,
  classes: encodeClassBlock([3, 7], [5, 2], Uint8Array.from([...vector([1, 2, 3, 4, 5, 6, 7, 8]), ...vector([8, 7, 6, 5, 4, 3, 2, 1])])),
});

/** Hand-written class blocks that break every rule (no checks on the way out). */
function rawBlock(rng: SeededRng): Uint8Array {
  const bytes: number[] = [rng.int(256)];
  const n = rng.next() < 0.1 ? rng.int(1 << 20) : rng.int(6);
  const varint = (v: number): void => {
    while (v >= 0x80) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
  };
  varint(n);
  for (let i = 0; i < Math.min(n, 6); i++) varint(rng.next() < 0.2 ? rng.int(2 ** 31) : rng.int(30));
  for (let i = 0; i < Math.min(n, 6); i++) varint([0, 1, 2, 5, 2 ** 40, 2 ** 49, rng.int(1000)][rng.int(7)]!);
  const tail = rng.int(80);
  for (let i = 0; i < tail; i++) bytes.push(rng.int(256));
  return Uint8Array.from(bytes);
}

const WEIRD: unknown[] = [null, true, -1, 0, 2 ** 53, -(2 ** 31), 1.5, NaN, Infinity, -Infinity, '', 'x'.repeat(5000), [], [1, 2], {}, { a: 1 }, new Uint8Array(0), new Uint8Array(7)];

/** An update or report, changed in one or a few ways. */
function mutatedMessage(rng: SeededRng): { event: string; body: Uint8Array } {
  const kind = rng.int(10);
  if (kind < 7) {
    const m = legitUpdate();
    const changes = 1 + rng.int(3);
    for (let c = 0; c < changes; c++) {
      const field = ['v', 'seq', 'base', 'mission', 'classes', 'extra'][rng.int(6)]!;
      const r = rng.int(6);
      if (field === 'classes') {
        m.classes = r === 0 ? rawBlock(rng)
          : r === 1 ? encodeClassBlock([3, 7], [5, 2], new Uint8Array(Float32Array.from([NaN, 0, 0, 0, 0, 0, 0, 0, Infinity, 0, 0, 0, 0, 0, 0, -Infinity]).buffer))
          : r === 2 ? encodeClassBlock([3, 7, 9 + rng.int(1000)], [5, 2, 2 ** 40], new Uint8Array(3 * 32))
          : r === 3 ? encodeClassBlock([3, 7], [5 + 1 + rng.int(100), 2], new Uint8Array(64))
          : r === 4 ? WEIRD[rng.int(WEIRD.length)]
          : encodeClassBlock([], [], new Uint8Array(0));
      } else if (field === 'extra') {
        m[`x${rng.int(100)}`] = WEIRD[rng.int(WEIRD.length)];
      } else {
        m[field] = r < 3 ? WEIRD[rng.int(WEIRD.length)] : field === 'seq' ? [1, 2, 50, 2 ** 40][rng.int(4)] : rng.int(100);
      }
    }
    return { event: 'update', body: encodeMessage(m) };
  }
  const classes = rng.int(5);
  const report: Record<string, unknown> = {
    v: PROTOCOL_VERSION, clientId: rng.next() < 0.3 ? 'c1' : 'c0', mission: rng.int(5), phase: ['before-merge', 'after-merge', 'during'][rng.int(3)],
    tableVersion: rng.int(5), classIds: packU32(Array.from({ length: classes }, () => rng.int(20))),
    correct: packU32(Array.from({ length: classes }, () => rng.int(20))), total: packU32(Array.from({ length: classes + (rng.next() < 0.2 ? 1 : 0) }, () => rng.int(20))),
    embeddingsComputed: rng.int(100), embeddingsCached: rng.int(100),
  };
  if (rng.next() < 0.3) report[['v', 'mission', 'classIds', 'phase'][rng.int(4)]!] = WEIRD[rng.int(WEIRD.length)];
  return { event: 'report', body: encodeMessage(report) };
}

/** Bytes that are not what they claim: random, truncated, or bit-flipped valid messages. */
function damagedBytes(rng: SeededRng): Uint8Array {
  const base = encodeMessage(legitUpdate());
  const r = rng.int(4);
  if (r === 0) return Uint8Array.from({ length: rng.int(200) + 1 }, () => rng.int(256));
  if (r === 1) return base.subarray(0, rng.int(base.byteLength));
  const out = Uint8Array.from(base);
  for (let i = 0; i < 1 + rng.int(4); i++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
  return out;
}

describe('fuzzing the coordinator', () => {
  it(`answers ${MESSAGES} random and mutated messages as documented, applies none of them, and stays up with bounded memory`, async () => {
    const rng = new SeededRng(`fuzz-${SEED}`);
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const tally = new Map<string, number>();
    const note = (what: string): void => void tally.set(what, (tally.get(what) ?? 0) + 1);

    // The one update that is the assigned work goes in first; after it, nothing is owed.
    let peer = new Peer();
    await peer.connected();
    peer.socket.emit('hello', encodeMessage(hello()));
    await peer.until(0, (a) => a.kind === 'welcome', 'the hello');
    let from = peer.answers.length;
    peer.socket.emit('update', encodeMessage(legitUpdate()));
    expect(await peer.until(from, (a) => a.kind === 'ack', 'the assigned update')).toEqual([{ kind: 'ack', duplicate: false }]);
    const checksum = tableChecksum(state.global);

    // Before hello: every first message that is not a valid hello gets `refused` or a cut.
    for (let i = 0; i < BEFORE_HELLO; i++) {
      const stranger = new Peer();
      await stranger.connected();
      const r = rng.int(7);
      const what = ['a stranger\'s hello', 'another client\'s id', 'an update first', 'a huge frame', 'random bytes as hello', 'an unknown event byte', 'a broken hello'][r]!;
      if (r === 0) stranger.socket.emit('hello', encodeMessage(hello({ clientId: `s${rng.int(1000)}`, token: 'x'.repeat(16 + rng.int(30)) })));
      else if (r === 1) stranger.socket.emit('hello', encodeMessage(hello({ clientId: 'c1' })));
      else if (r === 2) stranger.socket.emit('update', encodeMessage(legitUpdate()));
      else if (r === 3) stranger.socket.emit('hello', new Uint8Array(PROTOCOL_LIMITS.maxHelloBytes + 1 + rng.int(LIMIT)));
      else if (r === 4) stranger.socket.emit('hello', damagedBytes(rng));
      else if (r === 5) stranger.raw(Uint8Array.from([0xed + rng.int(19), ...damagedBytes(rng)]));
      else stranger.socket.emit('hello', encodeMessage(hello({ [['v', 'dim', 'codecs', 'token'][rng.int(4)]!]: WEIRD[rng.int(WEIRD.length)] })));
      const answers = await stranger.until(0, (a) => a.kind === 'refused', what);
      expect(answers.some((a) => a.kind === 'welcome'), `${what} (seed ${SEED}, message ${i})`).toBe(false);
      expect(answers.every((a) => a.kind === 'refused' || a.kind === 'disconnect'), `${what}: ${JSON.stringify(answers)}`).toBe(true);
      note(`before hello: ${answers[0]!.kind}`);
      stranger.socket.disconnect();
    }

    // After hello: mutated updates and reports, damaged bytes, unknown events, misframed packets and huge frames.
    for (let i = BEFORE_HELLO; i < MESSAGES; i++) {
      if (peer.closed) {
        peer = new Peer();
        await peer.connected();
        const at = peer.answers.length;
        peer.socket.emit('hello', encodeMessage(hello()));
        expect((await peer.until(at, (a) => a.kind === 'welcome' || a.kind === 'refused', 'a hello after a cut')).at(-1)?.kind).toBe('welcome');
      }
      from = peer.answers.length;
      const r = rng.next();
      let what: string;
      let mayPass = false;
      if (r < 0.6) {
        const m = mutatedMessage(rng);
        what = `a mutated ${m.event}`;
        mayPass = m.event === 'report';
        peer.socket.emit(m.event, m.body);
      } else if (r < 0.8) {
        what = 'damaged bytes';
        peer.socket.emit(['update', 'report', 'hello'][rng.int(3)]!, damagedBytes(rng));
      } else if (r < 0.87) {
        what = 'an unknown event byte';
        peer.raw(Uint8Array.from([0xed + rng.int(19), ...damagedBytes(rng)]));
      } else if (r < 0.93) {
        what = 'a protocol event in the generic form';
        peer.socket.emit('update', { seq: 1 } as never);
      } else if (r < 0.97) {
        what = 'a resend of the applied update';
        peer.socket.emit('update', encodeMessage(legitUpdate()));
      } else {
        what = 'a frame above the run\'s limit';
        peer.socket.emit('update', new Uint8Array(LIMIT + 64 + rng.int(LIMIT)));
      }
      // A probe after each message, whose answer is known: everything before it answers the message.
      peer.socket.emit('probe', encodeMessage({ v: PROTOCOL_VERSION }));
      const isProbe = (a: Answer): boolean => a.kind === 'error' && a.reason.includes('"probe"');
      const answers = await peer.until(from, isProbe, what);
      const before = answers.slice(0, answers.findIndex((a) => a.kind === 'disconnect' || isProbe(a)) + 1);
      const label = `${what} (seed ${SEED}, message ${i}): ${JSON.stringify(before)}`;
      if (what === 'a frame above the run\'s limit') expect(before.at(-1)?.kind, label).toBe('disconnect');
      for (const a of before) {
        expect(a.kind === 'ack' && !a.duplicate, label).toBe(false);
        if (a.kind === 'error') expect(CODES, label).toContain(a.code);
      }
      // Nothing silent: every message but a valid report is answered before the probe.
      const answered = before.length >= 2 || before[0]?.kind === 'disconnect';
      if (!mayPass) expect(answered, label).toBe(true);
      note(`${what}: ${before.length >= 2 ? (before[0]!.kind === 'error' ? before[0]!.code : before[0]!.kind) : before[0]?.kind === 'disconnect' ? 'disconnect' : 'silent'}`);
      if (i % 100 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }

    expect(tableChecksum(state.global), `seed ${SEED}`).toBe(checksum);
    expect(state.version).toBe(1);
    // Still up: another client joins and is welcomed.
    const last = new Peer();
    await last.connected();
    last.socket.emit('hello', encodeMessage(hello({ clientId: 'c1', token: KEYS.secretOf('c1') })));
    expect((await last.until(0, (a) => a.kind === 'welcome', 'a final hello')).at(-1)?.kind).toBe('welcome');
    last.socket.disconnect();
    peer.socket.disconnect();
    expect(peakRss - rssBefore, `seed ${SEED}`).toBeLessThan(200 * 1024 * 1024);
    expect([...tally.values()].reduce((a, b) => a + b, 0)).toBe(MESSAGES);
    // The fuzz reached every kind of answer.
    const outcomes = new Set([...tally.keys()].map((k) => k.split(': ')[1]));
    for (const o of ['malformed', 'version', 'invalid', 'unexpected', 'disconnect', 'refused', 'ack']) expect(outcomes, `seed ${SEED}`).toContain(o);
  }, 240_000);
});
