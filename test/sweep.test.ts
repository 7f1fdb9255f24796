import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { paretoFront, writeSweepReport } from '../experiments/sweep-report.js';
import { expandGrid, parseIntegerList, runSweep } from '../experiments/sweep.js';

describe('sweeps', () => {
  it('parses seed ranges and lists, and refuses nonsense', () => {
    expect(parseIntegerList('1..4', 'seeds')).toEqual([1, 2, 3, 4]);
    expect(parseIntegerList('2,5,30', 'shots')).toEqual([2, 5, 30]);
    expect(() => parseIntegerList('1..x', 'seeds')).toThrow(/seeds/);
  });

  it('marks the configurations no other beats with fewer bytes', () => {
    const front = paretoFront([
      { config: 'a', bytes: 1, accuracy: 0.5 },
      { config: 'b', bytes: 2, accuracy: 0.7 },
      { config: 'c', bytes: 3, accuracy: 0.6 },
      { config: 'd', bytes: 3, accuracy: 0.7 },
    ]);
    expect([...front].sort()).toEqual(['a', 'b']);
  });

  it('runs a grid as separate runs, resumes without rerunning, and writes sweep.csv and a self-contained report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'protofed-sweep-'));
    const scenario = parseScenario({
      name: 'sweep-test', dataset: { name: 'fashion-mnist', dir: 'embedded' }, clients: { count: 3, mode: 'virtual' },
      missions: { count: 4, classesPerClient: 2, shotsPerClass: 5 }, evaluation: { testPerClass: 20 },
    });
    const cells = expandGrid(scenario, { codecs: ['f32', 'int8'], seeds: [1, 2] }, out);
    expect(cells.map((c) => c.id)).toEqual(['f32_protofed_k5_s1', 'f32_protofed_k5_s2', 'int8_protofed_k5_s1', 'int8_protofed_k5_s2']);
    await runSweep(scenario, cells, { jobs: 2 });
    const stamp = statSync(join(cells[0]!.dir, 'summary.json')).mtimeMs;
    await runSweep(scenario, cells, { jobs: 2 });
    expect(statSync(join(cells[0]!.dir, 'summary.json')).mtimeMs).toBe(stamp);
    const report = await writeSweepReport(out);
    expect(report.runs).toBe(4);
    const csv = readFileSync(report.csv, 'utf8').trim().split('\n');
    expect(csv).toHaveLength(5);
    // The int8 runs send fewer bytes up than the f32 runs of the same seed.
    const rows = csv.slice(1).map((l) => l.split(','));
    const bytesUp = (codec: string, seed: string) => Number(rows.find((r) => r[2] === codec && r[4] === seed)![9]);
    expect(bytesUp('int8', '1')).toBeLessThan(bytesUp('f32', '1'));
    const html = readFileSync(report.html, 'utf8');
    expect(html.match(/<svg/g)).toHaveLength(5);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    // Each chart also as its own SVG and a PNG at twice its size, for papers.
    const charts = readdirSync(report.charts).sort();
    expect(charts).toHaveLength(10);
    for (const name of charts.filter((f) => f.endsWith('.svg'))) {
      const svgText = readFileSync(join(report.charts, name), 'utf8');
      expect(svgText).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      const png = readFileSync(join(report.charts, name.replace(/\.svg$/, '.png')));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      const width = Number(/width="(\d+)"/.exec(svgText)![1]);
      expect(png.readUInt32BE(16)).toBe(2 * width);
    }
  }, 120_000);
});
