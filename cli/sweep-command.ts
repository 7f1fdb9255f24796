import { resolve } from 'node:path';
import { isCodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import { CODEC_NAMES } from '../shared/protocol/codecs/index.js';
import { STRATEGIES } from '../shared/protocol/messages.js';
import { loadScenarioFile } from '../shared/scenario/scenario-config.js';
import { writeSweepReport } from '../experiments/sweep-report.js';
import { expandGrid, parseIntegerList, runSweep } from '../experiments/sweep.js';
import { emitJson, JobClock } from './progress.js';

export interface SweepCommandOptions {
  codec?: string;
  strategy?: string;
  seeds?: string;
  shots?: string;
  out?: string;
  jobs?: string;
  mode?: 'process' | 'virtual';
  json?: boolean;
}

function list(text: string | undefined, known: readonly string[] | ((v: string) => boolean), what: string): string[] | undefined {
  if (text === undefined) return undefined;
  const values = text.split(',').map((v) => v.trim()).filter(Boolean);
  const ok = typeof known === 'function' ? known : (v: string) => known.includes(v);
  const bad = values.filter((v) => !ok(v));
  if (bad.length > 0) {
    const hint = typeof known === 'function' ? `codecs are ${CODEC_NAMES.join(', ')} or pq-<subspaces>x<centroids>, with "delta+" before and "+deflate" after` : `known: ${known.join(', ')}`;
    throw new Error(`--${what}: unknown ${bad.join(', ')}; ${hint}`);
  }
  return values;
}

/** `protofed sweep SCENARIO`: runs the grid on all cores, then writes sweep.csv and report.html. */
export async function sweepCommand(scenarioPath: string, options: SweepCommandOptions): Promise<void> {
  const loaded = loadScenarioFile(scenarioPath);
  const scenario = options.mode ? { ...loaded, clients: { ...loaded.clients, mode: options.mode } } : loaded;
  const outDir = resolve(options.out ?? `sweeps/${scenario.name}`);
  const cells = expandGrid(scenario, {
    codecs: list(options.codec, isCodecSpec, 'codec'),
    strategies: list(options.strategy, STRATEGIES, 'strategy'),
    seeds: options.seeds === undefined ? undefined : parseIntegerList(options.seeds, '--seeds'),
    shots: options.shots === undefined ? undefined : parseIntegerList(options.shots, '--shots'),
  }, outDir);
  const jobs = options.jobs === undefined ? undefined : parseIntegerList(options.jobs, '--jobs')[0];
  const say = (line: string): void => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  if (options.json) emitJson('start', { scenario: scenario.name, source: scenarioPath, runs: cells.length, out: outDir });
  say(`sweep ${scenarioPath}: ${cells.length} runs into ${outDir}`);
  const clock = new JobClock(cells.length);
  await runSweep(scenario, cells, {
    jobs,
    onCell: (cell, done, total, error) => {
      clock.step(done);
      if (options.json) emitJson('run', { id: cell.id, done, of: total, ...(error ? { error } : {}), elapsedSeconds: clock.elapsedSeconds, etaSeconds: clock.etaSeconds });
      else say(`[${done}/${total}] ${cell.id}${error ? ` FAILED: ${error}` : ''}  (${clock.describe()})`);
    },
  });
  const report = await writeSweepReport(outDir, `protofed sweep: ${scenario.name}`);
  if (options.json) emitJson('finished', { runs: cells.length, report: report.html, data: report.csv, charts: report.charts });
  say(`report: ${report.html}\ndata: ${report.csv}\ncharts (SVG and PNG): ${report.charts}`);
}

/** `protofed report DIR`: re-renders a sweep's report from its runs. */
export async function reportCommand(dir: string): Promise<void> {
  const report = await writeSweepReport(resolve(dir));
  process.stdout.write(`${report.runs} runs; report: ${report.html}\ndata: ${report.csv}\ncharts (SVG and PNG): ${report.charts}\n`);
}
