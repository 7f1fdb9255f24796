import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runScenario, type RunSummary } from '../coordinator/run-scenario.js';
import { RecordLog } from '../coordinator/federation/record-log.js';
import { RunJournal } from '../coordinator/federation/run-journal.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { runPopulationScenario, type PopulationSummary } from '../simulation/population/population-scenario.js';
import { VirtualClients } from '../simulation/virtual-clients.js';
import { cliArgs } from './support/protofed-cli.js';

/**
 * kill -9 of a coordinator in the middle of a run, then `--resume`: real processes, real signals.
 * The resumed run must end exactly where the fault-free run with the same seed ends: the same
 * table (tableChecksum), accuracy matrix and global accuracy after every mission.
 */
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function protofed(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, cliArgs(...args), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output, exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
}

function until(output: () => string, pattern: RegExp, what: string, ms = 90_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const look = setInterval(() => {
      if (pattern.test(output())) {
        clearInterval(look);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(look);
        reject(new Error(`timed out waiting for ${what}:\n${output()}`));
      }
    }, 20);
  });
}

/** The mission lines a run prints ("      3       10  0.6600 ..."): how many missions are done. */
const missionsDone = (output: string): number => output.split('\n').filter((l) => /^ +\d+ +\d+ +\d\.\d{4}/.test(l)).length;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const yamlOf = (mode: string): string => `name: resume-it
seed: 21
dataset: { name: fashion-mnist, dir: embedded }
backbone: { name: pixels }
clients: { count: 3, mode: ${mode}, maxRestarts: 0 }
missions: { count: 10, classesPerClient: 2, shotsPerClass: 10 }
codec: { uplink: int8, downlink: f16 }
evaluation: { testPerClass: 50 }
timeouts: { phaseMs: 60000, connectMs: 60000 }
`;

function globalAccuracies(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { record: string; globalAccuracy: number })
    .filter((r) => r.record === 'global').map((r) => r.globalAccuracy);
}

function clientAccuracies(dir: string): { mission: number; clientId: string; accuracyBefore: number; accuracyAfter: number }[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as { record: string; mission: number; clientId: string; accuracyBefore: number; accuracyAfter: number })
    .filter((r) => r.record === 'client')
    .map(({ mission, clientId, accuracyBefore, accuracyAfter }) => ({ mission, clientId, accuracyBefore, accuracyAfter }));
}

/** The federation state a results folder's journal holds (784-d pixels, int8 updates). */
async function journalState(dir: string) {
  const { journal, state } = RunJournal.open(await RecordLog.open(join(dir, 'state')), 784, {}, getCodec('int8'));
  await journal.close();
  return state;
}

/**
 * A remote run on loopback: a scenario file and a keys file (made by `protofed keys`) in `dir`, a free port, a coordinator
 * writing to `out`, and clients c0..c2 that join it once it listens.
 */
async function startRemoteRun(dir: string, yaml: string, out: string) {
  const file = join(dir, 'scenario.yaml');
  writeFileSync(file, yaml);
  const tokenFile = join(dir, 'run.keys');
  if (!existsSync(tokenFile)) execFileSync(process.execPath, cliArgs('keys', '--clients', 'c0..c2', '--out', tokenFile), { stdio: 'pipe' });
  const port = String(await freePort());
  const coordinator = protofed(['coordinator', '--scenario', file, '--port', port, '--keys', tokenFile, '--out', out]);
  await until(coordinator.output, /coordinator listening/, 'the coordinator');
  const clients = [0, 1, 2].map((i) => protofed(['client', '--connect', `http://127.0.0.1:${port}`, '--key-file', tokenFile, '--id', `c${i}`, '--data', 'embedded', '--no-cache']));
  return { file, tokenFile, port, coordinator, clients };
}

/**
 * Bytes across the restart: every update the fault-free run counted is counted (those of the
 * interrupted mission acked before the kill included), and the socket bytes of the killed
 * coordinator's connections are in the total (up to its last durable write: at least 90% of them).
 */
function expectBytesCarried(summary: RunSummary, fine: RunSummary): void {
  expect(summary.bytesByType.up.update!.messages).toBeGreaterThanOrEqual(fine.bytesByType.up.update!.messages);
  expect(summary.wireBytesUp!).toBeGreaterThan(0.9 * fine.wireBytesUp!);
  expect(summary.wireBytesDown!).toBeGreaterThan(0.9 * fine.wireBytesDown!);
}

const summaryOf = (dir: string): RunSummary => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;

