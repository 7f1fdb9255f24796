import { bindCodebook, parseCodecSpec, pqShape, type CodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import { encodePqCodebook, trainPqCodebook, type PqCodebook } from '../shared/protocol/codecs/index.js';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import type { LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import { indicesByClass } from '../shared/datasets/image-set.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { isLearningTraffic, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { ByteMeter, type ByteTally } from '../shared/protocol/byte-accounting.js';
import { linkFor, type LinkModel } from './link-model.js';
import type { Backbone } from '../shared/embedding/backbone.js';
import { CONV4_NORMALIZATION } from '../shared/embedding/backbone-registry.js';
import { basename, dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { checkScenarioAgainstDataset, type Scenario } from '../shared/scenario/scenario-config.js';
import { HeldOutEvaluator } from '../shared/learning/held-out-evaluator.js';
import { defaultCacheDir, EmbeddingStore } from '../shared/embedding/embedding-store.js';
import { rankMe } from '../shared/learning/metrics/rankme.js';
import { EvaluationMemo } from '../shared/learning/evaluation-memo.js';
import { EmbeddingPool } from '../shared/embedding/embedding-pool.js';
import { cpus } from 'node:os';
import { CoordinatorServer } from './transport/coordinator-server.js';
import { ClassIncrementalSchedule } from './schedules/class-incremental.js';
import { DirichletSchedule } from './schedules/dirichlet.js';
import { OverlappingSchedule } from './schedules/overlapping.js';
import { StreamSchedule } from './schedules/stream.js';
import { FedReconSchedule } from './schedules/fed-recon.js';
import { FederationState } from './federation/federation-state.js';
import { MissionRunner, type MissionRecord, type MissionResult, type RunOutcome } from './federation/mission-runner.js';
import type { BytesProgress } from './federation/bytes-progress.js';
import { ProcessSpawner } from './process-spawner.js';
import { RemoteClients } from './remote-clients.js';
import { modelFiles, runSetupHandler } from './transport/run-setup-endpoint.js';
import { MODEL_PATH, type RunSetup } from '../shared/protocol/run-setup.js';
import { channelConnection } from './transport/client-connection.js';
import type { ClientLauncherFactory, LaunchContext } from './client-launcher.js';
import { ChannelEnd } from '../shared/protocol/in-memory-channel.js';
import { ClientKeys } from '../shared/protocol/client-keys.js';
import { createHash, randomBytes } from 'node:crypto';
import { adminHandler } from './transport/admin-endpoint.js';
import { DashboardFeed } from './dashboard/dashboard-feed.js';
import { DASHBOARD_PATH, DashboardServer } from './dashboard/dashboard-server.js';
import { joinPageHandler } from './join/join-page-server.js';
import { encodeDatasetPack } from '../shared/datasets/dataset-pack.js';
import { gzipSync } from 'node:zlib';
import { runMessageLimit } from '../shared/protocol/message-limits.js';
import { datasetIdentity, type DatasetIdentity } from '../shared/datasets/dataset-identity.js';
import { tableChecksum } from '../shared/learning/table-checksum.js';
import { openRunFolder, openRunJournal } from './saved-run.js';
import { strategyNamed } from '../shared/strategies/registry.js';

export interface RunOptions {
  /** Results folder; nothing is written when absent. It must not hold a run already, unless `resume` or `force`. */
  outDir?: string | undefined;
  /** Go on with the run saved in `outDir` (its journal in state/); `scenario` must be the saved one. */
  resume?: boolean | undefined;
  /** Replace a run already in `outDir`. */
  force?: boolean | undefined;
  /** Where the scenario came from, for error messages and the record. */
  source?: string;
  /** Overrides `dataset.dir`. */
  dataDir?: string | undefined;
  onMission?: (result: MissionResult) => void;
  log?: (line: string) => void;
  clientStderr?: NodeJS.WritableStream;
  /**
   * How to start clients of each mode; process mode forks by default. Virtual clients live in
   * simulation/ (they run the client code in this process), so the caller supplies them.
   */
  launchers?: Partial<Record<Scenario['clients']['mode'], ClientLauncherFactory>>;
  /** Where the socket.io server listens; a free loopback port when absent. */
  listen?: { host: string; port: number };
  /** Serve the clients over TLS (remote mode): the coordinator's certificate and key, PEM; with clientCa, mutual TLS. */
  tls?: { cert: string; key: string; clientCa?: string | undefined } | undefined;
  /** Each client's key; fresh random ones when absent (process and virtual clients are handed theirs). */
  keys?: ClientKeys;
  /** Serve a live dashboard of the run on the coordinator's port; its URL, with the viewer key, goes to onDashboard. */
  dashboard?: boolean;
  onDashboard?: (url: string) => void;
  /** Progress of long work before the clients start (embedding images in bulk, through the cache). */
  onProgress?: (p: BulkProgress) => void;
  /** Called with the coordinator's URL once it listens. */
  onListening?: (url: string) => void;
  /** Called once the coordinator is listening, before any client starts (instrumentation and fault tests). */
  onCoordinator?: (server: CoordinatorServer, state: FederationState) => void;
}

export interface RunSummary {
  scenario: string;
  /** The run's id; a resumed run keeps it. */
  runId: string;
  /**
   * SHA-256 over the global table (class ids ascending, counts, float64 sums, little-endian; see
   * shared/learning/table-checksum.ts). Two runs ended with the same table exactly when these are equal.
   */
  tableChecksum: string;
  /** When this process resumed a saved run: the missions that were already finished, else null. */
  resumedAfterMission: number | null;
  /** The global table's accuracy at the end, late updates included. */
  finalGlobalAccuracy: number;
  /** Updates that missed their mission's deadline (merged when they came). */
  lateUpdates: number;
  /** Owed updates that never came (dropped-out clients), by client and mission. */
  lostUpdates: { clientId: string; mission: number }[];
  /** With a link model: the simulated transfer time of the whole run (slowest client per mission), beside wallSeconds. */
  simulatedTransferSeconds: number | null;
  /** Each client's link as drawn from the scenario's `link` (null without one). */
  links: Record<string, LinkModel> | null;
  /** Encoded msgpack bytes of the learning traffic (what a deployment would send; simulation control apart), all clients, whole run. */
  bytesUp: number;
  bytesDown: number;
  /**
   * Bytes on the wire, measured on each client's TCP socket after the run (all traffic: framing,
   * handshakes, pings and evaluation reports included); null in virtual mode, which has no sockets.
   */
  wireBytesUp: number | null;
  wireBytesDown: number | null;
  /**
   * Traffic of peers that never authenticated (refused hellos, setup requests without a valid
   * key): measured on their sockets and HTTP answers, never counted against a client.
   */
  unauthenticatedBytes: { up: number; down: number; setupDown: number };
  /** Updates the coordinator refused (not the work assigned, malformed, out of order), by client: a client with any is misbehaving or broken. */
  refusedUpdates: Record<string, number>;
  /** Clients that left the run with their data (leave message, or protofed forget): their statistics are unlearned. */
  leftClients: string[];
  /** The robust merge's bounds and the class means it clipped, by client (since the run last started); null without one. */
  robust: { maxNorm?: number | undefined; maxDeviation?: number | undefined; clippedByClient: Record<string, number> } | null;
  /**
   * Encoded bytes of simulation control, counted apart from what a deployment would send:
   * evaluation requests and reports, and the sample assignments and evaluation class lists inside
   * mission messages (`mission-control` in bytesByType; the mission signal itself is learning traffic).
   */
  simulationControlBytesUp: number;
  simulationControlBytesDown: number;
  /** Codec payload bytes (the encoded vectors), all clients, whole run. */
  payloadBytesUp: number;
  payloadBytesDown: number;
  /**
   * The learning traffic in its WebSocket frames: exact per message in every mode, virtual included
   * (the framing is deterministic; see shared/protocol/socket-parser.ts). The measured wire bytes add the
   * connection set-up, pings and evaluation traffic on top.
   */
  frameBytesUp: number;
  frameBytesDown: number;
  /** Records in metrics.jsonl: missions (sync), or table broadcasts (async merging). */
  missions: number;
  endReason: RunOutcome['endReason'];
  classesKnown: number;
  averageIncrementalAccuracy: number;
  forgetting: { kind: 'chaudhry-max'; value: number };
  backwardTransfer: number;
  accuracyMatrix: (number | null)[][];
  restarts: { clientId: string; attempt: number; why: string }[];
  bytesByClient: Record<string, { up: number; down: number; payloadUp: number; payloadDown: number }>;
  bytesByType: Record<'up' | 'down', Record<string, ByteTally>>;
  dataset: { name: string; kind: string; source: string; train: number; test: number };
  backbone: { name: string; dim: number; modelHash: string; tensorBackend: string; rankMe: number; rankMeOf: string };
  /** Table evaluations computed in the coordinator's process, and those answered from an identical table's (virtual clients). */
  evaluations: { computed: number; shared: number };
  /** Embeddings the coordinator computed or read from the cache (clients count their own). */
  embeddings: {
    computed: number; fromCache: number; cacheDir: string | null; secondsBeforeClients: number; threads: number;
    /** What the client processes computed and read from the cache, as their last reports said. */
    clients: { computed: number; fromCache: number };
  };
  codec: { uplink: string; downlink: string };
  wallSeconds: number;
}

export interface RunResult {
  summary: RunSummary;
  outcome: RunOutcome;
  state: FederationState;
  data: LabelledDataset;
}

/**
 * Runs a scenario: a socket.io coordinator (on a free loopback port unless told otherwise), its
 * clients as forked processes, virtual clients in this process, or remote clients that join, and
 * every mission; then the summary (and, with `outDir`, the results folder).
 *
 * @example
 * const { summary } = await runScenario(loadScenarioFile('scenarios/fashion-mnist.yaml'), { outDir: 'results/x' });
 */
export async function runScenario(scenario: Scenario, options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  if (scenario.clients.mode === 'population') throw new Error('clients.mode: population runs with runPopulationScenario (simulation/population)');
  const { out, saved, runId } = openRunFolder(scenario, options);
  const strategy = strategyNamed(scenario.strategy);
  const prepared = await prepareRun(scenario, options);
  const { data, datasetSpec, fieldClasses, backbone, store, evaluationMemo, evaluator, cacheDir, threads, embedSeconds, datasetInfo, backboneInfo } = prepared;
  let uplink = parseCodecSpec(scenario.codec.uplink);
  let downlink = parseCodecSpec(scenario.codec.downlink);
  const codebook = await trainRunCodebook(prepared, uplink, downlink, scenario.seed);
  if (codebook) {
    uplink = bindCodebook(uplink, codebook.book);
    downlink = bindCodebook(downlink, codebook.book);
  }
  const clientIds = Array.from({ length: scenario.clients.count }, (_, i) => `c${i}`);
  const keys = options.keys ?? ClientKeys.generate(clientIds);
  const unkeyed = clientIds.filter((id) => !keys.has(id));
  if (unkeyed.length > 0) throw new Error(`the keys file has no key for client(s) ${unkeyed.slice(0, 5).join(', ')}${unkeyed.length > 5 ? ', …' : ''}; make one for every client (protofed keys --clients c0..c${clientIds.length - 1})`);
  // Traffic of peers that never authenticated: counted, but never against a client.
  const strangers = { setupBytes: 0 };
  // The federation state, from the journal (empty for a new run); every change to it is recorded.
  const { journal, state, resumedAfterMission: resumedAfter } = await openRunJournal<MissionRecord, BytesProgress>(out, log, strategy.tableDim(backbone.dim), {
    merge: strategy.merge,
    // Averaged rounds replace classes: there is no contribution of one client to subtract.
    keepContributions: strategy.merge === 'sum',
    clip: scenario.robust,
  }, uplink.codec, uplink.delta ? downlink.codec : undefined);
  const schedules = {
    'fed-recon': () => new FedReconSchedule(data.train.labels, fieldClasses, clientIds.length, scenario.missions, scenario.seed, scenario.missions.fixedClassOrder),
    'class-incremental': () => new ClassIncrementalSchedule(data.train.labels, fieldClasses, clientIds.length, scenario.missions, scenario.seed, scenario.missions.fixedClassOrder),
    dirichlet: () => new DirichletSchedule(data.train.labels, fieldClasses, clientIds.length, scenario.missions, scenario.seed, scenario.missions.alpha),
    overlapping: () => new OverlappingSchedule(data.train.labels, fieldClasses, clientIds.length, scenario.missions, scenario.seed, scenario.missions.lag, scenario.missions.fixedClassOrder),
    stream: () => new StreamSchedule(data.train.labels, fieldClasses, clientIds.length, scenario.missions, scenario.seed, scenario.missions.fixedClassOrder),
  };
  const schedule = schedules[scenario.missions.schedule]();
  const links = scenario.link ? Object.fromEntries(clientIds.map((id) => [id, linkFor(scenario.link!, scenario.seed, id)])) : null;

  const { setup, modelDir } = remoteSetup(scenario, backbone, uplink.spec, downlink.spec, () => datasetIdentity(data));
  const remote = scenario.clients.mode === 'remote';
  const setupEndpoint = runSetupHandler(setup, keys, modelDir, (id, bytes) => {
    if (id !== undefined && clientIds.includes(id)) server.meter(id).count('down', 'setup', 0, bytes);
    else strangers.setupBytes += bytes;
  }, options.tls?.clientCa !== undefined, remote && scenario.clients.serveDataset ? datasetPackOf(data) : undefined);
  // Remote runs serve the page that joins them from a web browser (coordinator/join/).
  const joinPage = remote ? joinPageHandler(log) : undefined;
  let dashboard: DashboardServer | undefined;
  // The operator's key: `protofed forget` on this results folder reaches the running coordinator with it.
  const adminKey = randomBytes(32).toString('base64url');
  let runner: MissionRunner | undefined;
  const admin = adminHandler(adminKey, {
    forget: (id) => runner?.forget(id, 'was forgotten by the operator').then((r) => ({
      tableVersion: r.version, tableChecksum: tableChecksum(state.global), alreadyGone: r.alreadyGone,
    })),
  });
  const server: CoordinatorServer = new CoordinatorServer({
    host: options.listen?.host ?? '127.0.0.1', port: options.listen?.port ?? 0, keys, tls: options.tls, dim: backbone.dim, modelHash: backbone.modelHash,
    uplinkCodec: uplink.spec, downlinkCodec: downlink.spec, strategy: scenario.strategy, codebook: codebook?.bytes,
    headTraining: strategy.train ? scenario.fedavgHead : undefined,
    lastAppliedSeq: (id) => state.lastAppliedSeq(id),
    maxMessageBytes: runMessageLimit({
      tableDim: strategy.tableDim(backbone.dim), uplinkStride: uplink.codec.encodedLength(strategy.tableDim(backbone.dim)),
      classes: data.classNames.length, maxEntries: strategy.updateEntries === 'examples' ? data.train.count : undefined,
    }),
    runId,
    tableVersion: () => state.version,
    hasLeft: (id) => state.hasLeft(id),
    httpHandler: (req, res) => admin(req, res) || dashboard?.handle(req, res) || joinPage?.(req, res) || setupEndpoint(req, res),
  });
  if (saved) {
    out!.rewriteMissions(journal.missions.map((r) => r.result));
  } else {
    out?.writeConfig({ runId, scenario, source: options.source, dataset: datasetInfo, backbone: backboneInfo, fieldClasses,
      protocolVersion: PROTOCOL_VERSION, node: process.version, platform: `${process.platform}-${process.arch}` });
  }

  const { host, port } = await server.listen();
  const url = server.url({ host, port });
  out?.writeAdminAccess({ url, key: adminKey, pid: process.pid });
  options.onListening?.(url);
  options.onCoordinator?.(server, state);
  runner = new MissionRunner({
    links: server, state, journal, schedule, evaluator, clientIds, uplink, downlink, strategy,
    centralize: { embed: (indices) => store.embed('train', indices), bytesPerImage: data.train.rows * data.train.cols * data.train.channels },
    missionLimit: scenario.missions.count, participation: scenario.clients.participation, seed: scenario.seed,
    evaluationSample: scenario.evaluation.clientSample,
    phaseMs: scenario.timeouts.phaseMs, connectMs: scenario.timeouts.connectMs, deadlineMs: scenario.timeouts.deadlineMs, quorum: scenario.timeouts.quorum, drainMs: scenario.timeouts.drainMs,
    link: links ? (id: string) => links[id]! : undefined,
    async: scenario.missions.merge === 'async'
      ? { everyMs: scenario.missions.broadcastEveryMs, everyUpdates: scenario.missions.broadcastEveryUpdates ?? (scenario.missions.broadcastEveryMs ? undefined : clientIds.length) }
      : undefined,
    onMission: (r) => {
      out?.appendMission(r);
      for (const id of r.late) late.set(id, (late.get(id) ?? 0) + 1);
      feed?.missionDone(r);
      showClients();
      options.onMission?.(r);
    },
    onPhase: (mission, phase) => feed?.setPhase({ mission, phase }),
    log,
  });
  const restarts: RunSummary['restarts'] = [];
  const feed = options.dashboard ? new DashboardFeed({
    runId, scenario: scenario.name, mode: scenario.clients.mode, strategy: scenario.strategy, schedule: scenario.missions.schedule,
    merge: scenario.missions.merge, codec: { uplink: uplink.spec, downlink: downlink.spec }, clients: clientIds.length, missionLimit: scenario.missions.count,
  }) : undefined;
  const late = new Map<string, number>();
  let lost: { clientId: string }[] = [];
  const showClients = (): void => {
    if (!feed) return;
    const owed = journal.missions.at(-1)?.owed ?? [];
    feed.setClients(clientIds.map((id) => {
      const session = server.session(id);
      return {
        clientId: id, connected: session?.connected === true, lastSeen: session?.lastSeen ?? null, tableVersion: session?.heldVersion ?? 0,
        bytesUp: server.meter(id).totals('up', isLearningTraffic).encodedBytes, bytesDown: server.meter(id).totals('down', isLearningTraffic).encodedBytes,
        restarts: restarts.filter((r) => r.clientId === id).length, late: late.get(id) ?? 0,
        owed: owed.filter((x) => x.clientId === id).length, lost: lost.filter((x) => x.clientId === id).length,
        refused: runner?.refusedUpdates.get(id) ?? 0, left: state.hasLeft(id),
      };
    }));
  };
  if (feed) {
    for (const record of journal.missions) {
      for (const id of record.result.late) late.set(id, (late.get(id) ?? 0) + 1);
      feed.missionDone(record.result);
    }
    const viewerKey = randomBytes(24).toString('base64url');
    dashboard = new DashboardServer(feed, viewerKey);
    dashboard.attach(server.httpServer!);
    server.on('joined', showClients);
    server.on('left', showClients);
    feed.setPhase({ mission: journal.missions.length, phase: 'running' });
    showClients();
    options.onDashboard?.(`${url}${DASHBOARD_PATH}#viewer=${viewerKey}`);
  }
  const crashAt = new Map(scenario.faults.crash.map((f) => [`c${f.client}`, f.mission]));
  const leaveAt = new Map(scenario.faults.leave.map((f) => [`c${f.client}`, f.mission]));
  const byzantineOf = new Map(scenario.faults.byzantine.map((f) => [`c${f.client}`, { attack: f.attack, factor: f.factor }]));
  const launch = { process: (ctx: LaunchContext) => new ProcessSpawner(ctx), remote: () => new RemoteClients(() => server.connectedCount, () => runner.shutdownPending()), ...options.launchers }[scenario.clients.mode];
  if (!launch) throw new Error(`clients.mode "${scenario.clients.mode}" needs a client launcher; run it with the protofed command`);
  const spawner = launch({
    url,
    dial: () => {
      const [client, coordinator] = ChannelEnd.pair();
      server.accept(channelConnection(coordinator));
      return client;
    },
    keys,
    maxRestarts: scenario.clients.maxRestarts,
    stderr: options.clientStderr,
    store,
    evaluationMemo,
    clients: clientIds.map((clientId) => ({
      clientId,
      config: {
        dataset: datasetSpec, backbone: scenario.backbone, backend: scenario.backend, cacheDir, testPerClass: scenario.evaluation.testPerClass,
        crashAtMission: crashAt.get(clientId), stragglers: scenario.faults.stragglers, dropoutProbability: scenario.faults.dropouts?.probability,
        byzantine: byzantineOf.get(clientId),
        leaveAtMission: leaveAt.get(clientId),
        seed: scenario.seed,
      },
    })),
  });
  spawner.on('restarted', (clientId, attempt, why) => {
    restarts.push({ clientId, attempt, why });
    log(`${why}; starting replacement ${attempt}/${scenario.clients.maxRestarts}`);
  });
  spawner.on('failed', (_id, why) => runner.fail(new Error(why)));

  let outcome: RunOutcome;
  const wire = { up: 0, down: 0, measured: false };
  try {
    spawner.start();
    outcome = await runner.run();
    await spawner.stop();
    for (const id of clientIds) {
      const w = server.wireBytes(id);
      if (!w) continue;
      wire.measured = true;
      wire.up += w.up;
      wire.down += w.down;
    }
    lost = outcome.lostUpdates;
    showClients();
    feed?.setPhase({ mission: outcome.missions.length, phase: 'finished' });
  } catch (err) {
    spawner.killAll();
    feed?.setPhase({ mission: journal.missions.length, phase: 'failed', detail: (err as Error).message });
    throw err;
  } finally {
    out?.removeAdminAccess();
    await dashboard?.close();
    await server.close();
    await journal.close();
    store.close();
    backbone.dispose();
  }

  const last = outcome.missions.at(-1);
  const bytesByClient: RunSummary['bytesByClient'] = {};
  for (const id of clientIds) {
    const up = server.meter(id).totals('up', isLearningTraffic);
    const down = server.meter(id).totals('down', isLearningTraffic);
    bytesByClient[id] = { up: up.encodedBytes, down: down.encodedBytes, payloadUp: up.payloadBytes, payloadDown: down.payloadBytes };
  }
  const all = ByteMeter.combine(clientIds.map((id) => server.meter(id)));
  const simulationControl = (type: string): boolean => !isLearningTraffic(type);
  const lastMission = outcome.missions.length - 1;
  const summary: RunSummary = {
    scenario: scenario.name,
    runId,
    tableChecksum: tableChecksum(state.global),
    resumedAfterMission: resumedAfter,
    finalGlobalAccuracy: outcome.globalAccuracyAfterLateUpdates ?? last?.globalAccuracy ?? NaN,
    lateUpdates: outcome.missions.reduce((n, m) => n + m.late.length, 0),
    lostUpdates: outcome.lostUpdates,
    simulatedTransferSeconds: scenario.link ? outcome.missions.reduce((s, m) => s + (m.simulatedTransferSeconds ?? 0), 0) : null,
    links,
    bytesUp: all.totals('up', isLearningTraffic).encodedBytes,
    bytesDown: all.totals('down', isLearningTraffic).encodedBytes,
    payloadBytesUp: all.totals('up', isLearningTraffic).payloadBytes,
    payloadBytesDown: all.totals('down', isLearningTraffic).payloadBytes,
    frameBytesUp: all.totals('up', isLearningTraffic).frameBytes,
    frameBytesDown: all.totals('down', isLearningTraffic).frameBytes,
    simulationControlBytesUp: all.totals('up', simulationControl).encodedBytes,
    simulationControlBytesDown: all.totals('down', simulationControl).encodedBytes,
    wireBytesUp: wire.measured ? wire.up : null,
    wireBytesDown: wire.measured ? wire.down : null,
    unauthenticatedBytes: { ...server.unauthenticatedWireBytes(), setupDown: strangers.setupBytes },
    leftClients: clientIds.filter((id) => state.hasLeft(id)),
    refusedUpdates: Object.fromEntries(runner.refusedUpdates),
    robust: scenario.robust ? { ...scenario.robust, clippedByClient: Object.fromEntries(state.clippedByClient) } : null,
    missions: outcome.missions.length,
    endReason: outcome.endReason,
    classesKnown: last?.classesKnown ?? 0,
    averageIncrementalAccuracy: outcome.matrix.averageIncrementalAccuracy(),
    forgetting: { kind: 'chaudhry-max', value: outcome.matrix.forgetting(lastMission) },
    backwardTransfer: outcome.matrix.backwardTransfer(),
    accuracyMatrix: outcome.matrix.toJSON(),
    restarts,
    bytesByClient,
    bytesByType: all.byType(),
    dataset: datasetInfo,
    backbone: backboneInfo,
    codec: { uplink: uplink.spec, downlink: downlink.spec },
    evaluations: { computed: evaluationMemo.misses, shared: evaluationMemo.hits },
    embeddings: {
      ...store.stats, cacheDir: cacheDir ?? null, secondsBeforeClients: embedSeconds, threads,
      clients: [...runner.embeddingCounts.values()].reduce((a, c) => ({ computed: a.computed + c.computed, fromCache: a.fromCache + c.fromCache }), { computed: 0, fromCache: 0 }),
    },
    wallSeconds: (performance.now() - started) / 1000,
  };
  out?.writeSummary(summary);
  return { summary, outcome, state, data };
}

/**
 * A pq codec's codebook, trained on the embeddings of the base classes' train images (classes no
 * client learns), seeded; undefined when no codec of the run is pq.
 */
export async function trainRunCodebook(prepared: PreparedRun, uplink: CodecSpec, downlink: CodecSpec, seed: number): Promise<{ book: PqCodebook; bytes: Uint8Array } | undefined> {
  const shape = pqShape(uplink, downlink);
  if (!shape) return undefined;
  const { data, fieldClasses, backbone } = prepared;
  const field = new Set(fieldClasses);
  const base: number[] = [];
  for (let i = 0; i < data.train.count; i++) if (!field.has(data.train.labels[i]!)) base.push(i);
  if (base.length < shape.centroids) {
    throw new Error(`a pq codebook is trained on base classes (classes no client learns): this run has ${base.length} such train images, fewer than ${shape.centroids} centroids`);
  }
  const embeddings = await prepared.embedBulk('train', base, 'base-class train images for the pq codebook');
  const book = trainPqCodebook(embeddings, base.length, backbone.dim, { ...shape, seed });
  return { book, bytes: encodePqCodebook(book) };
}

/** How far bulk work has come: `done` of `total` images of `what`. */
export interface BulkProgress {
  phase: 'embedding';
  what: string;
  done: number;
  total: number;
}

/** Images embedded per step of bulk work (each step is split over the worker threads). */
const BULK_CHUNK = 4096;

/** What every kind of run needs before its clients start: data, backbone, embeddings, evaluator. */
export interface PreparedRun {
  data: LabelledDataset;
  datasetSpec: Scenario['dataset'];
  fieldClasses: number[];
  backbone: Backbone;
  store: EmbeddingStore;
  evaluationMemo: EvaluationMemo;
  evaluator: HeldOutEvaluator;
  cacheDir: string | undefined;
  /** Threads for bulk embedding. */
  threads: number;
  embedSeconds: number;
  datasetInfo: RunSummary['dataset'];
  backboneInfo: RunSummary['backbone'];
  /** Embeds many images of a split through the store, on `threads` worker threads, saying how far it has come. */
  embedBulk(split: 'train' | 'test', indices: number[], what: string): Promise<Float32Array>;
}

/**
 * Loads the dataset and backbone, checks the scenario against the data, and embeds every test
 * image the run will evaluate (through the cache), so that clients read them instead of
 * computing them again.
 */
export async function prepareRun(scenario: Scenario, options: Pick<RunOptions, 'dataDir' | 'source' | 'onProgress'> = {}): Promise<PreparedRun> {
  const datasetSpec = { ...scenario.dataset, dir: options.dataDir ?? scenario.dataset.dir };
  const data = loadDataset(datasetSpec);
  const trainPerClass = new Map([...indicesByClass(data.train)].map(([c, list]) => [c, list.length]));
  const { field: fieldClasses } = checkScenarioAgainstDataset(
    scenario, { classCount: data.classNames.length, trainPerClass, baseClasses: data.baseClasses, classGroups: data.classGroups }, options.source);
  const shape = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
  const { backbone, tensorBackend } = await createBackbone(scenario.backbone, shape, scenario.backend);
  const cacheDir = scenario.cache.enabled ? scenario.cache.dir ?? defaultCacheDir() : undefined;
  const store = new EmbeddingStore(backbone, data, { cacheDir });
  const evaluationMemo = new EvaluationMemo();
  const evaluator = new HeldOutEvaluator(store, scenario.evaluation.testPerClass, undefined, evaluationMemo, strategyNamed(scenario.strategy).classify);
  // Bulk work goes to one worker thread per core (wasm and cpu compute on one thread each).
  const threads = scenario.backbone.name === 'pixels' ? 1 : Math.min(scenario.embedding.threads ?? cpus().length, cpus().length * 2);
  const embedBulk = async (split: 'train' | 'test', indices: number[], what: string): Promise<Float32Array> => {
    const pool = threads > 1 ? await EmbeddingPool.start(scenario.backbone, shape, scenario.backend, threads, backbone) : undefined;
    try {
      const out = new Float32Array(indices.length * backbone.dim);
      for (let at = 0; at < indices.length; at += BULK_CHUNK) {
        const chunk = indices.slice(at, at + BULK_CHUNK);
        out.set(await store.embed(split, chunk, pool), at * backbone.dim);
        options.onProgress?.({ phase: 'embedding', what, done: at + chunk.length, total: indices.length });
      }
      return out;
    } finally {
      await pool?.close();
    }
  };
  const embedStarted = performance.now();
  await embedBulk('test', fieldClasses.flatMap((c) => evaluator.testIndices(c)), 'test images of the field classes');
  const testEmbeddings = await Promise.all(fieldClasses.map((c) => evaluator.embeddings(c)));
  const embedSeconds = (performance.now() - embedStarted) / 1000;
  const rankMeRows = testEmbeddings.reduce((n, e) => n + e.length / backbone.dim, 0);
  const representation = {
    rankMe: rankMe(concatFloat32(testEmbeddings), rankMeRows, backbone.dim),
    rankMeOf: `${rankMeRows} test embeddings of the field classes`,
  };
  return {
    data, datasetSpec, fieldClasses, backbone, store, evaluationMemo, evaluator, cacheDir, threads, embedSeconds, embedBulk,
    datasetInfo: { name: data.name, kind: data.kind, source: data.source, train: data.train.count, test: data.test.count },
    backboneInfo: { name: backbone.name, dim: backbone.dim, modelHash: backbone.modelHash, tensorBackend, ...representation },
  };
}

function concatFloat32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** SHA-256 of each model file the setup endpoint serves, by name. */
function modelFileHashes(dir: string): Record<string, string> {
  return Object.fromEntries([...modelFiles(dir)].map((name) => [name, createHash('sha256').update(readFileSync(join(dir, name))).digest('hex')]));
}

/** The run's dataset as a gzipped dataset pack, made when a client first asks for it. */
function datasetPackOf(data: LabelledDataset): () => Uint8Array {
  let pack: Uint8Array | undefined;
  return () => (pack ??= gzipSync(encodeDatasetPack(data)));
}

/**
 * The setup a remote client fetches: the dataset by name and options (each client loads its own
 * copy), and the backbone. A learned model on the coordinator's disk is served to the clients,
 * so its spec points at the coordinator's model path.
 */
function remoteSetup(
  scenario: Scenario, backbone: Backbone, uplink: string, downlink: string, datasetCopy: () => DatasetIdentity,
): { setup: () => RunSetup; modelDir: string | undefined } {
  const { dir: _dir, baseClasses: _base, ...dataset } = scenario.dataset;
  const spec = scenario.backbone;
  let modelDir: string | undefined;
  let served: RunSetup['backbone'] = spec;
  if (spec.name === 'conv4') {
    modelDir = spec.weights;
    const input = { ...backbone.input, channels: backbone.input.channels === 3 ? 3 as const : 1 as const };
    served = { name: 'tfjs-model', url: `${MODEL_PATH}model.json`, input, normalization: CONV4_NORMALIZATION, batchSize: spec.batchSize };
  } else if (spec.name === 'tfjs-model' && !/^https?:\/\//.test(spec.url) && basename(spec.url) === 'model.json') {
    modelDir = dirname(spec.url.replace(/^file:\/\//, ''));
    served = { ...spec, url: `${MODEL_PATH}model.json` };
  }
  // Made when a remote client first asks: hashing the dataset is work no other mode needs.
  let setup: RunSetup | undefined;
  return {
    setup: () => (setup ??= {
      protocolVersion: PROTOCOL_VERSION, dataset, backbone: served, backend: scenario.backend, testPerClass: scenario.evaluation.testPerClass,
      uplinkCodec: uplink, downlinkCodec: downlink, datasetCopy: datasetCopy(), modelHash: backbone.modelHash,
      ...(modelDir ? { modelFiles: modelFileHashes(modelDir) } : {}),
    }),
    modelDir,
  };
}
