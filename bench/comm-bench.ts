/**
 * The communication-cost study (bench/results/comm.json):
 * - wire overhead: bytes on the TCP socket divided by codec payload bytes, for one update of
 *   1, 10 and 100 classes of 64-d int8, measured on a real socket.io connection;
 * - every codec (and pq, deflate, delta+) on the default glyph scenario (virtual clients, same
 *   samples, 3 seeds): accuracy lost against f32 and uplink bytes relative to f32, with spreads;
 * - every strategy on the same runs, f32, 3 seeds: protofed, centralized (the upper bound),
 *   share-embeddings, fedrecon-reference, fedavg-head, local-only;
 * - the table the paper never gave: bytes per class learned, and bytes per client until 90% of
 *   the centralized accuracy;
 * - the reference code's blended merge against protofed at 2, 5 and 30 shots on Fashion-MNIST
 *   pixels, and at 2, 5 and 15 on conv4 glyph embeddings (5 clients × 2 classes, 60 missions).
 *
 *   npx tsx bench/comm-bench.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CODEC_NAMES } from '../shared/protocol/codecs/index.js';
import { loadScenarioFile, parseScenario, type Scenario } from '../shared/scenario/scenario-config.js';
import { finalAccuracy, missionAccuracy, readSweep, type SweepRun } from '../experiments/sweep-report.js';
import { expandGrid, runSweep } from '../experiments/sweep.js';
import { measureWireOverhead } from './wire-overhead.js';

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Per-client bytes (up + down, learning traffic) until the run reaches 90% of the centralized
 * run's accuracy at the same mission and stays there to the end (accuracy falls as classes come,
 * so a fixed target would be met by almost anything in the first mission); null if it never
 * does. What went before the first mission (hello, welcome, a pq codebook) counts too: it is the
 * run's learning traffic outside the missions (with the few bytes of the shutdown).
 */
function bytesPerClientTo90(run: SweepRun, centralized: SweepRun, clients: number): number | null {
  const ok = run.missions.map((m, i) => missionAccuracy(run, m) >= 0.9 * centralized.missions[i]!.globalAccuracy);
  const from = ok.lastIndexOf(false) + 1;
  if (from >= run.missions.length) return null;
  const inMissions = run.missions.reduce((n, m) => n + m.bytes.up.encodedBytes + m.bytes.down.encodedBytes, 0);
  let bytes = run.summary.bytesUp + run.summary.bytesDown - inMissions;
  for (const m of run.missions.slice(0, from + 1)) bytes += m.bytes.up.encodedBytes + m.bytes.down.encodedBytes;
  return Math.round(bytes / clients);
}

// A fixed folder: a second run reuses the finished runs (delete it to measure again).
const out = process.env.PROTOFED_COMM_BENCH_DIR ?? join(tmpdir(), 'protofed-comm-bench');
const wireDetails = [await measureWireOverhead(1), await measureWireOverhead(10), await measureWireOverhead(100)];
const wire = Object.fromEntries(wireDetails.map((w) => [String(w.classes), w.ratio]));
process.stdout.write(`wire overhead (socket bytes / payload): ${JSON.stringify(wire)}\n`);

const SEEDS = [1, 2, 3];
const round = (x: number, digits = 4): number => Number(x.toFixed(digits));
const spread = (xs: number[]): { mean: number; std: number; min: number; max: number } => {
  const m = mean(xs);
  return { mean: round(m), std: round(Math.sqrt(mean(xs.map((x) => (x - m) ** 2)))), min: round(Math.min(...xs)), max: round(Math.max(...xs)) };
};
const progress = (what: string) => (c: { id: string }, d: number, t: number, error?: string) => process.stdout.write(`[${what} ${d}/${t}] ${c.id}${error ? ` FAILED: ${error}` : ''}\n`);

