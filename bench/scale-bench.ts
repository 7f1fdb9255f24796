/**
 * Scale (bench/results/scale.json):
 * - a population of 1,000,000 virtual clients, 10,000 per mission, 50 missions (scenarios/population-1m.yaml);
 * - 10,000 clients, all taking part, 50 missions (scenarios/population-10k.yaml);
 * - coordinator merge throughput (bench/merge-throughput.ts);
 * - memory per idle virtual client: the peak RSS of the same run with 100,000 and with 1,000,000
 *   clients (1,000 per mission, 5 missions), divided by the 900,000 extra idle clients;
 * - 32 client processes against 32 virtual clients on the same glyph scenario: time per mission,
 *   and the socket's bytes against the messages' bytes.
 * Each part runs in its own process, so that peak RSS is that part's.
 *
 *   npx tsx bench/scale-bench.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runScenario } from '../coordinator/run-scenario.js';
import { loadScenarioFile, parseScenario } from '../shared/scenario/scenario-config.js';
import { runPopulation } from '../simulation/population/population-run.js';
import { runPopulationScenario } from '../simulation/population/population-scenario.js';
import { VirtualClients } from '../simulation/virtual-clients.js';
import { measureMergeThroughput } from './merge-throughput.js';

const self = fileURLToPath(import.meta.url);

/** Runs one part in a fresh process and returns the JSON it prints last. */
function part(...args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['--import', 'tsx', self, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

async function populationPart(path: string): Promise<void> {
  const { summary } = await runPopulationScenario(loadScenarioFile(path), { source: path });
  const mib = (b: number) => round(b / 2 ** 20, 1);
  process.stdout.write(`${JSON.stringify({
    scenario: path, population: summary.population, perMission: summary.perMission, missions: summary.missions, workers: summary.workers,
    wallSeconds: round(summary.wallSeconds, 1), secondsPerMission: round(summary.secondsPerMission.mean), peakRssMiB: mib(summary.peakRssBytes),
    finalGlobalAccuracy: summary.finalGlobalAccuracy, clientsReached: summary.perClient.clientsReached,
    bytes: { up: summary.bytes.up, down: summary.bytes.down }, perClientBytes: summary.perClient,
    tensorBackend: summary.backbone.tensorBackend,
  })}\n`);
}

/** Peak RSS of a run whose only difference is the population size: idle clients are the difference. */
async function idlePart(population: number): Promise<void> {
  const dim = 64;
  const classes = 100;
  const bank = new Float32Array(new SharedArrayBuffer(classes * 20 * dim * 4));
  const labels = new Int32Array(new SharedArrayBuffer(classes * 20 * 4));
  for (let i = 0; i < labels.length; i++) {
    labels[i] = i % classes;
    for (let d = 0; d < dim; d++) bank[i * dim + d] = Math.sin(i * 31 + d);
  }
  const result = await runPopulation({
    population, perMission: 1000, missions: 5, classesPerClient: 2, shotsPerClass: 5, seed: 1, uplink: 'int8', downlink: 'int8',
    workers: 0, bank, labels, dim, fieldClasses: Array.from({ length: classes }, (_, c) => c),
  });
  process.stdout.write(`${JSON.stringify({ population, peakRssBytes: result.peakRssBytes })}\n`);
}

async function processVersusVirtual(): Promise<void> {
  const glyphs = loadScenarioFile('scenarios/glyphs.yaml');
  const base = { ...glyphs, name: 'glyphs-32', missions: { ...glyphs.missions, count: 10, classesPerClient: 2, shotsPerClass: 5 } };
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() }).setMaxListeners(0);
  const measure = async (mode: 'process' | 'virtual') => {
    const scenario = parseScenario({ ...base, clients: { count: 32, mode, maxRestarts: 0 } });
    const started = performance.now();
    const { summary, outcome } = await runScenario(scenario, { clientStderr: silent, launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
    const missionMs = outcome.missions.map((m) => m.wallMs);
    return {
      wallSeconds: round((performance.now() - started) / 1000, 1),
      secondsPerMission: round(missionMs.reduce((a, b) => a + b, 0) / missionMs.length / 1000),
      finalGlobalAccuracy: summary.finalGlobalAccuracy,
      messageBytes: { up: summary.bytesUp + summary.simulationControlBytesUp, down: summary.bytesDown + summary.simulationControlBytesDown },
      frameBytes: summary.frameBytesUp + summary.frameBytesDown,
      wireBytes: summary.wireBytesUp === null ? null : summary.wireBytesUp + summary.wireBytesDown!,
    };
  };
  const processRun = await measure('process');
  const virtualRun = await measure('virtual');
  process.stdout.write(`${JSON.stringify({
    scenario: 'scenarios/glyphs.yaml with 32 clients, 10 missions, 2 classes × 5 shots',
    process: processRun, virtual: virtualRun,
    timePerMissionRatio: round(processRun.secondsPerMission / virtualRun.secondsPerMission, 2),
    wireBytesPerMessageByte: round(processRun.wireBytes! / (processRun.messageBytes.up + processRun.messageBytes.down)),
    sameAccuracy: processRun.finalGlobalAccuracy === virtualRun.finalGlobalAccuracy,
  })}\n`);
}

const [what, arg] = process.argv.slice(2);
if (what === 'population') await populationPart(arg!);
else if (what === 'idle') await idlePart(Number(arg));
else if (what === 'processes') await processVersusVirtual();
else {
  const merge = measureMergeThroughput();
  process.stdout.write(`merge: ${JSON.stringify(merge)}\n`);
  const idleSmall = part('idle', '100000');
  const idleLarge = part('idle', '1000000');
  const bytesPerIdleClient = round(((idleLarge.peakRssBytes as number) - (idleSmall.peakRssBytes as number)) / 900_000, 1);
  process.stdout.write(`idle: ${bytesPerIdleClient} bytes per idle client\n`);
  const million = part('population', 'scenarios/population-1m.yaml');
  process.stdout.write(`1M: ${JSON.stringify(million)}\n`);
  const tenThousand = part('population', 'scenarios/population-10k.yaml');
  process.stdout.write(`10k: ${JSON.stringify(tenThousand)}\n`);
  const processes = part('processes');
  process.stdout.write(`32 processes: ${JSON.stringify(processes)}\n`);
  const result = {
    benchmark: 'scale',
    date: new Date().toISOString(),
    node: process.version,
    largestPopulation: million.population,
    mergesPerSecond: merge.mergesPerSecond,
    bytesPerIdleClient,
    population1M: million,
    population10kAllTakePart: tenThousand,
    merge: { ...merge, goal: 3_000_000, goalRatioToBaseline: 1.36 },
    idleClientMemory: {
      method: 'peak RSS of the same run (1,000 clients per mission, 5 missions, int8) with 1,000,000 and with 100,000 clients, difference divided by 900,000',
      peakRssBytes: { population100k: idleSmall.peakRssBytes, population1M: idleLarge.peakRssBytes },
      goal: 1024,
    },
    processesVersusVirtual: processes,
    machine: '2 cores, shared with other work',
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/scale.json', `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify({ largestPopulation: result.largestPopulation, mergesPerSecond: result.mergesPerSecond, bytesPerIdleClient }, null, 1)}\n`);
}
