import { resolve } from 'node:path';
import { runScenario } from '../coordinator/run-scenario.js';
import type { MissionResult } from '../coordinator/federation/mission-runner.js';
import { ResultsWriter } from '../coordinator/results-writer.js';
import { loadScenarioFile, parseScenario, type Scenario } from '../shared/scenario/scenario-config.js';
import type { BackendChoice } from '../shared/tensor/tensor-backend.js';
import { runPopulationScenario } from '../simulation/population/population-scenario.js';
import { VirtualClients } from '../simulation/virtual-clients.js';
import { formatAccuracy, formatBytes } from './format.js';
import { bulkProgress, emitJson, JobClock } from './progress.js';
import type { ClientKeys } from '../shared/protocol/client-keys.js';

export interface RunCommandOptions {
  out?: string;
  /** A results folder whose saved run to go on with. */
  resume?: string;
  force?: boolean;
  data?: string;
  quiet?: boolean;
  backend?: BackendChoice;
  pixels?: boolean;
  mode?: 'process' | 'virtual' | 'remote' | 'population';
  /** Serve a live dashboard of the run and print its URL. */
  dashboard?: boolean;
  /** One JSON object per event on stdout (start, mission, finished, error) instead of the table. */
  json?: boolean;
  /** Remote mode: where to listen, the clients' keys, and how long to wait for the clients. */
  remote?: { host: string; port: number; keys: ClientKeys; tls?: { cert: string; key: string; clientCa?: string | undefined } | undefined; waitMs?: number | undefined };
}

function defaultOutDir(name: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
  return resolve('results', `${name}-${stamp}`);
}

/** `protofed run SCENARIO`: runs every mission and writes a results folder. */
export async function runCommand(scenarioArg: string | undefined, options: RunCommandOptions): Promise<void> {
  if (options.resume) return resumeCommand(scenarioArg, options.resume, options);
  if (!scenarioArg) throw new Error('give a scenario file, or --resume DIR to go on with a saved run');
  const scenarioPath = scenarioArg;
  const loaded = loadScenarioFile(scenarioPath);
  const scenario = {
    ...loaded,
    ...(options.backend ? { backend: options.backend } : {}),
    // The baseline on the same classes and samples: only the backbone changes.
    ...(options.pixels ? { backbone: { name: 'pixels' as const } } : {}),
    ...(options.mode ? { clients: { ...loaded.clients, mode: options.mode } } : {}),
    ...(options.remote?.waitMs ? { timeouts: { ...loaded.timeouts, connectMs: options.remote.waitMs } } : {}),
  };
  const outDir = resolve(options.out ?? defaultOutDir(scenario.name));
  const say = (line: string): void => {
    if (!options.quiet && !options.json) process.stdout.write(`${line}\n`);
  };
  if (scenario.clients.mode === 'population') {
    await runPopulationCommand(scenario, scenarioPath, outDir, { force: options.force, dashboard: options.dashboard }, say, options.json === true);
    return;
  }
  await runAndReport(scenario, scenarioPath, outDir, options, say);
}

/** `protofed run --resume DIR` (and `protofed coordinator --resume DIR`): the saved run's scenario, from its config.json. */
async function resumeCommand(scenarioArg: string | undefined, dir: string, options: RunCommandOptions): Promise<void> {
  if (scenarioArg) throw new Error(`give a scenario file or --resume ${dir}, not both: a resumed run keeps the scenario it started with`);
  if (options.out && resolve(options.out) !== resolve(dir)) throw new Error('--resume writes into the folder it resumes; leave out --out');
  if (options.backend || options.pixels || (options.mode && !options.remote)) throw new Error('--backend, --pixels and --mode cannot change a resumed run');
  const outDir = resolve(dir);
  const saved = ResultsWriter.readConfig(outDir);
  const scenario = parseScenario(saved.scenario, `${outDir}/config.json`);
  if (options.remote && scenario.clients.mode !== 'remote') throw new Error(`${outDir} holds a ${scenario.clients.mode}-mode run; resume it with protofed run --resume`);
  if (!options.remote && scenario.clients.mode === 'remote') throw new Error(`${outDir} holds a remote run; resume it with protofed coordinator --resume`);
  const say = (line: string): void => {
    if (!options.quiet && !options.json) process.stdout.write(`${line}\n`);
  };
  say(`resuming ${outDir} (run ${saved.runId})`);
  if (scenario.clients.mode === 'population') {
    await runPopulationCommand(scenario, saved.source ?? 'the saved scenario', outDir, { resume: true, dashboard: options.dashboard }, say, options.json === true);
    return;
  }
  await runAndReport(scenario, saved.source ?? 'the saved scenario', outDir, { ...options, resume: outDir }, say);
}

