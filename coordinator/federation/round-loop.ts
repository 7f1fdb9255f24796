import type { FederationState } from './federation-state.js';
import type { RunJournal } from './run-journal.js';
import type { UpdateIntake } from './update-intake.js';

/** What the loop needs of a mode's rounds: how to hand out work, deliver tables, and record a round. */
export interface RoundPace<Round, Record> {
  /** Replays the rounds a resumed run's journal holds, so that the next one follows them. */
  restore(records: readonly Record[]): void;
  /** Hands out the next round's work and resolves once the round may close; undefined when none is left. */
  next(index: number): Promise<Round | undefined>;
  /** The round is merged, durable and acknowledged: send the clients their tables. */
  deliver(round: Round): Promise<void> | void;
  /** Evaluates the round and returns its record, for the journal and the results. */
  complete(round: Round): Promise<Record>;
}

/** The engine the loop drives: the state, its journal and the intake that feeds it. */
export interface RoundEngine<Record> {
  state: FederationState;
  journal: RunJournal<Record>;
  intake: UpdateIntake;
  /** How the coordinator merges: a round-average state closes its round after each one. */
  merge: 'sum' | 'round-average';
  /** Fold the journal into a snapshot every this many rounds (default 25). */
  snapshotEvery?: number | undefined;
}

/**
 * The one mission loop of every mode. Each round: the pace hands out work and says when the
 * round may close; the round's merge is made durable and every update in it acknowledged (no
 * client may hold a table version a crash could take back, or get a table before its ack); the
 * pace delivers the tables and evaluates; the round is recorded in the journal, and now and then
 * the journal is folded into a snapshot. A resumed run starts after the rounds its journal holds.
 *
 * @example
 * await runRounds({ state, journal, intake, merge: 'sum' }, pace, (record) => results.push(record));
 */
export async function runRounds<Round, Record>(engine: RoundEngine<Record>, pace: RoundPace<Round, Record>, onRecord?: (record: Record) => void): Promise<void> {
  const { state, journal, intake } = engine;
  pace.restore(journal.missions);
  for (let index = journal.missions.length; ; index++) {
    const round = await pace.next(index);
    if (round === undefined) return;
    if (engine.merge === 'round-average') state.closeRound();
    await journal.flush();
    await intake.settled();
    await pace.deliver(round);
    const record = await pace.complete(round);
    journal.recordMission(record);
    await journal.flush();
    if ((index + 1) % (engine.snapshotEvery ?? 25) === 0) await journal.snapshot();
    onRecord?.(record);
  }
}
