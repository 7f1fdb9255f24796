import { prepareRun, trainRunCodebook, type RunOptions, type RunSummary } from '../../coordinator/run-scenario.js';
import { openRunFolder, openRunJournal } from '../../coordinator/saved-run.js';
import { bindCodebook, parseCodecSpec, type CodecSpec } from '../../shared/protocol/codecs/codec-spec.js';
import type { ByteTally } from '../../shared/protocol/byte-accounting.js';
import { PROTOCOL_VERSION, isLearningTraffic } from '../../shared/protocol/messages.js';
import type { Scenario } from '../../shared/scenario/scenario-config.js';
import { tableChecksum } from '../../shared/learning/table-checksum.js';
import { runPopulation, type PopulationMission, type PopulationProgress, type PopulationRecord, type PopulationResult } from './population-run.js';
import { randomBytes } from 'node:crypto';
import { DashboardFeed, type DashboardMission, type DashboardPopulation, type Distribution } from '../../coordinator/dashboard/dashboard-feed.js';
import { DashboardServer } from '../../coordinator/dashboard/dashboard-server.js';
import { checkPopulationFits } from './memory-estimate.js';
import { defaultWorkerCount } from './shard-handle.js';

export interface PopulationSummary {
  scenario: string;
  runId: string;
  /** SHA-256 over the final global table (see RunSummary.tableChecksum). */
  tableChecksum: string;
  /** When this process resumed a saved run: the missions that were already finished, else null. */
  resumedAfterMission: number | null;
  mode: 'population';
  population: number;
  perMission: number;
  workers: number;
  missions: number;
  finalGlobalAccuracy: number | null;
  classesKnown: number;
  /** Learning traffic of the whole run, all clients. */
  /** The learning traffic: what a deployment would send. */
  bytes: { up: ByteTally; down: ByteTally };
  /** Simulation control, counted apart: the missions' sample assignments. */
  simulationControlBytesDown: number;
  bytesByType: ReturnType<PopulationResult['meter']['byType']>;
  /** Encoded bytes per client that took part at least once (the others sent and received nothing). */
  perClient: { clientsReached: number; up: Distribution; down: Distribution };
  secondsPerMission: { mean: number; max: number };
  /** The process's real peak resident set size (getrusage maxRSS: worker threads included). */
  peakRssBytes: number;
  wallSeconds: number;
  dataset: RunSummary['dataset'];
  backbone: RunSummary['backbone'];
  codec: { uplink: string; downlink: string };
  evaluations: { computed: number; shared: number };
}

export type { Distribution };

/**
 * `clients.mode: population`: the scenario's dataset and backbone, every field-class train image
 * embedded once (through the cache) into a bank the worker threads share, then runPopulation.
 * Writes config.json, metrics.jsonl (one record per mission) and summary.json like any run.
 *
 * @example
 * const { summary } = await runPopulationScenario(loadScenarioFile('scenarios/population-1m.yaml'), { outDir: 'results/1m' });
 */