async function runAndReport(scenario: Scenario, scenarioPath: string, outDir: string, options: RunCommandOptions, say: (line: string) => void): Promise<void> {
  const kind = { process: 'client processes', virtual: 'virtual clients', remote: 'remote clients', population: 'population clients' }[scenario.clients.mode];
  say(`protofed run ${scenarioPath}: ${scenario.clients.count} ${kind}, up to ${scenario.missions.count} missions, ` +
    `${scenario.missions.classesPerClient} classes × ${scenario.missions.shotsPerClass} shots per client per mission, ` +
    `codec ${scenario.codec.uplink} up / ${scenario.codec.downlink} down`);
  let header = false;
  const clock = new JobClock(scenario.missions.count);
  if (options.json) {
    emitJson('start', { scenario: scenario.name, source: scenarioPath, mode: scenario.clients.mode, clients: scenario.clients.count,
      missions: scenario.missions.count, codec: scenario.codec, strategy: scenario.strategy, out: outDir, resumed: options.resume !== undefined });
  }
  const onMission = (r: MissionResult): void => {
    clock.step(r.mission + 1);
    if (options.json) {
      emitJson('mission', {
        mission: r.mission, of: scenario.missions.count, classesKnown: r.classesKnown, globalAccuracy: r.globalAccuracy,
        clientsBefore: Number.isFinite(r.meanClientAccuracyBefore) ? r.meanClientAccuracyBefore : null,
        clientsAfter: Number.isFinite(r.meanClientAccuracyAfter) ? r.meanClientAccuracyAfter : null,
        bytes: { up: r.bytes.up, down: r.bytes.down }, elapsedSeconds: clock.elapsedSeconds, etaSeconds: clock.etaSeconds,
      });
      return;
    }
    if (!header) {
      say(`${scenario.missions.merge === 'async' ? 'bcast  ' : 'mission'}  classes  global   clients:before  after   up: message (payload)      down: message (payload)    time`);
      header = true;
    }
    say(
      `${String(r.mission + 1).padStart(7)}  ${String(r.classesKnown).padStart(7)}  ${formatAccuracy(r.globalAccuracy)}  ` +
      `${formatAccuracy(r.meanClientAccuracyBefore).padStart(14)}  ${formatAccuracy(r.meanClientAccuracyAfter)}   ` +
      `${`${formatBytes(r.bytes.up.encodedBytes)} (${formatBytes(r.bytes.up.payloadBytes)})`.padEnd(25)}  ` +
      `${`${formatBytes(r.bytes.down.encodedBytes)} (${formatBytes(r.bytes.down.payloadBytes)})`.padEnd(25)}  ${clock.describe()}`,
    );
  };
  const { summary } = await runScenario(scenario, {
    outDir,
    resume: options.resume !== undefined,
    force: options.force,
    source: scenarioPath,
    dataDir: options.data,
    onMission,
    onProgress: bulkProgress(say, options.json === true),
    launchers: { virtual: (ctx) => new VirtualClients(ctx) },
    dashboard: options.dashboard,
    // Printed even with --quiet: the URL holds the viewer key, and there is no other way to get it.
    onDashboard: (url) => process.stderr.write(`protofed: dashboard (live; keep the link private, it holds the viewer key): ${url}\n`),
    ...(options.remote ? { listen: { host: options.remote.host, port: options.remote.port }, keys: options.remote.keys, tls: options.remote.tls } : {}),
    onListening: (url) => {
      if (scenario.clients.mode === 'remote') {
        const ids = Array.from({ length: scenario.clients.count }, (_, i) => `c${i}`).join(', ');
        say(`coordinator listening at ${url}; waiting ${Math.round(scenario.timeouts.connectMs / 1000)} s for clients ${ids}: ` +
          `protofed client --connect ${url} --key-file KEYS --id ID, or from a web browser: ${url}/protofed/join#client=ID&key=KEY`);
      }
    },
    log: (line) => process.stderr.write(`protofed: ${line}\n`),
  });
  say(`data: ${summary.dataset.name} (${summary.dataset.kind}, ${summary.dataset.train} train / ${summary.dataset.test} test) from ${summary.dataset.source}`);
  say(`backbone: ${summary.backbone.name} (${summary.backbone.dim}-d); tensor backend: ${summary.backbone.tensorBackend}`);
  const records = scenario.missions.merge === 'async' ? `${summary.missions} broadcasts (asynchronous merging)` : `${summary.missions} missions`;
  say(`finished after ${records} (${summary.endReason}) in ${summary.wallSeconds.toFixed(1)} s`);
  say(`final global accuracy ${formatAccuracy(summary.finalGlobalAccuracy)} over ${summary.classesKnown} classes; ` +
    `average incremental accuracy ${formatAccuracy(summary.averageIncrementalAccuracy)}; forgetting (Chaudhry, max) ${formatAccuracy(summary.forgetting.value)}`);
  say(`bytes up ${formatBytes(summary.bytesUp)} (payload ${formatBytes(summary.payloadBytesUp)}), ` +
    `down ${formatBytes(summary.bytesDown)} (payload ${formatBytes(summary.payloadBytesDown)}); ` +
    `simulation control (sample assignments, evaluations) ${formatBytes(summary.simulationControlBytesUp)} up, ${formatBytes(summary.simulationControlBytesDown)} down, counted apart`);
  if (summary.wireBytesUp !== null && summary.wireBytesDown !== null) {
    say(`on the wire (TCP, all traffic and framing): ${formatBytes(summary.wireBytesUp)} up, ${formatBytes(summary.wireBytesDown)} down`);
  }
  say(`table checksum ${summary.tableChecksum}`);
  if (options.json) {
    emitJson('finished', {
      missions: summary.missions, endReason: summary.endReason, finalGlobalAccuracy: summary.finalGlobalAccuracy, classesKnown: summary.classesKnown,
      bytesUp: summary.bytesUp, bytesDown: summary.bytesDown, tableChecksum: summary.tableChecksum, refusedUpdates: summary.refusedUpdates,
      leftClients: summary.leftClients, wallSeconds: summary.wallSeconds, summary: `${outDir}/summary.json`,
    });
  }
  const refused = Object.entries(summary.refusedUpdates);
  if (refused.length > 0) {
    // Not quiet: a client whose updates are refused is misbehaving or broken, and its data is missing.
    process.stderr.write(`protofed: warning: the coordinator refused ${refused.map(([id, n]) => `${n} update(s) of ${id}`).join(', ')}; ` +
      `nothing of them is in the table (summary.refusedUpdates)\n`);
  }
  if (summary.leftClients.length > 0) say(`left the run with their data (unlearned): ${summary.leftClients.join(', ')}`);
  say(`results: ${outDir}`);
}

