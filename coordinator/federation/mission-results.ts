import { createHash } from 'node:crypto';
import { addTally, zeroTally, type ByteMeterEntries, type ByteTally } from '../../shared/protocol/byte-accounting.js';
import type { AccuracyMatrix } from '../../shared/learning/metrics/accuracy-matrix.js';
import type { ClassAssignment } from '../schedules/schedule.js';
import type { WireBytes } from './client-links.js';

export interface MissionBytes {
  up: ByteTally;
  down: ByteTally;
}

export interface ClientMissionResult {
  clientId: string;
  accuracyBefore: number;
  accuracyAfter: number;
  bytes: MissionBytes;
}

/** One round of the loop: a mission (sync), or a table broadcast (asynchronous merging). */
export interface MissionResult {
  mission: number;
  classesKnown: number;
  newClasses: number[];
  globalAccuracy: number;
  meanClientAccuracyBefore: number;
  meanClientAccuracyAfter: number;
  tableVersion: number;
  /** All clients together, this mission: the learning traffic (simulation control is counted apart, in the summary). */
  bytes: MissionBytes;
  clients: ClientMissionResult[];
  /** Taking-part clients whose update missed the deadline (merged later). */
  late: string[];
  /**
   * With a link model: the simulated seconds this mission's traffic takes, for the slowest client
   * (clients transfer in parallel). Learning traffic only.
   */
  simulatedTransferSeconds?: number;
  wallMs: number;
}

/** What the journal keeps of a finished mission: enough to report it, and to go on from the next one. */
export interface MissionRecord {
  result: MissionResult;
  /** This mission's row of the accuracy matrix: [group, accuracy]. */
  matrixRow: [number, number][];
  /** SHA-256 of the mission's assignment, to check that a resumed schedule replays it. */
  planHash: string;
  /** Updates owed (past a deadline and not yet come) at the end of this mission. */
  owed: { clientId: string; mission: number }[];
  /** Each client's byte counts at the end of this mission. */
  meters: Record<string, ByteMeterEntries>;
  /** Each client's socket bytes at the end of this mission (clients with sockets). */
  wire?: Record<string, WireBytes>;
}

export interface RunOutcome {
  missions: MissionResult[];
  /** Why the mission loop stopped. */
  endReason: 'mission limit' | 'field data exhausted';
  matrix: AccuracyMatrix;
  /** assignments[mission][client] */
  assignments: ClassAssignment[][][];
  finalEvalClasses: number[];
  /** The global accuracy once the late updates of the last missions were merged (when there were any). */
  globalAccuracyAfterLateUpdates: number | undefined;
  /** Owed updates that never came before the end (clients that dropped out of a mission). */
  lostUpdates: { clientId: string; mission: number }[];
}

export function diffBytes(before: MissionBytes | undefined, after: MissionBytes): MissionBytes {
  return { up: addTally(after.up, before?.up ?? zeroTally(), -1), down: addTally(after.down, before?.down ?? zeroTally(), -1) };
}

export function sumBytes(list: MissionBytes[]): MissionBytes {
  return list.reduce((t, b) => ({ up: addTally(t.up, b.up), down: addTally(t.down, b.down) }), { up: zeroTally(), down: zeroTally() });
}

export function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** SHA-256 of an assignment (class ids and train indices per client, in order). */
export function planHash(plan: ClassAssignment[][]): string {
  return createHash('sha256').update(JSON.stringify(plan)).digest('hex');
}
