import type { ClientLink } from './client-links.js';
import type { ClientMissionResult, MissionRecord, RunOutcome } from './mission-results.js';

/** One round of the mission loop, as its pace opened it. */
export interface Round {
  /** The round's number: a mission (sync), or a table broadcast (asynchronous merging). */
  index: number;
  /** Classes first learned in this round (its group of the accuracy matrix). */
  newClasses: number[];
  /** The classes known after the round: what the global table is evaluated on. */
  evalClasses: number[];
  /** Clients that took part but whose update missed the round (merged when it comes). */
  late: string[];
  /** SHA-256 of the assignment this round follows (checked when a run is resumed). */
  planHash: string;
}

/**
 * How the one mission loop (MissionRunner) moves from round to round: synchronous missions with
 * a barrier (and deadlines with a quorum), or asynchronous merging with periodic broadcasts. The
 * loop does the rest the same way for both: merge, make it durable, send tables, evaluate, record.
 */
export interface Pace {
  /** Replays the rounds a resumed run's journal holds, so that the next one follows them. */
  restore(records: readonly MissionRecord[]): void;
  /**
   * Hands out the next round's work and resolves once the round may close (sync: every
   * participant delivered, or a quorum past the deadline; async: the broadcast cadence); undefined
   * when there is no round left.
   */
  next(index: number): Promise<Round | undefined>;
  /** The round is merged and durable: send the new table to its clients (and, sync, ask them to evaluate it). */
  sendTables(round: Round): void;
  /** Waits for the clients' own evaluations of the round and returns them, with their bytes. */
  clientResults(round: Round): Promise<ClientMissionResult[]>;
  /** After the last round: late updates (sync), or every client's evaluation of the final table (async). */
  finish(): Promise<Pick<RunOutcome, 'endReason' | 'assignments' | 'finalEvalClasses' | 'globalAccuracyAfterLateUpdates' | 'lostUpdates'> & { finalClients?: ClientMissionResult[] }>;
  /** A client (re)joined in the middle: bring it back in step. */
  joined(link: ClientLink): void;
  /** A client's update was merged (and acked). */
  applied?(clientId: string, mission: number): void;
  /** The updates still owed at the end of the round (for the journal). */
  owed(): { clientId: string; mission: number }[];
  /** The last mission a client may report on: none after it was handed out, or asked to evaluate. */
  latestReportable(): number;
}