// Codecs and strategies on the default glyph scenario, virtual clients, 3 seeds each.
const glyphs = loadScenarioFile('scenarios/glyphs.yaml');
const glyphScenario = { ...glyphs, clients: { ...glyphs.clients, mode: 'virtual' as const } };
const clients = glyphScenario.clients.count;
const CODECS = ['f64', ...CODEC_NAMES.filter((c) => c !== 'f64'), 'pq-16x256', 'pq-32x256', 'f32+deflate', 'int8+deflate', 'delta+int8', 'delta+int4'];
await runSweep(glyphScenario, expandGrid(glyphScenario, { codecs: CODECS, seeds: SEEDS }, join(out, 'codecs')), { onCell: progress('codecs') });
const codecRuns = readSweep(join(out, 'codecs'));
const STRATEGY_LIST = ['protofed', 'centralized', 'share-embeddings', 'fedrecon-reference', 'fedavg-head', 'local-only'];
await runSweep(glyphScenario, expandGrid(glyphScenario, { codecs: ['f32'], strategies: STRATEGY_LIST, seeds: SEEDS }, join(out, 'strategies')), { onCell: progress('strategies') });
const strategyRuns = readSweep(join(out, 'strategies'));

const bySeed = (runs: SweepRun[], seed: number): SweepRun => runs.find((r) => r.seed === seed)!;
const centralizedRuns = strategyRuns.filter((r) => r.strategy === 'centralized');
const centralizedAccuracy = (seed: number): number => bySeed(centralizedRuns, seed).summary.finalGlobalAccuracy;
const f32Runs = codecRuns.filter((r) => r.codec === 'f32');

/** Bytes, accuracy and their spread over seeds for a group of runs of one configuration. */
function costs(runs: SweepRun[]) {
  const perSeed = runs.map((r) => ({
    accuracy: finalAccuracy(r),
    lossPoints: (finalAccuracy(bySeed(f32Runs, r.seed)) - finalAccuracy(r)) * 100,
    uplinkRatio: r.summary.payloadBytesUp / bySeed(f32Runs, r.seed).summary.payloadBytesUp,
    bytesPerClass: (r.summary.bytesUp + r.summary.bytesDown) / r.summary.classesKnown,
    to90: bytesPerClientTo90(r, bySeed(centralizedRuns, r.seed), clients),
  }));
  const reached = perSeed.map((p) => p.to90).filter((b): b is number => b !== null);
  return {
    finalAccuracy: spread(perSeed.map((p) => p.accuracy)),
    accuracyLossPoints: spread(perSeed.map((p) => p.lossPoints)),
    uplinkPayloadBytes: Math.round(mean(runs.map((r) => r.summary.payloadBytesUp))),
    uplinkBytesRatio: round(mean(perSeed.map((p) => p.uplinkRatio)), 3),
    uplinkMessageBytes: Math.round(mean(runs.map((r) => r.summary.bytesUp))),
    downlinkMessageBytes: Math.round(mean(runs.map((r) => r.summary.bytesDown))),
    bytesPerClassLearned: Math.round(mean(perSeed.map((p) => p.bytesPerClass))),
    bytesPerClientTo90PercentOfCentralized: reached.length === perSeed.length ? Math.round(mean(reached)) : null,
    seeds: runs.map((r) => r.seed),
  };
}
const codecTable = CODECS.map((codec) => ({ codec, ...costs(codecRuns.filter((r) => r.codec === codec)) }));
const strategyTable = STRATEGY_LIST.map((strategy) => ({ strategy, codec: 'f32', ...costs(strategyRuns.filter((r) => r.strategy === strategy)) }));
const protofedF32 = strategyRuns.filter((r) => r.strategy === 'protofed');
const protofedVsCentralized = Math.max(...SEEDS.map((seed) => Math.abs(bySeed(protofedF32, seed).summary.finalGlobalAccuracy - centralizedAccuracy(seed))));