describe('kill -9 the coordinator, then resume', () => {
  it('process mode: the resumed run equals the fault-free one; an existing results folder is never overwritten', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-resume-'));
    const file = join(dir, 'scenario.yaml');
    writeFileSync(file, yamlOf('process'));
    const reference = join(dir, 'reference');
    await runScenario(parseScenario(parse(yamlOf('process'))), { outDir: reference, clientStderr: process.stderr });

    const out = join(dir, 'killed');
    const first = protofed(['run', file, '--out', out]);
    await until(first.output, /^ +4 +\d+ /m, 'mission 4');
    first.child.kill('SIGKILL');
    await first.exit;
    expect(missionsDone(first.output())).toBeLessThan(10);

    // A new run into the same folder is refused, and the saved run is left as it was.
    const metricsBefore = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
    const clash = protofed(['run', file, '--out', out]);
    expect(await clash.exit).toBe(1);
    expect(clash.output()).toMatch(/already holds a run: resume it with --resume .*or give --force/);
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).toBe(metricsBefore);

    const resumed = protofed(['run', '--resume', out]);
    expect(await resumed.exit).toBe(0);
    const summary = summaryOf(out);
    const fine = summaryOf(reference);
    expect(summary.resumedAfterMission).toBeGreaterThanOrEqual(3);
    expect(summary.missions).toBe(10);
    expect(summary.tableChecksum).toBe(fine.tableChecksum);
    expect(summary.accuracyMatrix).toEqual(fine.accuracyMatrix);
    expect(globalAccuracies(out)).toEqual(globalAccuracies(reference));
    // The new client processes are brought back to where the old ones were: after the interrupted
    // mission, every client's accuracy before and after each merge is the fault-free run's.
    const later = (dir: string) => clientAccuracies(dir).filter((r) => r.mission > summary.resumedAfterMission!);
    expect(later(out).length).toBeGreaterThan(0);
    expect(later(out)).toEqual(later(reference));
    expect(summary.runId).toBe(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).runId);
    expectBytesCarried(summary, fine);
  }, 180_000);

  it('population mode: a killed population run resumes to the same table and the same accuracy after every mission', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-resume-pop-'));
    const yaml = `name: resume-population
seed: 3
dataset: { name: fashion-mnist, dir: embedded }
backbone: { name: pixels }
clients: { mode: population, count: 5000, perMission: 300, workers: 1 }
missions: { count: 20, classesPerClient: 2, shotsPerClass: 3 }
codec: { uplink: int8, downlink: int8 }
evaluation: { testPerClass: 50, clientSample: 3 }
`;
    const file = join(dir, 'scenario.yaml');
    writeFileSync(file, yaml);
    const reference = join(dir, 'reference');
    await runPopulationScenario(parseScenario(parse(yaml)), { outDir: reference });
    const out = join(dir, 'killed');
    const first = protofed(['run', file, '--out', out]);
    await until(first.output, /^ +6 +\d+ /m, 'mission 6');
    first.child.kill('SIGKILL');
    await first.exit;
    expect(missionsDone(first.output())).toBeLessThan(20);
    const resumed = protofed(['run', '--resume', out]);
    expect(await resumed.exit).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as PopulationSummary;
    const fine = JSON.parse(readFileSync(join(reference, 'summary.json'), 'utf8')) as PopulationSummary;
    expect(summary.resumedAfterMission).toBeGreaterThanOrEqual(5);
    expect(summary.missions).toBe(20);
    expect(summary.tableChecksum).toBe(fine.tableChecksum);
    expect(globalAccuracies(out)).toEqual(globalAccuracies(reference));
  }, 180_000);

  it('remote mode with a delta+ uplink: clients that keep their tables across the restart send changes against what they hold, and those still decode right', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-resume-delta-'));
    const deltaOf = (yaml: string): string => yaml.replace('uplink: int8', 'uplink: delta+int8').replace('count: 10,', 'count: 12,');
    const reference = join(dir, 'reference');
    await runScenario(parseScenario(parse(deltaOf(yamlOf('virtual')))), { outDir: reference, launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
    const out = join(dir, 'killed');
    const { coordinator, clients, port, tokenFile } = await startRemoteRun(dir, deltaOf(yamlOf('remote')), out);
    await until(coordinator.output, /^ +5 +\d+ /m, 'mission 5');
    coordinator.child.kill('SIGKILL');
    await coordinator.exit;
    expect(missionsDone(coordinator.output())).toBeLessThan(12);
    const again = protofed(['coordinator', '--resume', out, '--port', port, '--keys', tokenFile]);
    expect(await again.exit).toBe(0);
    for (const c of clients) expect(await c.exit).toBe(0);
    const summary = summaryOf(out);
    expect(summary.resumedAfterMission).toBeGreaterThanOrEqual(4);
    // delta+ quantises each change against the table the client holds; a restart in the middle of
    // a mission can leave a client a newer table than in the fault-free run, so the bits may differ
    // by int8 rounding (pixels in 0..1: about 1/255). A lost history would add back the wrong
    // prototype: errors of whole tenths.
    const [a, b] = [await journalState(out), await journalState(reference)];
    expect(a.global.classIds()).toEqual(b.global.classIds());
    let worst = 0;
    for (const id of b.global.classIds()) {
      expect(a.global.get(id)!.count).toBe(b.global.get(id)!.count);
      const pa = a.global.prototype(id)!;
      const pb = b.global.prototype(id)!;
      for (let i = 0; i < pa.length; i++) worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!));
    }
    expect(worst).toBeLessThan(0.01);
    expect(Math.abs(summary.finalGlobalAccuracy - summaryOf(reference).finalGlobalAccuracy)).toBeLessThan(0.02);
  }, 120_000);

  it('asynchronous merging: a killed run resumes, every client goes on after its last merged mission, and no update is lost or merged twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-resume-async-'));
    const yaml = yamlOf('process').replace('missions: { count: 10,', 'missions: { merge: async, broadcastEveryUpdates: 3, count: 10,');
    const file = join(dir, 'scenario.yaml');
    writeFileSync(file, yaml);
    const reference = join(dir, 'reference');
    await runScenario(parseScenario(parse(yaml)), { outDir: reference, clientStderr: process.stderr });
    const out = join(dir, 'killed');
    const first = protofed(['run', file, '--out', out]);
    await until(first.output, /^ +4 +\d+ /m, 'broadcast 4');
    first.child.kill('SIGKILL');
    await first.exit;
    const resumed = protofed(['run', '--resume', out]);
    expect(await resumed.exit).toBe(0);
    expect(resumed.output()).toMatch(/resuming after \d+ broadcasts of the saved run/);
    // Merged in another order, the sums may differ in their last bits: compare counts exactly, means closely.
    const [a, b] = [await journalState(out), await journalState(reference)];
    expect(a.global.classIds()).toEqual(b.global.classIds());
    for (const id of b.global.classIds()) {
      expect(a.global.get(id)!.count).toBe(b.global.get(id)!.count);
      const pa = a.global.prototype(id)!;
      const pb = b.global.prototype(id)!;
      for (let i = 0; i < pa.length; i++) expect(Math.abs(pa[i]! - pb[i]!)).toBeLessThan(1e-9);
    }
    for (const c of ['c0', 'c1', 'c2']) expect(a.lastAppliedSeq(c)).toBe(b.lastAppliedSeq(c));
    expect(summaryOf(out).finalGlobalAccuracy).toBe(summaryOf(reference).finalGlobalAccuracy);
  }, 180_000);

  it('remote mode: clients ride out the restart (backoff, resend), the resumed coordinator finishes the run, and it equals the fault-free one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-resume-remote-'));
    const reference = join(dir, 'reference');
    // The same scenario with virtual clients learns the same samples: the same table, to the bit.
    await runScenario(parseScenario(parse(yamlOf('virtual'))), { outDir: reference, launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
    const out = join(dir, 'run');
    const { coordinator, clients, port, tokenFile } = await startRemoteRun(dir, yamlOf('remote'), out);
    await until(coordinator.output, /^ +3 +\d+ /m, 'mission 3');
    coordinator.child.kill('SIGKILL');
    await coordinator.exit;
    expect(missionsDone(coordinator.output())).toBeLessThan(10);
    await until(clients[0]!.output, /lost the coordinator .*reconnecting with backoff/, 'the client noticing');
    await until(clients[0]!.output, /reconnecting to .*attempt \d+/, 'a reconnect attempt');

    const again = protofed(['coordinator', '--resume', out, '--port', port, '--keys', tokenFile]);
    expect(await again.exit).toBe(0);
    for (const c of clients) expect(await c.exit).toBe(0);
    for (const c of clients) expect(c.output()).toMatch(/the coordinator restarted and resumed run run-\w+ at table version \d+/);
    const summary = summaryOf(out);
    const fine = summaryOf(reference);
    expect(summary.resumedAfterMission).toBeGreaterThanOrEqual(2);
    expect(summary.tableChecksum).toBe(fine.tableChecksum);
    expect(summary.accuracyMatrix).toEqual(fine.accuracyMatrix);
    expect(globalAccuracies(out)).toEqual(globalAccuracies(reference));
    // Every update the fault-free run counted is counted (the reference is virtual: no socket bytes to compare).
    expect(summary.bytesByType.up.update!.messages).toBeGreaterThanOrEqual(fine.bytesByType.up.update!.messages);
  }, 240_000);

  it('remote mode: a new coordinator (not resuming) refuses the clients of the run it replaced, with a clear reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-stale-'));
    const { coordinator: old, clients, port, tokenFile, file } = await startRemoteRun(dir, yamlOf('remote'), join(dir, 'old'));
    await until(old.output, /^ +2 +\d+ /m, 'mission 2');
    old.child.kill('SIGKILL');
    await old.exit;
    const fresh = protofed(['coordinator', '--scenario', file, '--port', port, '--keys', tokenFile, '--out', join(dir, 'new'), '--wait-ms', '60000']);
    for (const c of clients) expect(await c.exit).toBe(1);
    for (const c of clients) expect(c.output()).toMatch(/belongs to run run-\w+, but this coordinator runs run-\w+ \(to continue run run-\w+, start its coordinator with --resume/);
    fresh.child.kill('SIGKILL');
  }, 120_000);
});