export async function runPopulationScenario(
  scenario: Scenario,
  options: Pick<RunOptions, 'outDir' | 'source' | 'dataDir' | 'log' | 'force' | 'resume' | 'onProgress' | 'dashboard' | 'onDashboard'> & { onMission?: (m: PopulationMission) => void } = {},
): Promise<{ summary: PopulationSummary; result: PopulationResult }> {
  const started = performance.now();
  const { out, saved, runId } = openRunFolder(scenario, options);
  const prepared = await prepareRun(scenario, options);
  const { data, fieldClasses, backbone, evaluator, evaluationMemo } = prepared;
  const dim = backbone.dim;
  const workers = scenario.clients.workers ?? defaultWorkerCount();
  let dashboard: { url: string; close(): Promise<void> } | undefined;
  const perMission = scenario.clients.perMission ?? scenario.clients.count;
  try {
    const estimate = checkPopulationFits({
      population: scenario.clients.count, perMission, missions: scenario.missions.count, workers,
      trainImages: data.train.count, dim, classes: fieldClasses.length,
    });
    options.log?.(`memory estimate for this population: ${(estimate / 2 ** 30).toFixed(2)} GiB`);
    const field = new Set(fieldClasses);
    const indices: number[] = [];
    for (let i = 0; i < data.train.count; i++) if (field.has(data.train.labels[i]!)) indices.push(i);
    options.log?.(`embedding ${indices.length} field-class train images into the shared bank`);
    const embedded = await prepared.embedBulk('train', indices, 'field-class train images for the shared bank');
    const bank = new Float32Array(new SharedArrayBuffer(data.train.count * dim * 4));
    indices.forEach((row, k) => bank.set(embedded.subarray(k * dim, (k + 1) * dim), row * dim));
    const labels = new Int32Array(new SharedArrayBuffer(data.train.count * 4));
    labels.set(data.train.labels);

    const uplinkSpec = parseCodecSpec(scenario.codec.uplink);
    const downlinkSpec = parseCodecSpec(scenario.codec.downlink);
    const codebook = await trainRunCodebook(prepared, uplinkSpec, downlinkSpec, scenario.seed);
    if (!saved) {
      out?.writeConfig({ runId, scenario, source: options.source, dataset: prepared.datasetInfo, backbone: prepared.backboneInfo, fieldClasses,
        protocolVersion: PROTOCOL_VERSION, node: process.version, platform: `${process.platform}-${process.arch}` });
    }
    const bound = (spec: CodecSpec): CodecSpec => (codebook ? bindCodebook(spec, codebook.book) : spec);
    const { journal, resumedAfterMission } = await openRunJournal<PopulationRecord, PopulationProgress>(
      out, options.log ?? (() => {}), dim, {}, bound(uplinkSpec).codec, uplinkSpec.delta ? bound(downlinkSpec).codec : undefined,
    );
    if (saved) out!.rewriteRecords(journal.missions.map((r) => ({ record: 'global', ...r.mission })));
    // The live view of a population: missions, and its clients as distributions (no rows for a million).
    const feed = options.dashboard ? new DashboardFeed({
      runId, scenario: scenario.name, mode: 'population', strategy: scenario.strategy, schedule: scenario.missions.schedule, merge: scenario.missions.merge,
      codec: { uplink: scenario.codec.uplink, downlink: scenario.codec.downlink }, clients: scenario.clients.count, missionLimit: scenario.missions.count,
    }) : undefined;
    for (const r of journal.missions) feed?.addMission(dashboardMission(r.mission));
    dashboard = feed ? await DashboardServer.serveAlone(feed, randomBytes(24).toString('base64url')) : undefined;
    if (dashboard) options.onDashboard?.(dashboard.url);
    feed?.setPhase({ mission: journal.missions.length, phase: 'running' });
    const result = await runPopulation({
      journal,
      population: scenario.clients.count, perMission, missions: scenario.missions.count,
      classesPerClient: scenario.missions.classesPerClient, shotsPerClass: scenario.missions.shotsPerClass, seed: scenario.seed,
      uplink: scenario.codec.uplink, downlink: scenario.codec.downlink, workers, bank, labels, dim, fieldClasses,
      evaluator, clientSample: scenario.evaluation.clientSample ?? 0, codebook: codebook?.bytes,
      onMission: (m, perClient) => {
        out?.appendRecords([{ record: 'global', ...m }]);
        if (feed) {
          feed.addMission(dashboardMission(m));
          feed.setPopulation(populationView(perClient, m.participants));
        }
        options.onMission?.(m);
      },
    }).finally(() => journal.close());
    feed?.setPhase({ mission: result.missions.length, phase: 'finished' });
    const last = result.missions.at(-1);
    // Only the clients reached, never an array as long as the population.
    const reached: number[] = [];
    for (let c = 0; c < result.bytesDown.length; c++) if (result.bytesDown[c]! > 0) reached.push(c);
    const summary: PopulationSummary = {
      scenario: scenario.name, runId, tableChecksum: tableChecksum(result.state.global), resumedAfterMission,
      mode: 'population', population: scenario.clients.count, perMission, workers,
      missions: result.missions.length,
      finalGlobalAccuracy: last?.globalAccuracy ?? null,
      classesKnown: last?.classesKnown ?? 0,
      bytes: { up: result.meter.totals('up', isLearningTraffic), down: result.meter.totals('down', isLearningTraffic) },
      simulationControlBytesDown: result.meter.totals('down', (type) => !isLearningTraffic(type)).encodedBytes,
      bytesByType: result.meter.byType(),
      perClient: {
        clientsReached: reached.length,
        up: distribution(reached.map((c) => result.bytesUp[c]!)),
        down: distribution(reached.map((c) => result.bytesDown[c]!)),
      },
      secondsPerMission: {
        mean: result.missions.reduce((s, m) => s + m.seconds, 0) / Math.max(1, result.missions.length),
        max: Math.max(0, ...result.missions.map((m) => m.seconds)),
      },
      // The real peak of the whole process, this summary included.
      peakRssBytes: Math.max(result.peakRssBytes, process.resourceUsage().maxRSS * 1024),
      wallSeconds: (performance.now() - started) / 1000,
      dataset: prepared.datasetInfo,
      backbone: prepared.backboneInfo,
      codec: { uplink: scenario.codec.uplink, downlink: scenario.codec.downlink },
      evaluations: { computed: evaluationMemo.misses, shared: evaluationMemo.hits },
    };
    out?.writeSummary(summary);
    return { summary, result };
  } finally {
    await dashboard?.close();
    prepared.store.close();
    backbone.dispose();
  }
}

function dashboardMission(m: PopulationMission): DashboardMission {
  return {
    mission: m.mission, classesKnown: m.classesKnown, globalAccuracy: m.globalAccuracy, clientsBefore: null, clientsAfter: m.sampledClientAccuracy,
    bytes: { up: { message: m.bytes.up.encodedBytes, payload: m.bytes.up.payloadBytes }, down: { message: m.bytes.down.encodedBytes, payload: m.bytes.down.payloadBytes } },
    wallMs: m.seconds * 1000,
  };
}

/** The bytes of the clients reached so far, as distributions. */
function populationView(perClient: { bytesUp: Float64Array; bytesDown: Float64Array }, participants: number): DashboardPopulation {
  const up: number[] = [];
  const down: number[] = [];
  for (let c = 0; c < perClient.bytesDown.length; c++) {
    if (perClient.bytesDown[c]! > 0) {
      up.push(perClient.bytesUp[c]!);
      down.push(perClient.bytesDown[c]!);
    }
  }
  return { clientsReached: down.length, participants, bytesUp: distribution(up), bytesDown: distribution(down) };
}

function distribution(values: number[]): Distribution {
  if (values.length === 0) return { mean: 0, p50: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! };
}
