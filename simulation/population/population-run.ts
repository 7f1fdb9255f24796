import { FederationState } from '../../coordinator/federation/federation-state.js';
import { decodeUpdate } from '../../coordinator/federation/update-intake.js';
import { DownlinkHistory } from '../../coordinator/federation/downlink-history.js';
import { tableMessage } from '../../coordinator/federation/table-message.js';
import { ByteMeter, addTally, type ByteTally } from '../../shared/protocol/byte-accounting.js';
import { bindCodebook, parseCodecSpec, type CodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import { decodePqCodebook } from '../../shared/protocol/codecs/index.js';
import { accuracyOf } from '../../shared/learning/metrics/class-accuracy.js';
import { PROTOCOL_VERSION, packU32, payloadBytes } from '../../shared/protocol/messages.js';
import { validateClientMessage } from '../../shared/protocol/validation.js';
import type { PrototypeTable } from '../../shared/learning/prototype-table.js';
import { SeededRng } from '../../shared/learning/rng.js';
import type { HeldOutEvaluator } from '../../shared/learning/held-out-evaluator.js';
import { decodeMessage, encodeMessage } from '../../shared/protocol/wire-format.js';
import { frameAt, packFrames } from './frame-batch.js';
import { PopulationSchedule } from './population-schedule.js';
import { InThreadShard, WorkerShard, type ShardHandle } from './shard-handle.js';

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
  /** Clients per batch handed to a shard: batches overlap the shards' work with the coordinator's. */
  batchSize?: number;
  onMission?: (record: PopulationMission) => void;
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

export interface PopulationResult {
  missions: PopulationMission[];
  state: FederationState;
  meter: ByteMeter;
  /** Encoded bytes each client sent and received (learning traffic), by client index. */
  bytesUp: Float64Array;
  bytesDown: Float64Array;
  seconds: number;
  /** The highest resident set size sampled after each mission (worker threads included). */
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
  const codebookFrame = o.codebook ? encodeMessage({ v: PROTOCOL_VERSION, codebook: o.codebook }) : undefined;
  /** Clients that have been sent the codebook. */
  const gotCodebook = new Uint8Array(codebookFrame ? o.population : 0);
  /** What the clients hold, for a `delta+` uplink. */
  const history = uplink.delta ? new DownlinkHistory(o.dim) : undefined;
  const schedule = new PopulationSchedule(o.labels, o.fieldClasses, o, o.seed);
  const state = new FederationState(o.dim, { keepContributions: o.keepContributions ?? true });
  const meter = new ByteMeter();
  const bytesUp = new Float64Array(o.population);
  const bytesDown = new Float64Array(o.population);
  /** The table version the coordinator has sent each client. */
  const sentVersion = new Int32Array(o.population);
  const shards = startShards(o);
  const shardOf = (client: number): number => Math.min(shards.length - 1, Math.floor(client / shards[0]!.size));
  const scratch = { means: new Float64Array(0) };
  const sampleRng = new SeededRng(o.seed).fork('population-client-sample');
  const batchSize = o.batchSize ?? 2000;
  const missions: PopulationMission[] = [];
  let peakRssBytes = process.memoryUsage().rss;

  const down = (client: number, type: string, frame: Uint8Array, payload = 0): void => {
    meter.count('down', type, payload, frame.byteLength);
    bytesDown[client]! += frame.byteLength;
  };

  try {
    for (let m = 0; m < o.missions; m++) {
      const missionStarted = performance.now();
      const before = { up: meter.totals('up'), down: meter.totals('down') };
      const { participants, assignments } = schedule.next(m);
      // Mission messages, batched per shard.
      const batches: { shard: number; clients: number[]; frames: Uint8Array[]; codebookOf: number[] }[] = [];
      participants.forEach((client, k) => {
        const sendCodebook = codebookFrame !== undefined && !gotCodebook[client];
        if (sendCodebook) {
          down(client, 'codebook', codebookFrame, o.codebook!.byteLength);
          gotCodebook[client] = 1;
        }
        const frame = encodeMessage({
          v: PROTOCOL_VERSION, mission: m,
          assignment: assignments[k]!.map((a) => ({ classId: a.classId, indices: packU32(a.indices) })),
          evalClasses: packU32([]),
        });
        down(client, 'mission', frame);
        const shard = shardOf(client);
        let batch = batches.at(-1);
        if (!batch || batch.shard !== shard || batch.clients.length >= batchSize) batches.push((batch = { shard, clients: [], frames: [], codebookOf: [] }));
        batch.clients.push(client);
        batch.frames.push(frame);
        batch.codebookOf.push(sendCodebook ? 0 : 1);
      });
      // All batches go out at once; the coordinator merges each as it comes back.
      const learned = batches.map((b) => shards[b.shard]!.learn(
        Int32Array.from(b.clients), packFrames(b.frames), codebookFrame ? Uint8Array.from(b.codebookOf) : undefined, codebookFrame,
      ));
      const acks = new Map<number, Uint8Array>();
      for (let b = 0; b < batches.length; b++) {
        const updates = await learned[b]!;
        const clients = batches[b]!.clients;
        for (let k = 0; k < clients.length; k++) {
          const client = clients[k]!;
          const frame = frameAt(updates, k);
          const update = validateClientMessage.update(decodeMessage(frame));
          meter.count('up', 'update', update.classes.payloadBytes, frame.byteLength);
          bytesUp[client]! += frame.byteLength;
          const decoded = decodeUpdate(update, { codec: uplink.codec, dim: o.dim, delta: history }, scratch);
          const { applied, version } = state.applyUpdate(`c${client}`, update.seq, decoded);
          acks.set(client, encodeMessage({ v: PROTOCOL_VERSION, seq: update.seq, version, duplicate: !applied }));
        }
      }
      // The barrier: every update is in. Each participant gets its ack and the changes since its version.
      const tableIndex = new Map<number, number>();
      const tables: Uint8Array[] = [];
      const tablePayload: number[] = [];
      const deliveries = batches.map((b) => {
        const tableOf = new Int32Array(b.clients.length);
        const ackFrames = b.clients.map((client, k) => {
          const ack = acks.get(client)!;
          down(client, 'ack', ack);
          const from = sentVersion[client]!;
          if (from >= state.version) {
            tableOf[k] = -1;
          } else {
            let t = tableIndex.get(from);
            if (t === undefined) {
              tableIndex.set(from, (t = tables.length));
              const message = tableMessage(state, from, downlink, history);
              tables.push(encodeMessage({ v: PROTOCOL_VERSION, ...message }));
              tablePayload.push(payloadBytes(message));
            }
            tableOf[k] = t;
            down(client, 'table', tables[t]!, tablePayload[t]);
            sentVersion[client] = state.version;
          }
          return ack;
        });
        return { batch: b, tableOf, acks: packFrames(ackFrames) };
      });
      const tableBatch = packFrames(tables);
      await Promise.all(deliveries.map((d) => shards[d.batch.shard]!.deliver(Int32Array.from(d.batch.clients), d.acks, d.tableOf, tableBatch)));

      const classes = state.global.classIds();
      let globalAccuracy: number | null = null;
      let sampledClientAccuracy: number | null = null;
      if (o.evaluator && classes.length > 0) {
        globalAccuracy = accuracyOf(await o.evaluator.evaluate(state.global, classes));
        const sample = sampleRng.sample(participants.length, Math.min(o.clientSample ?? 0, participants.length)).map((k) => participants[k]!);
        if (sample.length > 0) {
          const accuracies = await Promise.all(sample.map(async (c) => accuracyOf(await o.evaluator!.evaluate(await shards[shardOf(c)]!.held(c), classes))));
          sampledClientAccuracy = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
        }
      }
      const rssBytes = process.memoryUsage().rss;
      peakRssBytes = Math.max(peakRssBytes, rssBytes);
      const record: PopulationMission = {
        mission: m, participants: participants.length, classesKnown: classes.length, globalAccuracy, sampledClientAccuracy,
        seconds: (performance.now() - missionStarted) / 1000,
        bytes: { up: addTally(meter.totals('up'), before.up, -1), down: addTally(meter.totals('down'), before.down, -1) },
        rssBytes,
      };
      missions.push(record);
      o.onMission?.(record);
    }
    await o.onFinish?.((client) => shards[shardOf(client)]!.held(client));
  } finally {
    await Promise.all(shards.map((s) => s.close()));
  }
  return { missions, state, meter, bytesUp, bytesDown, seconds: (performance.now() - started) / 1000, peakRssBytes };
}

function startShards(o: PopulationRunOptions): ShardHandle[] {
  const count = Math.max(1, Math.min(o.workers > 0 ? o.workers : o.shards ?? 1, o.population));
  const size = Math.ceil(o.population / count);
  return Array.from({ length: count }, (_, i) => {
    const config = { first: i * size, size: Math.min(size, o.population - i * size), dim: o.dim, uplink: o.uplink, downlink: o.downlink, bank: o.bank, labels: o.labels };
    return o.workers > 0 ? WorkerShard.start(config) : new InThreadShard(config);
  });
}

