import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { entryPoint } from '../shared/entry-points.js';
import { downlinkOf } from '../shared/protocol/codecs/codec-spec.js';
import type { Scenario } from '../shared/scenario/scenario-config.js';

/** The grid axes of a sweep; an absent axis keeps the scenario's value. */
export interface SweepGrid {
  codecs?: string[];
  strategies?: string[];
  seeds?: number[];
  shots?: number[];
}

/** One run of the grid: its parameters and where its results folder is. */
export interface SweepCell {
  id: string;
  codec: string;
  strategy: string;
  seed: number;
  shots: number;
  dir: string;
}

/** Parses "1..5" or "1,3,7" into a list of integers. */
export function parseIntegerList(text: string, what: string): number[] {
  const range = /^(\d+)\.\.(\d+)$/.exec(text.trim());
  const values = range
    ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i)
    : text.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 0)) throw new Error(`${what}: expected "a..b" or a comma list of integers, got "${text}"`);
  return values;
}

/** Every combination of the grid, each with its own results folder under `outDir/runs/`. */
export function expandGrid(scenario: Scenario, grid: SweepGrid, outDir: string): SweepCell[] {
  const cells: SweepCell[] = [];
  for (const codec of grid.codecs ?? [scenario.codec.uplink]) {
    for (const strategy of grid.strategies ?? [scenario.strategy]) {
      for (const shots of grid.shots ?? [scenario.missions.shotsPerClass]) {
        for (const seed of grid.seeds ?? [scenario.seed]) {
          const id = `${codec}_${strategy}_k${shots}_s${seed}`;
          cells.push({ id, codec, strategy, seed, shots, dir: join(outDir, 'runs', id) });
        }
      }
    }
  }
  return cells;
}

const cliEntry = entryPoint(import.meta.url, '../cli/main');

/**
 * Runs every cell as its own `protofed run` process, `jobs` at a time (all cores by default), each
 * on the same scenario but for the cell's codec (up and down), strategy, shots and seed. A cell whose
 * results folder already holds a summary is not run again, so a stopped sweep resumes (a cell
 * stopped midway starts again).
 *
 * @example
 * await runSweep(scenario, expandGrid(scenario, { codecs: ['f32', 'int8'], seeds: [1, 2] }, 'sweeps/x'), { jobs: 2 });
 */
export async function runSweep(
  scenario: Scenario,
  cells: SweepCell[],
  options: { jobs?: number; onCell?: (cell: SweepCell, done: number, total: number, error?: string) => void } = {},
): Promise<void> {
  const jobs = Math.max(1, options.jobs ?? cpus().length);
  let next = 0;
  let done = 0;
  const failures: string[] = [];
  const worker = async (): Promise<void> => {
    while (next < cells.length) {
      const cell = cells[next++]!;
      if (!existsSync(join(cell.dir, 'summary.json'))) {
        mkdirSync(cell.dir, { recursive: true });
        const file = join(cell.dir, 'scenario.json');
        const cellScenario = {
          ...scenario,
          name: `${scenario.name}-${cell.id}`,
          seed: cell.seed,
          strategy: cell.strategy,
          codec: { uplink: cell.codec, downlink: downlinkOf(cell.codec) },
          missions: { ...scenario.missions, shotsPerClass: cell.shots },
        };
        writeFileSync(file, JSON.stringify(cellScenario, null, 2));
        const error = await runCell(file, cell.dir);
        if (error) failures.push(`${cell.id}: ${error}`);
        options.onCell?.(cell, ++done, cells.length, error);
      } else {
        options.onCell?.(cell, ++done, cells.length);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, cells.length) }, worker));
  if (failures.length > 0) throw new Error(`${failures.length} of ${cells.length} runs failed:\n  ${failures.join('\n  ')}`);
}

function runCell(scenarioFile: string, out: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...cliEntry.execArgv, cliEntry.file, 'run', scenarioFile, '--out', out, '--force', '--quiet'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve(code === 0 ? undefined : (stderr.trim().split('\n').at(-1) ?? `exit ${code}`)));
  });
}