// The merge flaw: the reference code's blend against protofed's deltas, on Fashion-MNIST pixels
// (the issue's numpy model) and on conv4 glyph embeddings (15 train images per glyph class).
async function mergeFlaw(name: string, scenario: Scenario, shots: number[]) {
  await runSweep(scenario, expandGrid(scenario, { strategies: ['protofed', 'fedrecon-reference', 'local-only'], shots, seeds: SEEDS }, join(out, name)), { onCell: progress(name) });
  const runs = readSweep(join(out, name));
  return shots.map((k) => {
    const acc = (strategy: string) => SEEDS.map((seed) => finalAccuracy(runs.find((r) => r.shots === k && r.strategy === strategy && r.seed === seed)!));
    const gaps = acc('protofed').map((a, i) => (a - acc('fedrecon-reference')[i]!) * 100);
    return {
      shots: k, protofed: round(mean(acc('protofed'))), fedreconReference: round(mean(acc('fedrecon-reference'))),
      // No merging: each client's own table (the global one stays empty).
      localOnlyMeanClientAccuracy: round(mean(acc('local-only'))),
      gapPoints: { mean: round(mean(gaps), 2), min: round(Math.min(...gaps), 2), max: round(Math.max(...gaps), 2) },
    };
  });
}
const flawFashion = parseScenario({
  name: 'flaw', dataset: { name: 'fashion-mnist' }, backbone: { name: 'pixels' }, clients: { count: 5, mode: 'virtual' },
  missions: { count: 60, classesPerClient: 2, shotsPerClass: 2 }, codec: { uplink: 'f32', downlink: 'f32' }, evaluation: { testPerClass: 200 },
});
const flaw = await mergeFlaw('flaw', flawFashion, [2, 5, 30]);
const flawGlyphScenario = { ...glyphScenario, name: 'flaw-glyphs', missions: { ...glyphScenario.missions, count: 60, classesPerClient: 2 }, codec: { uplink: 'f32', downlink: 'f32' } };
const flawGlyphs = await mergeFlaw('flaw-glyphs', flawGlyphScenario, [2, 5, 15]);

const result = {
  benchmark: 'communication cost',
  date: new Date().toISOString(),
  wireOverhead: wire,
  wireOverheadNote: 'TCP bytes read by the coordinator socket per codec payload byte, 20 updates of N 64-d int8 classes (class block header, msgpack keys, the protofed socket.io parser byte, WebSocket header and mask); goal ≤ 1.10 at 10 classes',
  wireOverheadDetails: wireDetails,
  accuracyLossPoints: Object.fromEntries(codecTable.map((t) => [t.codec, round(t.accuracyLossPoints.mean, 2)])),
  uplinkBytesRatio: Object.fromEntries(codecTable.map((t) => [t.codec, t.uplinkBytesRatio])),
  protofedF32VersusCentralizedMaxAccuracyDifference: protofedVsCentralized,
  centralizedAccuracy: spread(SEEDS.map(centralizedAccuracy)),
  codecs: codecTable,
  strategies: strategyTable,
  scenario: `scenarios/glyphs.yaml in virtual mode, seeds ${SEEDS.join(', ')}: 5 clients, 60 missions, 5 classes × 5 shots, conv4 64-d; losses are paired by seed against f32; pq codebooks (trained on the background classes) are counted in the downlink`,
  mergeFlaw: flaw,
  mergeFlawScenario: 'Fashion-MNIST pixels, 5 virtual clients × 2 classes per mission, 60 missions, f32, seeds 1–3',
  mergeFlawGlyphs: flawGlyphs,
  mergeFlawGlyphsScenario: 'glyphs, conv4 64-d, 5 virtual clients × 2 classes per mission, 60 missions, f32, seeds 1–3 (glyph classes have 15 train images, so 15 shots is the most)',
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/comm.json', `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify({ wireOverhead: wire, accuracyLossPoints: result.accuracyLossPoints, uplinkBytesRatio: result.uplinkBytesRatio, protofedVsCentralized, mergeFlaw: flaw, mergeFlawGlyphs: flawGlyphs }, null, 1)}\n`);
