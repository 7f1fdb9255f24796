import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runScenario } from '../coordinator/run-scenario.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { ClientKeys } from '../shared/protocol/client-keys.js';
import { cliArgs } from './support/protofed-cli.js';

/**
 * A coordinator and three clients, each on its own host: network namespaces joined by veth pairs
 * with link-local addresses, bandwidth limited with tc tbf, and a userspace proxy on each client
 * host that adds 40 ms of latency per chunk and cuts connections at random. The run must give the
 * same result as the same scenario on loopback. Needs root and iproute2 (CI has both).
 */
const canRun = process.getuid?.() === 0 && (existsSync('/usr/sbin/ip') || existsSync('/sbin/ip'));
const why = canRun ? '' : ' (skipped: needs root and iproute2 to create network namespaces)';

const tag = `pf${process.pid % 100000}`;
const coordinatorNs = `${tag}co`;
const clientNs = [0, 1, 2].map((i) => `${tag}c${i}`);
const children: ChildProcess[] = [];

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function setUpHosts(): void {
  ip('netns', 'add', coordinatorNs);
  ip('-n', coordinatorNs, 'link', 'set', 'lo', 'up');
  clientNs.forEach((ns, i) => {
    const a = `${tag}a${i}`;
    const b = `${tag}b${i}`;
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
    ip('link', 'set', a, 'netns', coordinatorNs);
    ip('link', 'set', b, 'netns', ns);
    ip('-n', coordinatorNs, 'addr', 'add', `169.254.${40 + i}.1/24`, 'dev', a);
    ip('-n', ns, 'addr', 'add', `169.254.${40 + i}.2/24`, 'dev', b);
    ip('-n', coordinatorNs, 'link', 'set', a, 'up');
    ip('-n', ns, 'link', 'set', b, 'up');
    // A slow link: 20 Mbit/s from each client host.
    execFileSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', b, 'root', 'tbf', 'rate', '20mbit', 'burst', '32kbit', 'latency', '100ms'], { stdio: 'pipe' });
  });
}

function tearDownHosts(): void {
  for (const c of children) c.kill('SIGKILL');
  for (const ns of [coordinatorNs, ...clientNs]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // Already gone.
    }
  }
}

/** node with `nodeArgs` in namespace `ns`. */
function inHost(ns: string, nodeArgs: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...nodeArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function waitFor(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${seen}`)), 60_000);
    const look = (d: Buffer): void => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
  });
}

const exited = (child: ChildProcess): Promise<number | null> => new Promise((resolve) => child.on('exit', (code) => resolve(code)));

const scenarioYaml = `name: multi-host
seed: 5
dataset: { name: fashion-mnist, dir: embedded }
backbone: { name: pixels }
clients: { count: 3, mode: remote, maxRestarts: 0 }
missions: { count: 6, classesPerClient: 2, shotsPerClass: 10 }
codec: { uplink: int8, downlink: f16 }
evaluation: { testPerClass: 50 }
timeouts: { phaseMs: 60000, connectMs: 60000 }
`;

afterAll(() => {
  if (canRun) tearDownHosts();
});

describe(`a run across hosts${why}`, () => {
  it.skipIf(!canRun)('a coordinator and 3 clients in their own network namespaces, over slow and faulty links, equal the loopback run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-netns-'));
    const scenarioFile = join(dir, 'multi-host.yaml');
    writeFileSync(scenarioFile, scenarioYaml);
    const tokenFile = join(dir, 'run.keys');
    writeFileSync(tokenFile, ClientKeys.generate(['c0', 'c1', 'c2']).format(), { mode: 0o600 });
    const silent = new Writable({ write: (_c, _e, done) => done() });
    const loopback = await runScenario(parseScenario({ ...(await import('yaml')).parse(scenarioYaml), clients: { count: 3, mode: 'process', maxRestarts: 0 } }), { clientStderr: silent });

    setUpHosts();
    const out = join(dir, 'results');
    const coordinator = inHost(coordinatorNs, cliArgs('coordinator', '--scenario', scenarioFile, '--host', '0.0.0.0', '--port', '4100', '--keys', tokenFile, '--out', out));
    const coordinatorDone = exited(coordinator);
    let coordinatorLog = '';
    coordinator.stderr!.on('data', (d: Buffer) => (coordinatorLog += d.toString()));
    await waitFor(coordinator, /coordinator listening/, 'the coordinator');
    const clientsDone = clientNs.map((ns, i) => {
      const proxy = inHost(ns, ['--import', 'tsx', 'test/support/fault-proxy.ts', '4200', `169.254.${40 + i}.1`, '4100', '40', '2', String(i + 1)]);
      return waitFor(proxy, /ready/, `proxy ${i}`).then(() => {
        const client = inHost(ns, cliArgs('client', '--connect', 'http://127.0.0.1:4200', '--key-file', tokenFile, '--id', `c${i}`, '--data', 'embedded', '--no-cache'));
        return exited(client);
      });
    });
    expect(await coordinatorDone).toBe(0);
    for (const code of await Promise.all(clientsDone)) expect(code).toBe(0);

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as typeof loopback.summary;
    expect(summary.missions).toBe(6);
    expect(summary.finalGlobalAccuracy).toBe(loopback.summary.finalGlobalAccuracy);
    expect(summary.accuracyMatrix).toEqual(loopback.summary.accuracyMatrix);
    expect(summary.classesKnown).toBe(loopback.summary.classesKnown);
    // The proxies really cut connections, and the clients came back.
    expect(coordinatorLog).toMatch(/disconnected \(transport close\)/);
  }, 240_000);
});
