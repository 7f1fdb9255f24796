import type { FederationState } from '../../coordinator/federation/federation-state.js';
import { NoStore } from '../../coordinator/federation/no-store.js';
import { RunJournal } from '../../coordinator/federation/run-journal.js';
import { runRounds } from '../../coordinator/federation/round-loop.js';
import { UpdateIntake } from '../../coordinator/federation/update-intake.js';
import { TableSender } from '../../coordinator/federation/table-message.js';
import { ByteMeter, addTally, type ByteMeterEntries, type ByteTally } from '../../shared/protocol/byte-accounting.js';
import { bindCodebook, parseCodecSpec, type CodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import { decodePqCodebook } from '../../shared/protocol/codecs/index.js';
import { accuracyOf } from '../../shared/learning/metrics/class-accuracy.js';
import { isLearningTraffic, packU32 } from '../../shared/protocol/messages.js';
import type { PrototypeTable } from '../../shared/learning/prototype-table.js';
import { SeededRng } from '../../shared/learning/rng.js';
import type { HeldOutEvaluator } from '../../shared/learning/held-out-evaluator.js';
import { PopulationSchedule } from './population-schedule.js';
import { InThreadShard, WorkerShard, type ShardHandle } from './shard-handle.js';
import { ShardLinks } from './shard-links.js';

export interface PopulationRunOptions {
  population: number;
  perMission: number;
  missions: number;
  classesPerClient: number;
  shotsPerClass: number;
  seed: number;
  uplink: string;
  downlink: string;
  /** Worker threads for the clients; 0 keeps them in this thread. */
  workers: number;
  /** Shards the population is cut into when they stay in this thread (one per worker otherwise). */
  shards?: number;
  /** Train-split embeddings (row i = train image i) and labels: in shared memory when workers > 0. */
  bank: Float32Array;
  labels: Int32Array;
  dim: number;
  fieldClasses: readonly number[];
  /** Evaluates tables on the test split; no evaluation when absent. */
  evaluator?: HeldOutEvaluator | undefined;
  /** Participants per mission whose own table is evaluated too (identical tables share one evaluation). */
  clientSample?: number;
  /** A pq codec's codebook (encoded): each client is sent it once, before its first mission, counted. */
  codebook?: Uint8Array | undefined;
  /** Keep each client's contributions for exact unlearning (default true). */
  keepContributions?: boolean;
  /**
   * The run's durable journal (an in-memory one when absent): every update is in it before its
   * ack, each mission is recorded, and a journal that already holds missions is resumed from.
   */
  journal?: RunJournal<PopulationRecord, PopulationProgress> | undefined;
  /** Fold the journal into a snapshot every this many missions (default 25). */
  snapshotEveryMissions?: number | undefined;
  /** Clients per batch handed to a shard: batches overlap the shards' work with the coordinator's. */
  batchSize?: number;
  /** Each finished mission, with every client's bytes so far (live arrays: read, do not keep). */
  onMission?: (record: PopulationMission, perClient: { bytesUp: Float64Array; bytesDown: Float64Array }) => void;
  /** Called after the last mission, before the shards stop, with a way to read any client's table. */
  onFinish?: (held: (client: number) => Promise<PrototypeTable>) => Promise<void>;
}

export interface PopulationMission {
  mission: number;
  participants: number;
  classesKnown: number;
  globalAccuracy: number | null;
  /** Mean accuracy of the sampled clients' own tables after the merge. */
  sampledClientAccuracy: number | null;
  seconds: number;
  bytes: { up: ByteTally; down: ByteTally };
  rssBytes: number;
}

/** What the journal keeps of a finished mission. */
export interface PopulationRecord {
  mission: PopulationMission;
  /** The run's byte counts at the end of the mission. */
  meter: ByteMeterEntries;
  /** The clients with traffic in this mission (its participants) and the encoded bytes each sent and received in it. */
  participants: Int32Array;
  bytesUp: Float64Array;
  bytesDown: Float64Array;
}

/**
 * The bytes counted since the last progress record (written with each durable batch): the run's
 * counts so far, and what each client sent and received since the record before.
 */
export interface PopulationProgress {
  meter: ByteMeterEntries;
  clients: Int32Array;
  up: Float64Array;
  down: Float64Array;
}

export interface PopulationResult {
  missions: PopulationMission[];
  state: FederationState;
  meter: ByteMeter;
  /** Encoded bytes each client sent and received (learning traffic), by client index. */
  bytesUp: Float64Array;
  bytesDown: Float64Array;
  seconds: number;
  /** The process's peak resident set size so far (getrusage's maxRSS: worker threads included). */
  peakRssBytes: number;
}

/**
 * A sync federated run over a population far larger than one process could hold as ClientNodes:
 * the clients live in shards (client-shard.ts) in worker threads, and the coordinator runs the
 * same intake as the socket server (msgpack, validation, codec decode, at-most-once merge into a
 * FederationState) on every update frame, and sends every participant its ack and the changes
 * since the version it holds. Every byte is a real protocol frame and is counted.
 *
 * @example
 * const result = await runPopulation({ population: 1e6, perMission: 1e4, missions: 50, ... });
 */
export async function runPopulation(o: PopulationRunOptions): Promise<PopulationResult> {
  const started = performance.now();
  const book = o.codebook ? decodePqCodebook(o.codebook) : undefined;
  const bind = (spec: CodecSpec): CodecSpec => (book ? bindCodebook(spec, book) : spec);
  const uplink = bind(parseCodecSpec(o.uplink));
  const downlink = bind(parseCodecSpec(o.downlink));
  if ((uplink.pq || downlink.pq) && !book) throw new Error('a pq codec needs its codebook');
  /** The codebook message, one object: encoded once for every client it goes to. */
  const codebookMessage = o.codebook ? { codebook: o.codebook } : undefined;
  /** Clients that have been sent the codebook. */
  const gotCodebook = new Uint8Array(codebookMessage ? o.population : 0);
  const schedule = new PopulationSchedule(o.labels, o.fieldClasses, o, o.seed);
  const journal = o.journal
    ?? RunJournal.open<PopulationRecord, PopulationProgress>(new NoStore(), o.dim, { keepContributions: o.keepContributions ?? true }, uplink.codec, uplink.delta ? downlink.codec : undefined).journal;
  const state = journal.state;
  /** What the clients hold, for a `delta+` uplink. */
  const history = journal.history;
  // The same intake as every other mode: validation against the codec and the table version, at-most-once, durable before the ack.
  const intake = new UpdateIntake(state, { codec: uplink.codec, delta: history, durable: journal.ackGate });
  // A resumed run's shards start again, each client continuing from its last applied seq with an
  // empty table (the next table it gets is whole).
  const lastSeq = state.version > 0 ? Int32Array.from({ length: o.population }, (_, c) => state.lastAppliedSeq(`c${c}`)) : undefined;
  const links = new ShardLinks({ population: o.population, shards: startShards(o, lastSeq), batchSize: o.batchSize ?? 2000 });
  const { meter, bytesUp, bytesDown } = links;
  links.on('update', (link, update) => intake.take(link.clientId, update, link));
  intake.on('failed', (err) => links.fail(new Error(`cannot make the state durable: ${err.message}`)));
  const missions: PopulationMission[] = [];
  // A resumed run: the finished missions and their bytes come from the journal.
  for (const r of journal.missions) {
    missions.push(r.mission);
    r.participants.forEach((client, k) => {
      bytesUp[client]! += r.bytesUp[k]!;
      bytesDown[client]! += r.bytesDown[k]!;
    });
  }
  meter.load(journal.progress.at(-1)?.meter ?? journal.missions.at(-1)?.meter ?? []);
  // The interrupted mission's bytes up to its last durable write, by client: its record counts them.
  const carried = new Map<number, [up: number, down: number]>();
  for (const p of journal.progress) {
    p.clients.forEach((client, k) => {
      bytesUp[client]! += p.up[k]!;
      bytesDown[client]! += p.down[k]!;
      const c = carried.get(client) ?? [0, 0];
      carried.set(client, [c[0] + p.up[k]!, c[1] + p.down[k]!]);
    });
  }
  let resumedBefore: Round['before'] | undefined;
  if (journal.progress.length > 0) {
    const saved = new ByteMeter();
    saved.load(journal.missions.at(-1)?.meter ?? []);
    resumedBefore = { up: saved.totals('up', isLearningTraffic), down: saved.totals('down', isLearningTraffic) };
  }
  const sampleRng = new SeededRng(o.seed).fork('population-client-sample');
  // The client sample's draws of the finished missions, replayed.
  for (const { mission: r } of journal.missions) if (o.evaluator && r.classesKnown > 0) sampleRng.sample(r.participants, Math.min(o.clientSample ?? 0, r.participants));
  let peakRssBytes = process.memoryUsage().rss;

  /** Each client's bytes as the last progress record wrote them (this round's clients). */
  const written = new Map<number, [up: number, down: number]>();
  let current: Round | undefined;
  journal.progressSource = (): PopulationProgress | undefined => {
    if (!current) return undefined;
    const clients: number[] = [];
    const up: number[] = [];
    const down: number[] = [];
    for (const [client, [u, d]] of written) {
      if (bytesUp[client] === u && bytesDown[client] === d) continue;
      clients.push(client);
      up.push(bytesUp[client]! - u);
      down.push(bytesDown[client]! - d);
      written.set(client, [bytesUp[client]!, bytesDown[client]!]);
    }
    return { meter: meter.entries(), clients: Int32Array.from(clients), up: Float64Array.from(up), down: Float64Array.from(down) };
  };
  const tables = new TableSender(state, downlink, history);

  interface Round {
    m: number;
    started: number;
    before: { up: ByteTally; down: ByteTally };
    upBefore: Map<number, number>;
    downBefore: Map<number, number>;
    planned: ReturnType<PopulationSchedule['next']>;
    participants: number[];
  }

  try {
    // The same mission loop as every other mode, over links that carry the shards' messages in batches.
    await runRounds<Round, PopulationRecord>({ state, journal, intake, merge: 'sum', snapshotEvery: o.snapshotEveryMissions }, {
      // Done above: the byte counts and the client sample's draws, before the shards start.
      restore: () => {},
      next: async (m) => {
        if (m >= o.missions) return undefined;
        const round: Round = {
          m, started: performance.now(), before: resumedBefore ?? { up: meter.totals('up', isLearningTraffic), down: meter.totals('down', isLearningTraffic) },
          upBefore: new Map(), downBefore: new Map(), planned: schedule.next(m), participants: [],
        };
        resumedBefore = undefined;
        current = round;
        written.clear();
        // The interrupted round's record carries the bytes its clients had sent and received before the stop.
        for (const [client, [upCarried, downCarried]] of carried) {
          round.upBefore.set(client, bytesUp[client]! - upCarried);
          round.downBefore.set(client, bytesDown[client]! - downCarried);
        }
        carried.clear();
        const { planned } = round;
        // After a resume, clients whose update for this mission is already merged do not learn it again.
        const redo = planned.participants.map((c) => !journal.delivered(`c${c}`, m));
        const participants = (round.participants = planned.participants.filter((_, k) => redo[k]));
        const assignments = planned.assignments.filter((_, k) => redo[k]);
        participants.forEach((client, k) => {
          if (!round.upBefore.has(client)) {
            round.upBefore.set(client, bytesUp[client]!);
            round.downBefore.set(client, bytesDown[client]!);
          }
          written.set(client, [bytesUp[client]!, bytesDown[client]!]);
          const link = links.client(client);
          if (codebookMessage && !gotCodebook[client]) {
            link.send('codebook', codebookMessage);
            gotCodebook[client] = 1;
          }
          link.send('mission', {
            mission: m, assignment: assignments[k]!.map((a) => ({ classId: a.classId, indices: packU32(a.indices) })), evalClasses: packU32([]),
          });
        });
        // The shards learn; their updates are taken (merged, made durable, acked) as each batch comes back.
        await links.flush();
        return round;
      },
      // The barrier: every update is in and durable. Each participant gets its ack and the changes since its version.
      deliver: async ({ participants }) => {
        for (const client of participants) tables.send(links.client(client));
        await links.flush();
      },
      complete: async (round) => {
        const { m, planned } = round;
        const counted = [...round.upBefore.keys()];
        const classes = state.global.classIds();
        let globalAccuracy: number | null = null;
        let sampledClientAccuracy: number | null = null;
        if (o.evaluator && classes.length > 0) {
          globalAccuracy = accuracyOf(await o.evaluator.evaluate(state.global, classes));
          const sample = sampleRng.sample(planned.participants.length, Math.min(o.clientSample ?? 0, planned.participants.length)).map((k) => planned.participants[k]!);
          if (sample.length > 0) {
            const accuracies = await Promise.all(sample.map(async (c) => accuracyOf(await o.evaluator!.evaluate(await links.held(c), classes))));
            sampledClientAccuracy = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
          }
        }
        const rssBytes = process.memoryUsage().rss;
        peakRssBytes = Math.max(peakRssBytes, rssBytes);
        const mission: PopulationMission = {
          mission: m, participants: planned.participants.length, classesKnown: classes.length, globalAccuracy, sampledClientAccuracy,
          seconds: (performance.now() - round.started) / 1000,
          bytes: { up: addTally(meter.totals('up', isLearningTraffic), round.before.up, -1), down: addTally(meter.totals('down', isLearningTraffic), round.before.down, -1) },
          rssBytes,
        };
        // The record holds the round's bytes: later progress starts from it.
        current = undefined;
        return {
          mission, meter: meter.entries(), participants: Int32Array.from(counted),
          bytesUp: Float64Array.from(counted, (c) => bytesUp[c]! - round.upBefore.get(c)!),
          bytesDown: Float64Array.from(counted, (c) => bytesDown[c]! - round.downBefore.get(c)!),
        };
      },
    }, (record) => {
      missions.push(record.mission);
      o.onMission?.(record.mission, { bytesUp, bytesDown });
    });
    await o.onFinish?.((client) => links.held(client));
  } finally {
    await links.close();
  }
  // The process's real peak (getrusage: worker threads included, and moments between samples).
  peakRssBytes = Math.max(peakRssBytes, process.resourceUsage().maxRSS * 1024);
  return { missions, state, meter, bytesUp, bytesDown, seconds: (performance.now() - started) / 1000, peakRssBytes };
}

function startShards(o: PopulationRunOptions, lastSeq: Int32Array | undefined): ShardHandle[] {
  const count = Math.max(1, Math.min(o.workers > 0 ? o.workers : o.shards ?? 1, o.population));
  const size = Math.ceil(o.population / count);
  return Array.from({ length: count }, (_, i) => {
    const first = i * size;
    const shardSize = Math.min(size, o.population - first);
    const config = {
      first, size: shardSize, dim: o.dim, uplink: o.uplink, downlink: o.downlink, bank: o.bank, labels: o.labels,
      lastSeq: lastSeq?.subarray(first, first + shardSize),
    };
    return o.workers > 0 ? WorkerShard.start(config) : new InThreadShard(config);
  });
}

