import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliArgs } from './support/protofed-cli.js';

/** `protofed run --json`: the events a script reads, one JSON object per line on stdout. */
describe('protofed run --json', () => {
  it('prints start, the bulk work\'s progress, one event per mission with elapsed time and time to go, and finished; nothing else on stdout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-json-'));
    const scenario = join(dir, 'scenario.yaml');
    writeFileSync(scenario, `name: json-events
seed: 2
dataset: { name: fashion-mnist, dir: embedded }
backbone: { name: pixels }
clients: { count: 2, mode: virtual }
missions: { count: 4, classesPerClient: 2, shotsPerClass: 4 }
evaluation: { testPerClass: 20 }
`);
    const out = join(dir, 'out');
    const run = spawnSync(process.execPath, cliArgs('run', scenario, '--json', '--out', out), { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const events = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: string; [k: string]: unknown });
    // Bulk work before the missions reports its progress; the test images are embedded in one step here.
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.at(-1)).toMatchObject({ phase: 'embedding', what: 'test images of the field classes', done: 10 * 20, total: 10 * 20 });
    expect(events.filter((e) => e.event !== 'progress').map((e) => e.event)).toEqual(['start', 'mission', 'mission', 'mission', 'mission', 'finished']);
    expect(events.findIndex((e) => e.event === 'progress')).toBeGreaterThan(0);
    expect(events[0]).toMatchObject({ scenario: 'json-events', mode: 'virtual', clients: 2, missions: 4 });
    const missions = events.filter((e) => e.event === 'mission');
    missions.forEach((m, k) => {
      expect(m).toMatchObject({ mission: k, of: 4 });
      expect(m.elapsedSeconds as number).toBeGreaterThan(0);
      // The pace is known from the second mission on.
      if (k === 0) expect(m.etaSeconds).toBeNull();
      else expect(m.etaSeconds as number).toBeGreaterThanOrEqual(0);
    });
    expect(missions.at(-1)!.etaSeconds).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { tableChecksum: string; finalGlobalAccuracy: number };
    expect(events.at(-1)).toMatchObject({ tableChecksum: summary.tableChecksum, finalGlobalAccuracy: summary.finalGlobalAccuracy, missions: 4 });

    // A failure is an event too.
    const bad = spawnSync(process.execPath, cliArgs('run', join(dir, 'missing.yaml'), '--json'), { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout.trim())).toMatchObject({ event: 'error' });
  }, 60_000);
});
