import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { strategyNamed } from '../shared/strategies/registry.js';
import type { StrategyName } from '../shared/protocol/messages.js';

/** One finished run of a sweep, as read back from its results folder. */
export interface SweepRun {
  id: string;
  codec: string;
  strategy: string;
  seed: number;
  shots: number;
  config: string;
  summary: {
    finalGlobalAccuracy: number; bytesUp: number; bytesDown: number; payloadBytesUp: number; payloadBytesDown: number;
    averageIncrementalAccuracy: number; forgetting: { value: number }; backwardTransfer: number; wallSeconds: number;
    accuracyMatrix: (number | null)[][]; bytesByClient: Record<string, { up: number; down: number }>; classesKnown: number;
  };
  missions: { mission: number; globalAccuracy: number; meanClientAccuracyAfter: number; bytes: { up: { encodedBytes: number }; down: { encodedBytes: number } } }[];
}

/** Reads every finished run under `outDir/runs/` (a run without a summary is skipped). */
export function readSweep(outDir: string): SweepRun[] {
  const root = join(outDir, 'runs');
  if (!existsSync(root)) throw new Error(`${outDir} is not a sweep folder (no runs/ inside)`);
  return readdirSync(root).sort().flatMap((id) => {
    const dir = join(root, id);
    if (!existsSync(join(dir, 'summary.json'))) return [];
    const scenario = JSON.parse(readFileSync(join(dir, 'scenario.json'), 'utf8')) as {
      codec: { uplink: string }; strategy: string; seed: number; missions: { shotsPerClass: number };
    };
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as SweepRun['summary'];
    const missions = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
      .map((l) => JSON.parse(l) as { record: string } & SweepRun['missions'][number])
      .filter((r) => r.record === 'global');
    const codec = scenario.codec.uplink;
    const shots = scenario.missions.shotsPerClass;
    return [{ id, codec, strategy: scenario.strategy, seed: scenario.seed, shots, config: `${scenario.strategy} · ${codec} · ${shots} shots`, summary, missions }];
  });
}

const CSV_COLUMNS = ['id', 'strategy', 'codec', 'shots', 'seed', 'finalGlobalAccuracy', 'averageIncrementalAccuracy', 'forgetting', 'backwardTransfer',
  'bytesUp', 'bytesDown', 'payloadBytesUp', 'payloadBytesDown', 'classesKnown', 'wallSeconds'] as const;

