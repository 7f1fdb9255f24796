import { EventEmitter } from 'node:events';
import { decodeInto } from '../../shared/protocol/codecs/decode-into.js';
import { CodecError, type VectorCodec } from '../../shared/protocol/codecs/vector-codec.js';
import type { ErrorCode, UpdateMessage } from '../../shared/protocol/messages.js';
import { ProtocolError } from '../../shared/protocol/validation.js';
import type { Strategy } from '../../shared/strategies/strategy.js';
import type { AssignmentBook } from './assignment-book.js';
import type { DownlinkHistory } from './downlink-history.js';
import type { DecodedUpdate, FederationState } from './federation-state.js';

/**
 * Decodes and checks an update's vectors against the negotiated codec and dimension.
 * Either every class is valid and decoded, or a ProtocolError names the first bad one and
 * nothing is applied. With `scratch`, the means are decoded into it (grown as needed) rather
 * than a new array: they are valid until the next call with the same scratch.
 */
export function decodeUpdate(
  update: UpdateMessage,
  expected: { codec: VectorCodec; dim: number; delta?: DownlinkHistory | undefined },
  scratch?: { means: Float64Array },
): DecodedUpdate {
  const { codec, dim, delta } = expected;
  const { classIds, counts, vectors } = update.classes;
  const stride = codec.encodedLength(dim);
  if (vectors.byteLength !== classIds.length * stride) {
    throw new ProtocolError(
      'invalid',
      `classes: ${vectors.byteLength} bytes of vectors for ${classIds.length} classes, expected ${stride} each (${dim}-d ${codec.name})`,
    );
  }
  // Codecs that can add straight from their bytes are only checked here; the merge decodes them.
  if (codec.validate && codec.accumulateInto && !delta) {
    for (let i = 0; i < classIds.length; i++) {
      try {
        codec.validate(vectors, i * stride, dim);
      } catch (err) {
        classError(i, classIds[i]!, err);
      }
    }
    return { classIds, counts, encoded: { codec, vectors } };
  }
  const size = classIds.length * dim;
  if (scratch && scratch.means.length < size) scratch.means = new Float64Array(Math.max(size, 2 * scratch.means.length));
  const means = scratch ? scratch.means.subarray(0, size) : new Float64Array(size);
  for (let i = 0; i < classIds.length; i++) {
    try {
      decodeInto(codec, vectors, i * stride, dim, means, i * dim);
    } catch (err) {
      classError(i, classIds[i]!, err);
    }
  }
  if (delta) {
    // A change against the prototype the client held at `base`: add that prototype back.
    for (let i = 0; i < classIds.length; i++) {
      const held = delta.held(classIds[i]!, update.base);
      if (held) for (let d = 0; d < dim; d++) means[i * dim + d]! += held[d]!;
    }
    // The contribution is kept as decoded means: the bytes alone no longer give them.
    return { classIds, counts, means: scratch ? Float64Array.from(means) : means };
  }
  return { classIds, counts, means, encoded: { codec, vectors } };
}

function classError(i: number, classId: number, err: unknown): never {
  if (err instanceof CodecError) throw new ProtocolError('invalid', `classes[${i}] (class ${classId}): ${err.message}`);
  throw err;
}

export interface UpdateIntakeEvents {
  /** A new (not duplicate) update was merged into the global table, and is durable. */
  applied: [clientId: string, update: UpdateMessage, version: number];
  /** The journal could not make an update durable: the run cannot go on safely. */
  failed: [error: Error];
  /** An update was refused (and answered with an error): nothing of it was applied. */
  refused: [clientId: string, seq: number, code: ErrorCode, reason: string];
}

export interface UpdateIntakeOptions {
  /** The negotiated uplink codec. */
  codec: VectorCodec;
  /** For a `delta+` uplink: what the clients hold, to add back. */
  delta?: DownlinkHistory | undefined;
  /** Where applied updates become durable; acks wait for it. Without one, an update is acked once applied in memory. */
  durable?: { flush(): Promise<void> } | undefined;
  /**
   * What each client was assigned, and how the strategy checks an update against it: an update
   * for a mission not assigned to its sender, or whose classes and counts do not match the work,
   * is refused. Without it (population shards, whose updates the coordinator makes itself),
   * updates are not checked against assignments.
   */
  assignments?: { book: AssignmentBook; strategy: Pick<Strategy, 'checkUpdate'> } | undefined;
}

