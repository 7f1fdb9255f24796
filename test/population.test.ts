import { describe, expect, it } from 'vitest';
import { applyTableMessage } from '../client/apply-table.js';
import { tableMessage } from '../coordinator/federation/table-message.js';
import { parseCodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import { encodePqCodebook, trainPqCodebook } from '../shared/protocol/codecs/index.js';
import { PROTOCOL_VERSION, isLearningTraffic } from '../shared/protocol/messages.js';
import { validateCoordinatorMessage } from '../shared/protocol/validation.js';
import { PrototypeTable } from '../shared/learning/prototype-table.js';
import { SeededRng } from '../shared/learning/rng.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';
import { runPopulation, type PopulationProgress, type PopulationRecord, type PopulationResult, type PopulationRunOptions } from '../simulation/population/population-run.js';
import { RunJournal } from '../coordinator/federation/run-journal.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { tableChecksum } from '../shared/learning/table-checksum.js';
import { MemoryStore } from './support/memory-store.js';
import { PopulationSchedule } from '../simulation/population/population-schedule.js';
import { checkPopulationFits, estimatePopulationBytes } from '../simulation/population/memory-estimate.js';
import { runPopulationScenario } from '../simulation/population/population-scenario.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';

const DIM = 8;
const CLASSES = 30;
const PER_CLASS = 20;

/** A synthetic train split: 20 embeddings per class around a class centre, in shared memory. */
function bank(): { bank: Float32Array; labels: Int32Array } {
  const rng = new SeededRng(5);
  const n = CLASSES * PER_CLASS;
  const embeddings = new Float32Array(new SharedArrayBuffer(n * DIM * 4));
  const labels = new Int32Array(new SharedArrayBuffer(n * 4));
  for (let i = 0; i < n; i++) {
    labels[i] = i % CLASSES;
    for (let d = 0; d < DIM; d++) embeddings[i * DIM + d] = (labels[i]! % 7) - 3 + (rng.next() - 0.5);
  }
  return { bank: embeddings, labels };
}

function options(overrides: Partial<PopulationRunOptions> = {}): PopulationRunOptions {
  const { bank: b, labels } = bank();
  return {
    population: 500, perMission: 40, missions: 6, classesPerClient: 2, shotsPerClass: 3, seed: 11,
    uplink: 'f64', downlink: 'f64', workers: 0, bank: b, labels, dim: DIM,
    fieldClasses: Array.from({ length: CLASSES }, (_, c) => c), ...overrides,
  };
}

/** What every sampled client learned, summed centrally. */
function centralized(o: PopulationRunOptions): PrototypeTable {
  const schedule = new PopulationSchedule(o.labels, o.fieldClasses, o, o.seed);
  const t = new PrototypeTable(DIM);
  for (let m = 0; m < o.missions; m++) {
    for (const assignment of schedule.next(m).assignments) {
      for (const a of assignment) for (const i of a.indices) t.addEmbeddings(a.classId, o.bank.subarray(i * DIM, (i + 1) * DIM), 1);
    }
  }
  return t;
}

function maxDiff(a: PrototypeTable, b: PrototypeTable): number {
  let worst = 0;
  expect(a.classIds()).toEqual(b.classIds());
  for (const id of a.classIds()) {
    expect(a.get(id)!.count).toBe(b.get(id)!.count);
    const pa = a.prototype(id)!;
    const pb = b.prototype(id)!;
    for (let d = 0; d < DIM; d++) worst = Math.max(worst, Math.abs(pa[d]! - pb[d]!));
  }
  return worst;
}

describe('a large virtual population', () => {
  it('merges exactly what the sampled clients learned, and counts every byte it sends to exactly the participants', async () => {
    const o = options();
    const result = await runPopulation(o);
    expect(maxDiff(result.state.global, centralized(o))).toBeLessThan(1e-9);
    expect(result.missions).toHaveLength(6);
    const byType = result.meter.byType();
    expect(byType.up.update!.messages).toBe(6 * 40);
    expect(byType.down.mission!.messages).toBe(6 * 40);
    expect(byType.down.ack!.messages).toBe(6 * 40);
    // Each participant gets a table (something changed since it last heard), at most once per mission.
    expect(byType.down.table!.messages).toBe(6 * 40);
    const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
    expect(sum(result.bytesUp)).toBe(result.meter.totals('up').encodedBytes);
    // Per client, the learning traffic: the missions' sample assignments are simulation control.
    expect(sum(result.bytesDown)).toBe(result.meter.totals('down', isLearningTraffic).encodedBytes);
    expect(byType.down['mission-control']!.encodedBytes).toBe(result.meter.totals('down').encodedBytes - sum(result.bytesDown));
    const schedule = new PopulationSchedule(o.labels, o.fieldClasses, o, o.seed);
    const everSampled = new Set(Array.from({ length: 6 }, (_, m) => schedule.next(m).participants).flat());
    for (let c = 0; c < o.population; c++) expect(result.bytesDown[c]! > 0, `client ${c}`).toBe(everSampled.has(c));
  });

  it('clients that reach a version by different paths hold the same table: the one a newcomer decodes from scratch', async () => {
    const last = new Map<number, PrototypeTable>();
    const o = options({
      shards: 4, uplink: 'int8', downlink: 'int8',
      onFinish: async (held) => {
        for (const c of new PopulationSchedule(bank().labels, o.fieldClasses, o, o.seed).next(o.missions - 1).participants) last.set(c, await held(c));
      },
    });
    const result = await runPopulation(o);
    // The coordinator's tables are exact; clients hold the int8 tables.
    const newcomer = new PrototypeTable(DIM);
    const frame = encodeMessage({ v: PROTOCOL_VERSION, ...tableMessage(result.state, 0, parseCodecSpec('int8')) });
    applyTableMessage(newcomer, 0, validateCoordinatorMessage.table(decodeMessage(frame)), parseCodecSpec('int8').codec);
    expect(maxDiff(newcomer, result.state.global)).toBeGreaterThan(0);
    expect(maxDiff(newcomer, result.state.global)).toBeLessThan(0.05);
    expect(result.missions.at(-1)!.bytes.up.payloadBytes).toBe(40 * 2 * (8 + DIM));
    // The last mission's participants, in four shards that each built their tables from their own
    // clients' versions, all hold exactly the newcomer's table.
    expect(new Set([...last.keys()].map((c) => Math.floor(c / 125))).size).toBe(4);
    for (const [client, table] of last) {
      expect(table.classIds(), `client ${client}`).toEqual(newcomer.classIds());
      for (const id of table.classIds()) expect(Array.from(table.get(id)!.sum)).toEqual(Array.from(newcomer.get(id)!.sum));
    }
  });

  it('worker threads give the same table and the same bytes as one thread', async () => {
    const inThread = await runPopulation(options({ uplink: 'int8', downlink: 'f16' }));
    const inWorker = await runPopulation(options({ uplink: 'int8', downlink: 'f16', workers: 2 }));
    expect(maxDiff(inWorker.state.global, inThread.state.global)).toBe(0);
    expect(inWorker.meter.byType()).toEqual(inThread.meter.byType());
    expect([...inWorker.bytesDown]).toEqual([...inThread.bytesDown]);
  });

  it('delta+ uplinks add back what each client holds: exact through f64', async () => {
    const o = options({ uplink: 'delta+f64', downlink: 'int8', workers: 1 });
    const result = await runPopulation(o);
    expect(maxDiff(result.state.global, centralized(o))).toBeLessThan(1e-9);
  });

  it('pq: each client is sent the codebook once, before its first mission, and it is counted', async () => {
    const { bank: b, labels } = bank();
    const book = encodePqCodebook(trainPqCodebook(b, labels.length, DIM, { subspaces: 4, centroids: 16, seed: 1 }));
    const o = options({ uplink: 'pq-4x16', downlink: 'pq-4x16', codebook: book, workers: 1 });
    const result = await runPopulation(o);
    const reached = result.bytesDown.filter((x) => x > 0).length;
    expect(result.meter.byType().down.codebook).toMatchObject({ messages: reached, payloadBytes: reached * book.byteLength });
    expect(result.missions.at(-1)!.bytes.up.payloadBytes).toBe(40 * 2 * 4);
    // Quantised, but near the centralized means (a bad codebook or binding would be far off).
    expect(maxDiff(result.state.global, centralized(o))).toBeLessThan(0.3);
    await expect(runPopulation(options({ uplink: 'pq-4x16' }))).rejects.toThrow(/needs its codebook/);
  });

  it('refuses impossible settings with a reason', async () => {
    await expect(runPopulation(options({ perMission: 501 }))).rejects.toThrow(/clients per mission must be an integer in 1..500/);
    await expect(runPopulation(options({ shotsPerClass: 21 }))).rejects.toThrow(/fewer than 21 train images/);
    await expect(runPopulation(options({ uplink: 'zip' }))).rejects.toThrow(/Unknown codec "zip"/);
  });

  it('refuses a population whose memory estimate exceeds the machine, before it starts', async () => {
    const shape = { population: 1e6, perMission: 1e4, missions: 50, workers: 2, trainImages: 40_000, dim: 64, classes: 750 };
    // population-1m (one worker here) peaked at 1.76 GiB (maxRSS); the estimate is an upper one, within 2×.
    expect(estimatePopulationBytes({ ...shape, workers: 1 }) / 2 ** 30).toBeGreaterThan(1.76);
    expect(estimatePopulationBytes({ ...shape, workers: 1 }) / 2 ** 30).toBeLessThan(3.5);
    expect(() => checkPopulationFits({ ...shape, missions: 1e9 }, 24 * 2 ** 30)).toThrow(/needs about \d+(\.\d)? GiB of memory, but the machine has 24.0 GiB .*1,000,000,000 missions/);
    expect(() => checkPopulationFits({ ...shape, population: 1e10 }, 24 * 2 ** 30)).toThrow(/10,000,000,000 clients/);
    expect(checkPopulationFits(shape, 24 * 2 ** 30)).toBe(estimatePopulationBytes(shape));
    const scenario = parseScenario({
      name: 'too-long', seed: 1, dataset: { name: 'fashion-mnist', dir: 'embedded' }, backbone: { name: 'pixels' },
      clients: { mode: 'population', count: 1000, perMission: 10 }, missions: { count: 1e9, classesPerClient: 1, shotsPerClass: 2 },
    });
    const started = Date.now();
    await expect(runPopulationScenario(scenario)).rejects.toThrow(/population mode: this scenario needs about .* GiB .*lower clients.count, clients.perMission or missions.count/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

/** A store that dies (every flush fails from then on) at the first flush that `fatal` picks, as a process killed mid-write. */
class CrashingStore extends MemoryStore {
  private crashed = false;
  constructor(private readonly fatal: (pending: Uint8Array[]) => boolean) {
    super();
  }

  override flush(): Promise<void> {
    if (this.crashed || this.fatal(this.pendingRecords)) {
      this.crashed = true;
      return Promise.reject(new Error('the coordinator was killed'));
    }
    return super.flush();
  }
}

/** The mission of a journal update record (kind 1: `u8 kind · u8 form · u16 id length · id · f64 seq · i32 mission ...`), else undefined. */
function updateMission(record: Uint8Array): number | undefined {
  if (record[0] !== 1) return undefined;
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  return view.getInt32(4 + view.getUint16(2, true) + 8, true);
}

describe('a population run killed in the middle of a mission', () => {
  it('resumes to the same table, and loses none of the bytes counted up to its last durable write', async () => {
    const journalOn = (store: MemoryStore) => RunJournal.open<PopulationRecord, PopulationProgress>(store, DIM, { keepContributions: true }, getCodec('int8')).journal;
    const o = (store: MemoryStore) => options({ uplink: 'int8', downlink: 'int8', batchSize: 10, journal: journalOn(store) });
    const fine = await runPopulation(o(new MemoryStore()));
    // Dies writing the third batch of mission 3's updates: two batches of it are durable and acked.
    let durableOf3 = 0;
    const store = new CrashingStore((pending) => {
      const of3 = pending.filter((r) => updateMission(r) === 3).length;
      if (of3 > 0 && durableOf3 >= 20) return true;
      durableOf3 += of3;
      return false;
    });
    await expect(runPopulation(o(store))).rejects.toThrow(/killed/);
    expect(durableOf3).toBe(20);
    const resumed = await runPopulation(o(store.reopen()));
    expect(tableChecksum(resumed.state.global)).toBe(tableChecksum(fine.state.global));
    // The 20 updates acked before the crash are not sent again, and are still counted (the 10 that
    // died with the crash are counted when they are sent again). The 20 clients without an ack
    // are sent their mission again: 20 more assignments.
    const byType = (r: PopulationResult) => r.meter.byType();
    expect(byType(resumed).up.update!.messages).toBe(byType(fine).up.update!.messages);
    expect(resumed.missions[3]!.bytes.up).toEqual(fine.missions[3]!.bytes.up);
    expect(byType(resumed).down.mission!.messages).toBe(byType(fine).down.mission!.messages + 20);
    // Per client, the same bytes as the meter, across the restart.
    const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
    expect(sum(resumed.bytesUp)).toBe(resumed.meter.totals('up').encodedBytes);
    expect(sum(resumed.bytesDown)).toBe(resumed.meter.totals('down', isLearningTraffic).encodedBytes);
    for (let m = 0; m < 3; m++) expect(resumed.missions[m]!.bytes).toEqual(fine.missions[m]!.bytes);
  });
});