/** sweep.csv: one row per run. */
export function sweepCsv(runs: SweepRun[]): string {
  const rows = runs.map((r) => [r.id, r.strategy, r.codec, r.shots, r.seed, r.summary.finalGlobalAccuracy, r.summary.averageIncrementalAccuracy,
    r.summary.forgetting.value, r.summary.backwardTransfer, r.summary.bytesUp, r.summary.bytesDown, r.summary.payloadBytesUp,
    r.summary.payloadBytesDown, r.summary.classesKnown, r.summary.wallSeconds].join(','));
  return `${CSV_COLUMNS.join(',')}\n${rows.join('\n')}\n`;
}

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The whole powers of ten (as exponents) that span `logs`, for a log-binned axis. */
function decades(logs: number[]): number[] {
  const lo = Math.floor(Math.min(...logs));
  const hi = Math.ceil(Math.max(...logs));
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** Configs (strategy · codec · shots) whose final accuracy no other config beats with fewer bytes. */
export function paretoFront(points: { config: string; bytes: number; accuracy: number }[]): Set<string> {
  return new Set(points.filter((p) => !points.some((q) => q !== p && q.bytes <= p.bytes && q.accuracy >= p.accuracy && (q.bytes < p.bytes || q.accuracy > p.accuracy))).map((p) => p.config));
}

/**
 * The sweep report: one self-contained HTML file (inline SVG charts drawn by vega-lite, no network
 * needed) with accuracy per mission, accuracy against cumulative bytes with the Pareto front,
 * bytes per client, the accuracy matrix of the best configuration, forgetting and BWT per
 * strategy, and error bands over seeds.
 *
 * @example
 * await writeSweepReport('sweeps/glyphs-codecs'); // writes sweep.csv and report.html there
 */
/**
 * A run's accuracy after one mission: the global table's, or for a strategy that merges nothing
 * (local-only: its global table stays empty) the clients' own tables' mean.
 */
export function missionAccuracy(r: SweepRun, m: SweepRun['missions'][number]): number {
  return strategyNamed(r.strategy as StrategyName).judgedBy === 'clients' ? m.meanClientAccuracyAfter : m.globalAccuracy;
}

/** What a run's clients end with, as missionAccuracy counts it. */
export function finalAccuracy(r: SweepRun): number {
  const last = r.missions.at(-1);
  if (strategyNamed(r.strategy as StrategyName).judgedBy !== 'clients') return r.summary.finalGlobalAccuracy;
  return last ? missionAccuracy(r, last) : NaN;
}

export async function writeSweepReport(outDir: string, title = 'protofed sweep'): Promise<{ runs: number; html: string; csv: string; charts: string }> {
  const runs = readSweep(outDir);
  if (runs.length === 0) throw new Error(`${outDir} holds no finished run`);
  const csvPath = join(outDir, 'sweep.csv');
  writeFileSync(csvPath, sweepCsv(runs));

  const perMission = runs.flatMap((r) => {
    let cumulative = 0;
    return r.missions.map((m) => {
      cumulative += m.bytes.up.encodedBytes + m.bytes.down.encodedBytes;
      return { config: r.config, seed: r.seed, mission: m.mission + 1, accuracy: missionAccuracy(r, m), megabytes: cumulative / 1e6 };
    });
  });
  const configs = [...new Set(runs.map((r) => r.config))];
  const finals = configs.map((config) => {
    const of = runs.filter((r) => r.config === config);
    return { config, bytes: mean(of.map((r) => r.summary.bytesUp + r.summary.bytesDown)), accuracy: mean(of.map(finalAccuracy)) };
  });
  const front = paretoFront(finals);
  // The mean over seeds of each configuration's path through (bytes, accuracy), mission by mission.
  const paths = configs.flatMap((config) => {
    const of = perMission.filter((p) => p.config === config);
    const missions = [...new Set(of.map((p) => p.mission))].sort((a, b) => a - b);
    return missions.map((mission) => {
      const at = of.filter((p) => p.mission === mission);
      return { config, mission, megabytes: mean(at.map((p) => p.megabytes)), accuracy: mean(at.map((p) => p.accuracy)) };
    });
  });
  const legend = { labelLimit: 400 };
  const accuracyScale = { zero: false };
  const frontier = finals.map((f) => ({ ...f, megabytes: f.bytes / 1e6, front: front.has(f.config) ? 'Pareto front' : 'dominated' }));
  const width = 560;

  const accuracyChart = await svg({
    width, height: 300, title: 'Global accuracy per mission (mean over seeds, band: ±1 sd)',
    data: { values: perMission },
    layer: [
      { mark: { type: 'errorband', extent: 'stdev', opacity: 0.25 }, encoding: { x: { field: 'mission', type: 'quantitative' }, y: { field: 'accuracy', type: 'quantitative', title: 'global accuracy', scale: accuracyScale }, color: { field: 'config', type: 'nominal', legend } } },
      { mark: 'line', encoding: { x: { field: 'mission', type: 'quantitative' }, y: { field: 'accuracy', aggregate: 'mean', type: 'quantitative' }, color: { field: 'config', type: 'nominal', legend } } },
    ],
  } as TopLevelSpec);
  const bytesChart = await svg({
    width, height: 300, title: 'Accuracy against cumulative bytes (up + down, log scale); final points, Pareto front filled',
    layer: [
      { data: { values: paths }, mark: 'line', encoding: { x: { field: 'megabytes', type: 'quantitative', title: 'MB exchanged so far (encoded messages, up + down)', scale: { type: 'log' } }, y: { field: 'accuracy', type: 'quantitative', title: 'global accuracy', scale: accuracyScale }, order: { field: 'mission' }, color: { field: 'config', type: 'nominal', legend } } },
      { data: { values: frontier }, mark: { type: 'point', size: 140, strokeWidth: 2 }, encoding: { x: { field: 'megabytes', type: 'quantitative', scale: { type: 'log' } }, y: { field: 'accuracy', type: 'quantitative' }, color: { field: 'config', type: 'nominal', legend }, shape: { field: 'front', type: 'nominal', title: 'final point' }, fill: { condition: { test: "datum.front === 'Pareto front'", field: 'config', type: 'nominal', legend: null }, value: 'white' } } },
    ],
  } as TopLevelSpec);
  // Strategies differ by orders of magnitude in bytes: the histogram bins log10(kB).
  const clientBytes = runs.flatMap((r) => Object.values(r.summary.bytesByClient).map((b) => ({ config: r.config, log10kB: Math.log10(Math.max(1, b.up + b.down) / 1000) })));
  const histogram = await svg({
    width, height: 220, title: 'Bytes per client (up + down, all runs; log scale)', data: { values: clientBytes },
    mark: 'bar',
    encoding: {
      x: { field: 'log10kB', bin: { maxbins: 40 }, type: 'quantitative', title: 'kB per client', axis: { values: decades(clientBytes.map((c) => c.log10kB)), labelExpr: "format(pow(10, datum.value), '~s')" } },
      y: { aggregate: 'count', type: 'quantitative', title: 'clients' },
      color: { field: 'config', type: 'nominal', legend },
    },
  } as TopLevelSpec);
  const best = [...runs].sort((a, b) => b.summary.finalGlobalAccuracy - a.summary.finalGlobalAccuracy)[0]!;
  const cells = best.summary.accuracyMatrix.flatMap((row, k) => row.map((a, j) => (a === null ? undefined : { mission: k + 1, group: j + 1, accuracy: a })).filter(Boolean));
  const heatmap = await svg({
    width: 360, height: 300, title: `Accuracy matrix a[k][j] of the best run (${best.id})`, data: { values: cells },
    mark: 'rect', encoding: { x: { field: 'group', type: 'ordinal', title: 'class group j (learned in mission j)' }, y: { field: 'mission', type: 'ordinal', title: 'after mission k' }, color: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] } } },
  } as TopLevelSpec);
  const strategies = [...new Set(runs.map((r) => r.strategy))].flatMap((strategy) => {
    const of = runs.filter((r) => r.strategy === strategy);
    return [
      { strategy, metric: 'forgetting (Chaudhry, max)', value: mean(of.map((r) => r.summary.forgetting.value ?? 0)) },
      { strategy, metric: 'backward transfer', value: mean(of.map((r) => r.summary.backwardTransfer ?? 0)) },
    ];
  });
  const forgetting = await svg({
    width: 360, height: 220, title: 'Forgetting and BWT of the global table per strategy (mean over runs; local-only has none)', data: { values: strategies },
    mark: 'bar', encoding: { x: { field: 'strategy', type: 'nominal', axis: { labelAngle: -30 } }, xOffset: { field: 'metric' }, y: { field: 'value', type: 'quantitative' }, color: { field: 'metric', type: 'nominal', legend } },
  } as TopLevelSpec);

  const table = finals.sort((a, b) => a.bytes - b.bytes).map((f) =>
    `<tr><td>${escape(f.config)}</td><td>${f.accuracy.toFixed(4)}</td><td>${(f.bytes / 1e6).toFixed(3)}</td><td>${front.has(f.config) ? '✓' : ''}</td></tr>`).join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}figure{display:inline-block;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>
</head><body>
<h1>${escape(title)}</h1>
<p>${runs.length} runs: ${configs.length} configurations × seeds. Data: <code>sweep.csv</code>; each run's folder is under <code>runs/</code>.</p>
<table><tr><th>configuration</th><th>final global accuracy (mean)</th><th>MB exchanged (mean)</th><th>Pareto front</th></tr>
${table}</table>
<figure>${accuracyChart}</figure>
<figure>${bytesChart}</figure>
<figure>${histogram}</figure>
<figure>${heatmap}</figure>
<figure>${forgetting}</figure>
</body></html>
`;
  const htmlPath = join(outDir, 'report.html');
  writeFileSync(htmlPath, html);
  const charts = writeChartFiles(join(outDir, 'charts'), {
    'accuracy-per-mission': accuracyChart, 'accuracy-vs-bytes': bytesChart, 'bytes-per-client': histogram,
    'accuracy-matrix': heatmap, 'forgetting-bwt': forgetting,
  });
  return { runs: runs.length, html: htmlPath, csv: csvPath, charts };
}

/**
 * Every chart of the report as its own SVG, and as a PNG at twice its size (rendered by resvg
 * with the system's fonts), for papers.
 */
function writeChartFiles(dir: string, charts: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, chart] of Object.entries(charts)) {
    const svgText = chart.includes('xmlns=') ? chart : chart.replace('<svg', '<svg xmlns="http://www.w3.org/2000/svg"');
    writeFileSync(join(dir, `${name}.svg`), svgText);
    const png = new Resvg(svgText, { fitTo: { mode: 'zoom', value: 2 }, background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
    writeFileSync(join(dir, `${name}.png`), png);
  }
  return dir;
}

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
