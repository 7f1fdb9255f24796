import { describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { DASHBOARD_NAMESPACE, DASHBOARD_PATH, DASHBOARD_SOCKET_PATH } from '../coordinator/dashboard/dashboard-server.js';
import type { DashboardClient, DashboardHistory, DashboardMission, DashboardPhase, DashboardPopulation } from '../coordinator/dashboard/dashboard-feed.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { runPopulationScenario } from '../simulation/population/population-scenario.js';
import type { MissionResult } from '../coordinator/federation/mission-results.js';
import { runVirtual, threeClientScenario } from './support/three-virtual-clients.js';

describe('the live dashboard', () => {
  it('pushes the history to a viewer that joins mid-run, then every mission, client change and phase; only with the viewer key; all served locally', async () => {
    let dashboardUrl = '';
    const seen: { history?: DashboardHistory; missions: DashboardMission[]; clients: DashboardClient[][]; phases: DashboardPhase[] } = { missions: [], clients: [], phases: [] };
    let pages: Promise<void> | undefined;
    let joined: Promise<void> | undefined;
    let refused: Promise<string[]> | undefined;
    const finished: MissionResult[] = [];
    // Every client holds each update back for 600 ms, so the run lasts long enough to be watched.
    const result = await runVirtual(threeClientScenario('dashboard', 4, {
      missions: { count: 5, classesPerClient: 2, shotsPerClass: 5 },
      faults: { stragglers: { probability: 1, delayMs: 600 } },
      timeouts: { phaseMs: 60_000, connectMs: 60_000 },
    }), {
      dashboard: true,
      onDashboard: (url) => (dashboardUrl = url),
      onMission: (m) => {
        finished.push(m);
        if (m.mission !== 1) return;
        const page = new URL(dashboardUrl);
        const viewer = new URLSearchParams(page.hash.slice(1)).get('viewer')!;
        const origin = page.origin;
        // A viewer that opens the dashboard after mission 2 gets missions 1 and 2 as history.
        joined = new Promise<void>((resolve, reject) => {
          const socket = io(`${origin}${DASHBOARD_NAMESPACE}`, { path: DASHBOARD_SOCKET_PATH, auth: { viewer }, reconnection: false, transports: ['websocket'] });
          socket.on('connect_error', reject);
          socket.on('history', (h: DashboardHistory) => (seen.history = h));
          socket.on('mission', (m: DashboardMission) => seen.missions.push(m));
          socket.on('clients', (c: DashboardClient[]) => seen.clients.push(c));
          socket.on('phase', (p: DashboardPhase) => {
            seen.phases.push(p);
            if (p.phase === 'finished') resolve();
          });
        });
        refused = Promise.all(['', 'not-the-viewer-key'].map((wrong) => new Promise<string>((resolve) => {
          const socket = io(`${origin}${DASHBOARD_NAMESPACE}`, { path: DASHBOARD_SOCKET_PATH, auth: { viewer: wrong }, reconnection: false, transports: ['websocket'] });
          socket.on('connect_error', (err) => resolve(err.message));
          socket.on('history', () => resolve('let in'));
        })));
        pages = (async () => {
          const html = await (await fetch(`${origin}${DASHBOARD_PATH}`)).text();
          // Every script and stylesheet comes from this coordinator: no CDN.
          const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((x) => x[1]!);
          expect(sources.length).toBeGreaterThanOrEqual(5);
          for (const s of sources) {
            expect(s.startsWith('/')).toBe(true);
            const response = await fetch(`${origin}${s}`);
            expect(response.status, s).toBe(200);
            expect((await response.arrayBuffer()).byteLength, s).toBeGreaterThan(100);
          }
        })();
      },
    });
    expect(dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/protofed\/dashboard#viewer=[\w-]{20,}$/);
    await pages;
    await joined;
    expect(await refused).toEqual(['not authorised: the dashboard needs the viewer key', 'not authorised: the dashboard needs the viewer key']);
    const h = seen.history!;
    expect(h.info).toMatchObject({ scenario: 'dashboard', mode: 'virtual', strategy: 'protofed', clients: 3, missionLimit: 5, codec: { uplink: 'f32', downlink: 'f32' } });
    expect(h.missions.map((m) => m.mission)).toEqual([0, 1]);
    expect(h.clients.map((c) => c.clientId)).toEqual(['c0', 'c1', 'c2']);
    // History and live missions together are the run, as its own results say.
    const all = [...h.missions, ...seen.missions];
    expect(all.map((m) => m.mission)).toEqual([0, 1, 2, 3, 4]);
    all.forEach((m, k) => {
      expect(m.globalAccuracy).toBe(finished[k]!.globalAccuracy);
      expect(m.bytes.up.message).toBe(finished[k]!.bytes.up.encodedBytes);
      expect(m.bytes.down.payload).toBe(finished[k]!.bytes.down.payloadBytes);
    });
    expect(all.at(-1)!.globalAccuracy).toBe(result.summary.finalGlobalAccuracy);
    const lastRows = seen.clients.at(-1)!;
    expect(lastRows.reduce((s, c) => s + c.bytesUp, 0)).toBe(result.summary.bytesUp);
    // Each live mission goes through its phases: its clients learn, then evaluate the merged table.
    const phasesOf3 = seen.phases.filter((p) => p.mission === 3).map((p) => p.phase);
    expect(phasesOf3).toEqual(['running', 'learning', 'evaluating']);
    expect(seen.phases.at(-1)).toEqual({ mission: 5, phase: 'finished' });
  }, 120_000);
});

describe('the live dashboard of a population', () => {
  it('shows the clients as distributions (reach and bytes per client), not rows, and every mission', async () => {
    let done: Promise<{ history: DashboardHistory; missions: DashboardMission[]; population: DashboardPopulation[] }> | undefined;
    const scenario = parseScenario({
      name: 'dashboard-population', seed: 3, dataset: { name: 'fashion-mnist', dir: 'embedded' }, backbone: { name: 'pixels' },
      clients: { mode: 'population', count: 2000, perMission: 50, workers: 1 }, missions: { count: 4, classesPerClient: 2, shotsPerClass: 3 },
      evaluation: { testPerClass: 20, clientSample: 2 },
    });
    const { summary } = await runPopulationScenario(scenario, {
      dashboard: true,
      onDashboard: (url) => {
        const page = new URL(url);
        done = new Promise((resolve, reject) => {
          const seen = { missions: [] as DashboardMission[], population: [] as DashboardPopulation[], history: undefined as DashboardHistory | undefined };
          const socket = io(`${page.origin}${DASHBOARD_NAMESPACE}`, { path: DASHBOARD_SOCKET_PATH, auth: { viewer: new URLSearchParams(page.hash.slice(1)).get('viewer') }, reconnection: false, transports: ['websocket'] });
          socket.on('connect_error', reject);
          socket.on('history', (h: DashboardHistory) => (seen.history = h));
          socket.on('mission', (m: DashboardMission) => seen.missions.push(m));
          socket.on('population', (p: DashboardPopulation) => seen.population.push(p));
          socket.on('phase', (p: DashboardPhase) => {
            if (p.phase === 'finished') resolve({ history: seen.history!, missions: seen.missions, population: seen.population });
          });
        });
      },
    });
    const { history, missions, population } = await done!;
    expect(history.info).toMatchObject({ mode: 'population', clients: 2000 });
    expect([...history.missions, ...missions].map((m) => m.mission)).toEqual([0, 1, 2, 3]);
    const last = population.at(-1) ?? history.population!;
    expect(last.clientsReached).toBe(summary.perClient.clientsReached);
    expect(last.participants).toBe(50);
    expect(last.bytesUp).toEqual(summary.perClient.up);
    expect(last.bytesDown).toEqual(summary.perClient.down);
  }, 60_000);
});
