import { describe, expect, it } from 'vitest';
import { AssignmentBook } from '../coordinator/federation/assignment-book.js';
import { FederationState } from '../coordinator/federation/federation-state.js';
import { UpdateIntake, type IntakeReplies } from '../coordinator/federation/update-intake.js';
import type { ClassAssignment } from '../coordinator/schedules/schedule.js';
import { tableChecksum } from '../shared/learning/table-checksum.js';
import { decodeClassBlock, encodeClassBlock } from '../shared/protocol/class-block.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { PROTOCOL_LIMITS, PROTOCOL_VERSION, packU32, type ErrorCode, type UpdateMessage } from '../shared/protocol/messages.js';
import { strategyNamed } from '../shared/strategies/registry.js';
import { EventEmitter } from 'node:events';
import type { BytesProgress } from '../coordinator/federation/bytes-progress.js';
import type { ClientLink, MeteredClientLinks } from '../coordinator/federation/client-links.js';
import { MissionRunner, type MissionRecord } from '../coordinator/federation/mission-runner.js';
import { NoStore } from '../coordinator/federation/no-store.js';
import { RunJournal } from '../coordinator/federation/run-journal.js';
import type { MissionSchedule } from '../coordinator/schedules/schedule.js';
import type { HeldOutEvaluator } from '../shared/learning/held-out-evaluator.js';
import { ByteMeter } from '../shared/protocol/byte-accounting.js';
import { parseCodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import type { Strategy } from '../shared/strategies/strategy.js';

const DIM = 3;
const f32 = getCodec('f32');
const LIMITS = { maxClasses: PROTOCOL_LIMITS.maxClassesPerMessage, maxClassId: PROTOCOL_LIMITS.maxClassId, maxCount: PROTOCOL_LIMITS.maxCount, maxVectorBytes: 1 << 20 };

type Answer = { ack?: { seq: number; version: number; duplicate: boolean }; error?: { code: ErrorCode; reason: string; seq?: number } };

function recorder(): IntakeReplies & { answers: Answer[] } {
  const answers: Answer[] = [];
  return {
    answers,
    send: (_type, ack) => answers.push({ ack }),
    sendError: (code, reason, seq) => answers.push({ error: { code, reason, ...(seq === undefined ? {} : { seq }) } }),
  };
}

function plan(...entries: [classId: number, examples: number][]): ClassAssignment[] {
  let next = 0;
  return entries.map(([classId, n]) => ({ classId, indices: Array.from({ length: n }, () => next++) }));
}

function update(seq: number, mission: number, ids: number[], counts: number[], options: { rows?: boolean; dim?: number } = {}): UpdateMessage {
  const dim = options.dim ?? DIM;
  const vectors = new Uint8Array(ids.length * f32.encodedLength(dim));
  ids.forEach((_, i) => vectors.set(f32.encode(Array.from({ length: dim }, (__, d) => i + d)), i * f32.encodedLength(dim)));
  const classes = decodeClassBlock(encodeClassBlock(ids, counts, vectors, { rows: options.rows ?? false }), LIMITS);
  return { v: 2, seq, base: 0, mission, classes };
}

function setup(strategy: Strategy = strategyNamed('protofed'), dim = DIM): { state: FederationState; book: AssignmentBook; intake: UpdateIntake; take(u: UpdateMessage, clientId?: string): Answer } {
  const state = new FederationState(dim);
  const book = new AssignmentBook();
  const intake = new UpdateIntake(state, { codec: f32, assignments: { book, strategy } });
  return {
    state, book, intake,
    take(u, clientId = 'c0') {
      const replies = recorder();
      intake.take(clientId, u, replies);
      return replies.answers[0]!;
    },
  };
}

describe('updates are checked against the work assigned', () => {
  it('takes an update that is exactly the assigned work, and a resend of it as a duplicate', () => {
    const { state, book, take } = setup();
    book.assign('c0', 0, plan([3, 5], [7, 2]), new Set([3, 7]));
    expect(take(update(1, 0, [3, 7], [5, 2])).ack).toEqual({ seq: 1, version: 1, duplicate: false });
    expect(book.expected('c0', 0)).toBeUndefined();
    expect(take(update(1, 0, [3, 7], [5, 2])).ack).toEqual({ seq: 1, version: 1, duplicate: true });
    expect(state.global.get(3)!.count).toBe(5);
  });

  it('refuses, and applies nothing of, every update that does not match its assignment', () => {
    const { state, book, take } = setup();
    book.assign('c0', 0, plan([3, 5], [7, 2]), new Set([3, 7]));
    book.assign('c1', 0, plan([4, 6]), new Set([3, 4, 7]));
    const before = tableChecksum(state.global);
    const cases: [string, UpdateMessage, ErrorCode, RegExp, string?][] = [
      ['a mission never assigned', update(1, 5, [3, 7], [5, 2]), 'unexpected', /mission 5, which was not assigned to c0/],
      ['an unassigned class with a huge count', update(1, 0, [3, 7, 9], [5, 2, 2 ** 40]), 'invalid', /3 classes, but 2 were assigned/],
      ['an unassigned class in place of an assigned one', update(1, 0, [3, 9], [5, 2]), 'invalid', /class 9 was not assigned in mission 0/],
      ['an inflated count', update(1, 0, [3, 7], [5, 2 ** 40]), 'invalid', /class 7: count 1099511627776, but 2 examples were assigned/],
      ['a missing class', update(1, 0, [3], [5]), 'invalid', /1 classes, but 2 were assigned/],
      ['no classes at all', update(1, 0, [], []), 'invalid', /0 classes, but 2 were assigned/],
      ['the rows flag (0x02) in a protofed run', update(1, 0, [3, 7], [5, 2], { rows: true }), 'invalid', /block of rows \(flag 0x02\)/],
      ['another client\'s work', update(1, 0, [4, 7], [6, 2]), 'invalid', /class 4 was not assigned/],
      ['a seq after a gap (seq 50 first)', update(50, 0, [3, 7], [5, 2]), 'unexpected', /update 50 arrived before update 1/],
      ['an update of a client with no work at all', update(1, 0, [3], [5]), 'unexpected', /not assigned to c9/, 'c9'],
    ];
    for (const [what, u, code, reason, clientId] of cases) {
      const answer = take(u, clientId);
      expect(answer.error, what).toMatchObject({ code, seq: u.seq });
      expect(answer.error!.reason, what).toMatch(reason);
    }
    expect(tableChecksum(state.global)).toBe(before);
    expect(state.version).toBe(0);
    // The real update still goes in afterwards: nothing above was counted against the client.
    expect(take(update(1, 0, [3, 7], [5, 2])).ack?.duplicate).toBe(false);
  });

  it('refuses a second update for a mission already delivered, with the next seq', () => {
    const { book, take } = setup();
    book.assign('c0', 0, plan([3, 5]), new Set([3]));
    expect(take(update(1, 0, [3], [5])).ack?.duplicate).toBe(false);
    const again = take(update(2, 0, [3], [5]));
    expect(again.error).toMatchObject({ code: 'unexpected', seq: 2 });
    expect(again.error!.reason).toMatch(/already delivered/);
  });

  it('share-embeddings: one row of count 1 per assigned example, and the rows flag', () => {
    const { book, take } = setup(strategyNamed('share-embeddings'));
    book.assign('c0', 0, plan([3, 2], [7, 1]), new Set([3, 7]));
    expect(take(update(1, 0, [3, 7], [2, 1])).error?.reason).toMatch(/sends a block of rows/);
    expect(take(update(1, 0, [3, 7], [2, 1], { rows: true })).error?.reason).toMatch(/rows\[0\] \(class 3\): count 2/);
    expect(take(update(1, 0, [3, 3, 3, 7], [1, 1, 1, 1], { rows: true })).error?.reason).toMatch(/class 3: count 3, but 2 examples/);
    expect(take(update(1, 0, [3, 3, 7], [1, 1, 1], { rows: true })).ack?.duplicate).toBe(false);
  });

  it('fedavg-head: a row for every assigned class, other rows only of known classes, each weighted by all examples', () => {
    const { book, take } = setup(strategyNamed('fedavg-head'), DIM + 1);
    book.assign('c0', 1, plan([3, 2], [7, 1]), new Set([1, 3, 7]));
    const head = (ids: number[], weights: number[]): UpdateMessage => update(1, 1, ids, weights, { dim: DIM + 1 });
    expect(take(head([1, 3], [3, 3])).error?.reason).toMatch(/no head row for class 7/);
    expect(take(head([3, 7, 8], [3, 3, 3])).error?.reason).toMatch(/class 8 is not known in mission 1/);
    expect(take(head([1, 3, 7], [3, 2, 3])).error?.reason).toMatch(/weight 2, but the client learned 3 examples/);
    expect(take(head([1, 3, 7], [3, 3, 3])).ack?.duplicate).toBe(false);
  });

  it('strategies whose clients learn nothing take no update', () => {
    for (const name of ['centralized', 'local-only'] as const) {
      const { book, take } = setup(strategyNamed(name));
      book.assign('c0', 0, plan([3, 5]), new Set([3]));
      expect(take(update(1, 0, [3], [5])).error?.reason, name).toMatch(`strategy ${name} takes no updates`);
    }
  });
});

describe('reports', () => {
  /** A mission runner over links that a test drives by hand (no transport, no mission started). */
  function runnerWithHandLinks(async: boolean) {
    const meters = new Map<string, ByteMeter>();
    const links = Object.assign(new EventEmitter() as MeteredClientLinks, {
      session: () => undefined,
      meter: (id: string) => meters.get(id) ?? meters.set(id, new ByteMeter()).get(id)!,
    });
    const { journal, state } = RunJournal.open<MissionRecord, BytesProgress>(new NoStore(), 4, {}, getCodec('f32'));
    const schedule = { missions: 3, next: () => undefined } as unknown as MissionSchedule;
    new MissionRunner({
      links, state, journal, schedule, evaluator: {} as HeldOutEvaluator, clientIds: ['c0'], uplink: parseCodecSpec('f32'), downlink: parseCodecSpec('f32'),
      missionLimit: 3, strategy: strategyNamed('protofed'), participation: 1, seed: 1, phaseMs: 1000, connectMs: 1000, quorum: 1,
      async: async ? { everyUpdates: 1 } : undefined,
    });
    const errors: [ErrorCode, string][] = [];
    const link: ClientLink = { clientId: 'c0', connected: true, heldVersion: 0, send: () => {}, sendError: (code, reason) => void errors.push([code, reason]) };
    const report = (mission: number) => links.emit('report', link, {
      v: PROTOCOL_VERSION, clientId: 'c0', mission, phase: 'before-merge', tableVersion: 0, classIds: packU32([]), correct: packU32([]), total: packU32([]),
      embeddingsComputed: 0, embeddingsCached: 0,
    });
    return { errors, report };
  }

  it('a report for a mission no client was handed is refused with the reason (missions are numbered from 0)', () => {
    const sync = runnerWithHandLinks(false);
    sync.report(0);
    expect(sync.errors).toEqual([['unexpected', 'report for mission 0, but no mission was handed out (missions are numbered from 0)']]);
    const free = runnerWithHandLinks(true);
    free.report(1);
    expect(free.errors.map(([code]) => code)).toEqual(['unexpected']);
  });
});
