/**
 * The communication-cost study (bench/results/comm.json):
 * - wire overhead: bytes on the TCP socket divided by codec payload bytes, for one update of
 *   1, 10 and 100 classes of 64-d int8, measured on a real socket.io connection;
 * - every codec on the default glyph scenario (virtual clients, same samples): accuracy lost
 *   against f32 and uplink bytes relative to f32;
 * - the table the paper never gave: bytes per class learned, and bytes per client until 90% of
 *   the centralized accuracy (protofed with f64 equals the centralized nearest-mean classifier);
 * - the reference code's blended merge against protofed at 2, 5 and 30 shots (Fashion-MNIST
 *   pixels, 5 clients × 2 classes per mission, 60 missions, 3 seeds).
 *
 *   npx tsx bench/comm-bench.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CODEC_NAMES } from '../shared/codecs/index.js';
import { loadScenarioFile, parseScenario } from '../shared/scenario-config.js';
import { readSweep, type SweepRun } from '../simulation/sweep-report.js';
import { expandGrid, runSweep } from '../simulation/sweep.js';
import { measureWireOverhead } from './wire-overhead.js';

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Per-client bytes (up + down, learning traffic) until the global accuracy first reaches `target`; null if never. */
function bytesPerClientUntil(run: SweepRun, target: number, clients: number): number | null {
  let bytes = 0;
  for (const m of run.missions) {
    bytes += m.bytes.up.encodedBytes + m.bytes.down.encodedBytes;
    if (m.globalAccuracy >= target) return Math.round(bytes / clients);
  }
  return null;
}

// A fixed folder: a second run reuses the finished runs (delete it to measure again).
const out = process.env.PROTOFED_COMM_BENCH_DIR ?? join(tmpdir(), 'protofed-comm-bench');
const wireDetails = [await measureWireOverhead(1), await measureWireOverhead(10), await measureWireOverhead(100)];
const wire = Object.fromEntries(wireDetails.map((w) => [String(w.classes), w.ratio]));
process.stdout.write(`wire overhead (socket bytes / payload): ${JSON.stringify(wire)}\n`);

// Codecs on the default glyph scenario, virtual clients, one seed.
const glyphs = loadScenarioFile('scenarios/glyphs.yaml');
const glyphScenario = { ...glyphs, clients: { ...glyphs.clients, mode: 'virtual' as const } };
const codecCells = expandGrid(glyphScenario, { codecs: ['f64', ...CODEC_NAMES.filter((c) => c !== 'f64')] }, join(out, 'codecs'));
await runSweep(glyphScenario, codecCells, { onCell: (c, d, t) => process.stdout.write(`[codecs ${d}/${t}] ${c.id}\n`) });
const codecRuns = readSweep(join(out, 'codecs'));
const f32 = codecRuns.find((r) => r.codec === 'f32')!;
const centralized = codecRuns.find((r) => r.codec === 'f64')!.summary.finalGlobalAccuracy;
const clients = glyphScenario.clients.count;
const table = codecRuns.map((r) => ({
  codec: r.codec,
  strategy: r.strategy,
  finalGlobalAccuracy: r.summary.finalGlobalAccuracy,
  accuracyLossPoints: Number(((f32.summary.finalGlobalAccuracy - r.summary.finalGlobalAccuracy) * 100).toFixed(2)),
  uplinkPayloadBytes: r.summary.payloadBytesUp,
  uplinkBytesRatio: Number((r.summary.payloadBytesUp / f32.summary.payloadBytesUp).toFixed(3)),
  uplinkMessageBytesRatio: Number((r.summary.bytesUp / f32.summary.bytesUp).toFixed(3)),
  bytesPerClassLearned: Math.round((r.summary.bytesUp + r.summary.bytesDown) / r.summary.classesKnown),
  bytesPerClientTo90PercentOfCentralized: bytesPerClientUntil(r, 0.9 * centralized, clients),
}));

// The merge flaw: the reference code's blend against protofed's deltas.
const flawBase = parseScenario({
  name: 'flaw', dataset: { name: 'fashion-mnist' }, backbone: { name: 'pixels' }, clients: { count: 5, mode: 'virtual' },
  missions: { count: 60, classesPerClient: 2, shotsPerClass: 2 }, codec: { uplink: 'f32', downlink: 'f32' }, evaluation: { testPerClass: 200 },
});
const flawCells = expandGrid(flawBase, { strategies: ['protofed', 'fedrecon-reference', 'local-only'], shots: [2, 5, 30], seeds: [1, 2, 3] }, join(out, 'flaw'));
await runSweep(flawBase, flawCells, { onCell: (c, d, t) => process.stdout.write(`[flaw ${d}/${t}] ${c.id}\n`) });
const flawRuns = readSweep(join(out, 'flaw'));
const flaw = [2, 5, 30].map((shots) => {
  const acc = (strategy: string) => flawRuns.filter((r) => r.shots === shots && r.strategy === strategy).map((r) => r.summary.finalGlobalAccuracy);
  const gaps = acc('protofed').map((a, i) => (a - acc('fedrecon-reference')[i]!) * 100);
  return {
    shots, protofed: Number(mean(acc('protofed')).toFixed(4)), fedreconReference: Number(mean(acc('fedrecon-reference')).toFixed(4)),
    // No merging: each client's own table (the global one stays empty).
    localOnlyMeanClientAccuracy: Number(mean(flawRuns.filter((r) => r.shots === shots && r.strategy === 'local-only').map((r) => r.missions.at(-1)!.meanClientAccuracyAfter)).toFixed(4)),
    gapPoints: { mean: Number(mean(gaps).toFixed(2)), min: Number(Math.min(...gaps).toFixed(2)), max: Number(Math.max(...gaps).toFixed(2)) },
  };
});

const result = {
  benchmark: 'communication cost',
  date: new Date().toISOString(),
  wireOverhead: wire,
  wireOverheadNote: 'TCP bytes read by the coordinator socket per codec payload byte, 20 updates of N 64-d int8 classes (class block header, msgpack keys, the protofed socket.io parser byte, WebSocket header and mask); goal ≤ 1.10 at 10 classes',
  wireOverheadDetails: wireDetails,
  accuracyLossPoints: Object.fromEntries(table.map((t) => [t.codec, t.accuracyLossPoints])),
  uplinkBytesRatio: Object.fromEntries(table.map((t) => [t.codec, t.uplinkBytesRatio])),
  centralizedAccuracy: centralized,
  codecs: table,
  scenario: 'scenarios/glyphs.yaml in virtual mode (seed 7): 5 clients, 60 missions, 5 classes × 5 shots, conv4 64-d',
  mergeFlaw: flaw,
  mergeFlawScenario: 'Fashion-MNIST pixels, 5 virtual clients × 2 classes per mission, 60 missions, f32, seeds 1–3',
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/comm.json', `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify({ wireOverhead: wire, accuracyLossPoints: result.accuracyLossPoints, uplinkBytesRatio: result.uplinkBytesRatio, mergeFlaw: flaw }, null, 1)}\n`);
