import { EventEmitter } from 'node:events';
import type { MissionResult } from '../federation/mission-results.js';

/** What a run is, as the dashboard shows it at the top. */
export interface DashboardRunInfo {
  runId: string;
  scenario: string;
  mode: string;
  strategy: string;
  schedule: string;
  merge: string;
  codec: { uplink: string; downlink: string };
  clients: number;
  missionLimit: number;
}

/** One finished mission (or asynchronous broadcast). */
export interface DashboardMission {
  mission: number;
  classesKnown: number;
  /** Null where the global table was not evaluated (a population run without an evaluator). */
  globalAccuracy: number | null;
  /** Mean client accuracy before and after the merge; null where no client evaluated. */
  clientsBefore: number | null;
  clientsAfter: number | null;
  bytes: { up: { message: number; payload: number }; down: { message: number; payload: number } };
  wallMs: number;
}

/** One client's row in the clients table. */
export interface DashboardClient {
  clientId: string;
  connected: boolean;
  /** When its last message arrived (ms since the epoch), null before any. */
  lastSeen: number | null;
  tableVersion: number;
  bytesUp: number;
  bytesDown: number;
  restarts: number;
  /** Missions whose deadline its update missed. */
  late: number;
  /** Late updates it still owes. */
  owed: number;
  /** Owed updates that never came, known when the run ends (0 before). */
  lost: number;
  refused: number;
  left: boolean;
}

export interface DashboardPhase {
  /** The mission in progress (0-based), or the number of missions when the run is over. */
  mission: number;
  /** running: between missions, or an asynchronous run; learning and evaluating: the phases of a sync mission. */
  phase: 'starting' | 'running' | 'learning' | 'evaluating' | 'finished' | 'failed';
  detail?: string;
}

/** A population's clients as distributions, not rows. */
export interface DashboardPopulation {
  /** Clients that have taken part at least once, and those in the last mission. */
  clientsReached: number;
  participants: number;
  /** Learning bytes per client that has taken part, so far. */
  bytesUp: Distribution;
  bytesDown: Distribution;
}

/** A distribution of values over clients (population summaries and the dashboard). */
export interface Distribution {
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

export interface DashboardHistory {
  info: DashboardRunInfo;
  missions: DashboardMission[];
  clients: DashboardClient[];
  population: DashboardPopulation | null;
  phase: DashboardPhase;
}

interface DashboardFeedEvents {
  mission: [DashboardMission];
  clients: [DashboardClient[]];
  population: [DashboardPopulation];
  phase: [DashboardPhase];
}

/**
 * Everything the dashboard shows, kept as the run goes, so that a viewer who opens it in the middle
 * gets the history so far, then every change as it happens.
 *
 * @example
 * const feed = new DashboardFeed(info);
 * feed.missionDone(result); // viewers get a 'mission' event
 */
export class DashboardFeed extends EventEmitter<DashboardFeedEvents> {
  private readonly missions: DashboardMission[] = [];
  private clients: DashboardClient[] = [];
  private population: DashboardPopulation | null = null;
  private phase: DashboardPhase = { mission: 0, phase: 'starting' };

  constructor(readonly info: DashboardRunInfo) {
    super();
  }

  history(): DashboardHistory {
    return { info: this.info, missions: [...this.missions], clients: this.clients, population: this.population, phase: this.phase };
  }

  missionDone(r: MissionResult): void {
    this.addMission({
      mission: r.mission,
      classesKnown: r.classesKnown,
      globalAccuracy: r.globalAccuracy,
      clientsBefore: Number.isFinite(r.meanClientAccuracyBefore) ? r.meanClientAccuracyBefore : null,
      clientsAfter: Number.isFinite(r.meanClientAccuracyAfter) ? r.meanClientAccuracyAfter : null,
      bytes: {
        up: { message: r.bytes.up.encodedBytes, payload: r.bytes.up.payloadBytes },
        down: { message: r.bytes.down.encodedBytes, payload: r.bytes.down.payloadBytes },
      },
      wallMs: r.wallMs,
    });
  }

  /** A finished mission of any kind of run. */
  addMission(m: DashboardMission): void {
    this.missions.push(m);
    this.emit('mission', m);
    this.setPhase({ mission: m.mission + 1, phase: 'running' });
  }

  setPopulation(p: DashboardPopulation): void {
    this.population = p;
    this.emit('population', p);
  }

  setClients(rows: DashboardClient[]): void {
    this.clients = rows;
    this.emit('clients', rows);
  }

  setPhase(phase: DashboardPhase): void {
    this.phase = phase;
    this.emit('phase', phase);
  }
}
