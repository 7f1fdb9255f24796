/**
 * What durability costs (bench/results/durability.json):
 * - merge throughput through the engine's intake (UpdateIntake: validation, decode, at-most-once,
 *   merge, ack) on the merge bench's load (64-d int8 updates of 10 classes), without a journal and
 *   with the run journal on the file log (fdatasync per group commit), and with it writing each
 *   client's byte counts with every batch as a run does, in the same process, interleaved, best
 *   of 5; the goal is at most 15% slower. Messages arrive 500 per event-loop turn
 *   (a busy socket), acks go out once their batch is durable.
 * - resume time: a journal holding the state of a population-1m run stopped at mission 25 (250,000
 *   updates of 2 int8 64-d classes from 10,000 of 1,000,000 clients per mission; synthetic, of
 *   the same shape), opened from the log alone and from a
 *   snapshot.
 *
 *   npx tsx bench/durability-bench.ts
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FederationState } from '../coordinator/federation/federation-state.js';
import { RecordLog } from '../coordinator/federation/record-log.js';
import { RunJournal } from '../coordinator/federation/run-journal.js';
import { UpdateIntake, type IntakeReplies } from '../coordinator/federation/update-intake.js';
import { encodeClassBlock } from '../shared/protocol/class-block.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { validateClientMessage } from '../shared/protocol/validation.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';
import { SeededRng } from '../shared/learning/rng.js';
import { tableChecksum } from '../shared/learning/table-checksum.js';
import { mergeBenchLoad } from './merge-throughput.js';
import { ByteMeter } from '../shared/protocol/byte-accounting.js';
import { BytesProgressBook } from '../coordinator/federation/bytes-progress.js';
import type { MeteredClientLinks } from '../coordinator/federation/client-links.js';
import { EventEmitter } from 'node:events';

const codec = getCodec('int8');
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
const dirSize = (dir: string): number => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

type Mode = 'memory only' | 'journal, fdatasync' | 'journal, no fsync' | 'journal, fdatasync, byte counts';

/** Links with nothing but a byte meter per client: what the byte counts need of a transport. */
function meteredLinks(): MeteredClientLinks {
  const meters = new Map<string, ByteMeter>();
  return Object.assign(new EventEmitter() as MeteredClientLinks, {
    session: () => undefined,
    meter: (id: string) => {
      let m = meters.get(id);
      if (!m) meters.set(id, (m = new ByteMeter()));
      return m;
    },
  });
}

async function intakeRun(load: ReturnType<typeof mergeBenchLoad>, mode: Mode): Promise<{ perSecond: number; acks: number; checksum: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'protofed-durability-'));
  let state: FederationState;
  let journal: RunJournal | undefined;
  if (mode === 'memory only') {
    state = new FederationState(load.dim);
  } else {
    ({ journal, state } = RunJournal.open(await RecordLog.open(dir, { sync: mode !== 'journal, no fsync' }), load.dim, {}, codec));
  }
  // A run counts each client's bytes (in every mode) and, journaled, writes the changed counts with every batch.
  const links = meteredLinks();
  if (journal && mode === 'journal, fdatasync, byte counts') {
    const bytes = new BytesProgressBook(links, [...new Set(load.senders)]);
    journal.progressSource = () => bytes.take();
  }
  const intake = new UpdateIntake(state, { codec, durable: journal });
  let acks = 0;
  const replies: IntakeReplies = { send: () => void acks++, sendError: (_c, reason) => { throw new Error(reason); } };
  const started = performance.now();
  for (let i = 0; i < load.frames.length; i++) {
    const update = validateClientMessage.update(decodeMessage(load.frames[i]));
    const meter = links.meter(load.senders[i]!);
    meter.count('up', 'update', update.classes.payloadBytes, load.frames[i]!.byteLength);
    meter.count('down', 'ack', 0, 12);
    intake.take(load.senders[i]!, update, replies);
    if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
  }
  await journal?.flush();
  while (acks < load.frames.length) await new Promise((resolve) => setImmediate(resolve));
  const seconds = (performance.now() - started) / 1000;
  const checksum = tableChecksum(state.global);
  await journal?.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSecond: (load.frames.length * load.classesPerMessage) / seconds, acks, checksum };
}