async function runPopulationCommand(
  scenario: Scenario, scenarioPath: string, outDir: string, how: { force?: boolean | undefined; resume?: boolean; dashboard?: boolean | undefined }, say: (line: string) => void, json: boolean,
): Promise<void> {
  if (json) emitJson('start', { scenario: scenario.name, source: scenarioPath, mode: 'population', clients: scenario.clients.count, missions: scenario.missions.count, out: outDir });
  const clock = new JobClock(scenario.missions.count);
  const perMission = scenario.clients.perMission ?? scenario.clients.count;
  say(`protofed run ${scenarioPath}: a population of ${scenario.clients.count.toLocaleString('en')} virtual clients, ` +
    `${perMission.toLocaleString('en')} per mission, ${scenario.missions.count} missions, ` +
    `${scenario.missions.classesPerClient} classes × ${scenario.missions.shotsPerClass} shots per client per mission, ` +
    `codec ${scenario.codec.uplink} up / ${scenario.codec.downlink} down`);
  let header = false;
  const { summary } = await runPopulationScenario(scenario, {
    outDir, source: scenarioPath, ...how,
    onDashboard: (url) => process.stderr.write(`protofed: dashboard (live; keep the link private, it holds the viewer key): ${url}\n`),
    log: (line) => process.stderr.write(`protofed: ${line}\n`),
    onProgress: bulkProgress(say, json),
    onMission: (m) => {
      clock.step(m.mission + 1);
      if (json) {
        emitJson('mission', { ...m, of: scenario.missions.count, elapsedSeconds: clock.elapsedSeconds, etaSeconds: clock.etaSeconds });
        return;
      }
      if (!header) say('mission  classes  global  clients   seconds  up: message (payload)   down: message (payload)   RSS        time');
      header = true;
      say(
        `${String(m.mission + 1).padStart(7)}  ${String(m.classesKnown).padStart(7)}  ${m.globalAccuracy === null ? '   -  ' : formatAccuracy(m.globalAccuracy)}  ` +
        `${m.sampledClientAccuracy === null ? '   -  ' : formatAccuracy(m.sampledClientAccuracy)}  ${m.seconds.toFixed(2).padStart(8)}  ` +
        `${`${formatBytes(m.bytes.up.encodedBytes)} (${formatBytes(m.bytes.up.payloadBytes)})`.padEnd(22)}  ` +
        `${`${formatBytes(m.bytes.down.encodedBytes)} (${formatBytes(m.bytes.down.payloadBytes)})`.padEnd(24)}  ${formatBytes(m.rssBytes).padEnd(9)}  ${clock.describe()}`,
      );
    },
  });
  if (json) {
    emitJson('finished', { missions: summary.missions, finalGlobalAccuracy: summary.finalGlobalAccuracy, classesKnown: summary.classesKnown,
      tableChecksum: summary.tableChecksum, peakRssBytes: summary.peakRssBytes, wallSeconds: summary.wallSeconds, summary: `${outDir}/summary.json` });
  }
  say(`data: ${summary.dataset.name} (${summary.dataset.kind}); backbone: ${summary.backbone.name} (${summary.backbone.dim}-d); tensor backend: ${summary.backbone.tensorBackend}; ${summary.workers} worker thread(s)`);
  say(`finished ${summary.missions} missions in ${summary.wallSeconds.toFixed(1)} s (${summary.secondsPerMission.mean.toFixed(2)} s per mission); peak RSS ${formatBytes(summary.peakRssBytes)}`);
  say(`final global accuracy ${summary.finalGlobalAccuracy === null ? '-' : formatAccuracy(summary.finalGlobalAccuracy)} over ${summary.classesKnown} classes; ` +
    `${summary.perClient.clientsReached.toLocaleString('en')} clients took part at least once`);
  say(`bytes up ${formatBytes(summary.bytes.up.encodedBytes)} (payload ${formatBytes(summary.bytes.up.payloadBytes)}), ` +
    `down ${formatBytes(summary.bytes.down.encodedBytes)} (payload ${formatBytes(summary.bytes.down.payloadBytes)}); ` +
    `per client that took part: ${formatBytes(summary.perClient.up.mean)} up, ${formatBytes(summary.perClient.down.mean)} down on average`);
  say(`table checksum ${summary.tableChecksum}`);
  say(`results: ${outDir}`);
}