/** Where the intake sends its answers to one client (a session, or a test's stand-in). */
export interface IntakeReplies {
  send(type: 'ack', body: { seq: number; version: number; duplicate: boolean }): void;
  sendError(code: ErrorCode, reason: string, seq?: number): void;
}

/**
 * Takes every validated update, whatever carried it: decodes it, applies `(clientId, seq)` at
 * most once, waits until the change is durable, and acks it (a resend is acked again, not
 * re-applied). A bad update gets an `error` message naming its seq and the reason, and leaves the
 * state untouched.
 *
 * @example
 * const intake = new UpdateIntake(state, { codec: getCodec('int8'), durable: journal });
 * server.on('update', (session, update) => intake.take(session.clientId!, update, session));
 * intake.on('applied', (clientId, update) => ...);
 */
export class UpdateIntake extends EventEmitter<UpdateIntakeEvents> {
  private readonly scratch = { means: new Float64Array(0) };
  /** Answers to send once what was taken so far is durable. */
  private waiting: (() => void)[] = [];
  private answered: Promise<void> = Promise.resolve();

  private readonly codec: VectorCodec;
  private readonly delta: DownlinkHistory | undefined;
  private readonly durable: { flush(): Promise<void> } | undefined;
  private readonly assignments: UpdateIntakeOptions['assignments'];

  constructor(private readonly state: FederationState, options: UpdateIntakeOptions) {
    super();
    this.codec = options.codec;
    this.delta = options.delta;
    this.durable = options.durable;
    this.assignments = options.assignments;
  }

  take(clientId: string, update: UpdateMessage, replies: IntakeReplies): void {
    let decoded: DecodedUpdate;
    try {
      if (this.state.hasLeft(clientId)) throw new ProtocolError('unexpected', `client ${clientId} left the run: its updates are no longer taken`);
      if (update.base > this.state.version) throw new ProtocolError('invalid', `update says it was made on table version ${update.base}, but the table is at version ${this.state.version}`);
      const next = this.state.lastAppliedSeq(clientId) + 1;
      // Applied strictly in seq order: an update after a gap would make the missing one look like a resend.
      if (update.seq > next) throw new ProtocolError('unexpected', `update ${update.seq} arrived before update ${next}: updates apply in seq order, so resend from ${next}`);
      if (update.seq === next) this.checkAssigned(clientId, update);
      decoded = decodeUpdate(update, { codec: this.codec, dim: this.state.dim, delta: this.delta }, this.scratch);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      replies.sendError(err.code, err.message, update.seq);
      this.emit('refused', clientId, update.seq, err.code, err.message);
      return;
    }
    decoded.mission = update.mission;
    const { applied, version } = this.state.applyUpdate(clientId, update.seq, decoded);
    if (applied) this.assignments?.book.settle(clientId, update.mission);
    const answer = (): void => {
      replies.send('ack', { seq: update.seq, version, duplicate: !applied });
      if (applied) this.emit('applied', clientId, update, version);
    };
    if (!this.durable) {
      answer();
      return;
    }
    // A duplicate waits too: the update it repeats may still be on its way to the disk. The
    // answers of everything taken in this turn of the event loop wait on one flush.
    this.waiting.push(answer);
    if (this.waiting.length === 1) queueMicrotask(() => this.flushWaiting());
  }

  /** A new update must be its sender's work for a mission it was assigned and has not delivered. */
  private checkAssigned(clientId: string, update: UpdateMessage): void {
    if (!this.assignments) return;
    const work = this.assignments.book.expected(clientId, update.mission);
    if (!work) throw new ProtocolError('unexpected', `update ${update.seq} is for mission ${update.mission}, which was not assigned to ${clientId} or is already delivered`);
    const problem = this.assignments.strategy.checkUpdate(update.classes, work);
    if (problem) throw new ProtocolError('invalid', `update ${update.seq} for mission ${update.mission}: ${problem}`);
  }

  /**
   * Resolves once every update taken so far is durable and answered: wait for it before anything
   * that must follow the acks (a table that contains these updates, the end of a mission).
   */
  settled(): Promise<void> {
    this.flushWaiting();
    return this.answered;
  }

  private flushWaiting(): void {
    if (this.waiting.length === 0) return;
    const answers = this.waiting;
    this.waiting = [];
    // Flushes resolve in order, so the latest answered promise settles after all earlier ones.
    this.answered = this.durable!.flush().then(() => {
      for (const answer of answers) answer();
    }, (err: Error) => {
      this.emit('failed', err);
    });
  }
}