async function throughput(): Promise<Record<string, unknown>> {
  const load = mergeBenchLoad(50_000);
  const modes: Mode[] = ['memory only', 'journal, fdatasync', 'journal, no fsync', 'journal, fdatasync, byte counts'];
  const best = new Map<Mode, number>(modes.map((m) => [m, 0]));
  const checksums = new Set<string>();
  for (let run = 0; run < Number(process.env.RUNS ?? 5); run++) {
    for (const mode of modes) {
      const r = await intakeRun(load, mode);
      best.set(mode, Math.max(best.get(mode)!, r.perSecond));
      checksums.add(r.checksum);
    }
  }
  if (checksums.size !== 1) throw new Error('the runs did not end with the same table');
  const base = best.get('memory only')!;
  return {
    load: { dim: load.dim, codec: 'int8', classesPerMessage: load.classesPerMessage, clients: load.clients, messages: load.frames.length, messagesPerEventLoopTurn: 500 },
    classUpdatesPerSecond: Object.fromEntries(modes.map((m) => [m, Math.round(best.get(m)!)])),
    slowdownWithJournal: round(1 - best.get('journal, fdatasync')! / base),
    slowdownWithJournalNoFsync: round(1 - best.get('journal, no fsync')! / base),
    /** The journal as a run writes it: with each client's byte counts, written with every batch (progress records). */
    slowdownWithJournalAndByteCounts: round(1 - best.get('journal, fdatasync, byte counts')! / base),
    goalSlowdown: 0.15,
  };
}

async function resumeTime(): Promise<Record<string, unknown>> {
  const dim = 64;
  const missions = 25;
  const perMission = 10_000;
  const rng = new SeededRng(7);
  const dir = mkdtempSync(join(tmpdir(), 'protofed-resume-bench-'));
  const written = RunJournal.open(await RecordLog.open(dir), dim, {}, codec);
  const intake = new UpdateIntake(written.state, { codec, durable: written.journal });
  const seqs = new Map<number, number>();
  const replies: IntakeReplies = { send: () => {}, sendError: (_c, reason) => { throw new Error(reason); } };
  for (let m = 0; m < missions; m++) {
    for (const client of rng.sample(1_000_000, perMission)) {
      const seq = (seqs.get(client) ?? 0) + 1;
      seqs.set(client, seq);
      const classIds = rng.sample(750, 2).sort((a, b) => a - b);
      const vectors = new Uint8Array(2 * codec.encodedLength(dim));
      classIds.forEach((_, i) => vectors.set(codec.encode(Float64Array.from({ length: dim }, () => rng.next() * 4)), i * codec.encodedLength(dim)));
      const frame = encodeMessage({ v: PROTOCOL_VERSION, seq, base: 0, mission: m, classes: encodeClassBlock(classIds, [5, 5], vectors) });
      intake.take(`c${client}`, validateClientMessage.update(decodeMessage(frame)), replies);
    }
    await written.journal.flush();
  }
  const checksum = tableChecksum(written.state.global);
  await written.journal.close();
  const logBytes = dirSize(dir);

  const open = async (): Promise<{ seconds: number; checksum: string; journal: RunJournal }> => {
    const started = performance.now();
    const { journal, state } = RunJournal.open(await RecordLog.open(dir), dim, {}, codec);
    const seconds = (performance.now() - started) / 1000;
    return { seconds, checksum: tableChecksum(state.global), journal };
  };
  const fromLog = await open();
  if (fromLog.checksum !== checksum) throw new Error('replaying the log gave another table');
  const snapStarted = performance.now();
  await fromLog.journal.snapshot();
  const snapshotSeconds = (performance.now() - snapStarted) / 1000;
  await fromLog.journal.close();
  const snapshotBytes = dirSize(dir);
  const fromSnapshot = await open();
  if (fromSnapshot.checksum !== checksum) throw new Error('the snapshot gave another table');
  await fromSnapshot.journal.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    state: { missions, updates: missions * perMission, clientsWithUpdates: seqs.size, classesPerUpdate: 2, dim, codec: 'int8', note: 'synthetic, the shape of population-1m stopped at mission 25' },
    logBytes,
    resumeFromLogSeconds: round(fromLog.seconds),
    snapshotBytes,
    snapshotWriteSeconds: round(snapshotSeconds),
    resumeFromSnapshotSeconds: round(fromSnapshot.seconds),
  };
}

const result = {
  benchmark: 'cost of durability: the run journal (append-only log, group commit with fdatasync, snapshots)',
  date: new Date().toISOString(),
  node: process.version,
  mergeThroughput: await throughput(),
  resume: await resumeTime(),
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/durability.json', `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
