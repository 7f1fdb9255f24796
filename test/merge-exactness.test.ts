import { describe, expect, it } from 'vitest';
import { FederationState, type DecodedUpdate } from '../coordinator/federation/federation-state.js';
import { decodeUpdate } from '../coordinator/federation/update-intake.js';
import { parseCodecSpec, type CodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import { getCodec, type VectorCodec } from '../shared/protocol/codecs/index.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { validateClientMessage } from '../shared/protocol/validation.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';
import { DeltaLedger } from '../client/delta-ledger.js';
import { PrototypeTable } from '../shared/learning/prototype-table.js';
import { fedreconReference } from '../shared/strategies/fedrecon-reference.js';
import { protofed } from '../shared/strategies/protofed.js';
import type { UpdateContext } from '../shared/strategies/strategy.js';
import { SeededRng } from '../shared/learning/rng.js';

const DIM = 16;

interface Example { classId: number; vector: Float64Array }

/**
 * A delta as the coordinator receives it: the class block the client builds (the protofed
 * strategy's own encoder; deflated for even seqs), msgpack, validation, codec decode.
 */
function overTheWire(stats: PrototypeTable, codec: VectorCodec, seq: number): DecodedUpdate {
  return received(protofed.encodeUpdate(updateContext(stats, parseCodecSpec(seq % 2 === 0 ? `${codec.name}+deflate` : codec.name))), codec, seq);
}

function updateContext(delta: PrototypeTable, uplink: CodecSpec, held = new PrototypeTable(DIM)): UpdateContext {
  return { delta, rows: [], held, trained: undefined, uplink, reference: () => undefined };
}

function received(classes: Uint8Array, codec: VectorCodec, seq: number): DecodedUpdate {
  const message = validateClientMessage.update(decodeMessage(encodeMessage({ v: PROTOCOL_VERSION, seq, base: 0, mission: 0, classes })));
  return decodeUpdate(message, { codec, dim: DIM });
}

function randomExamples(rng: SeededRng, count: number, classes: number): Example[] {
  return Array.from({ length: count }, () => {
    const classId = rng.int(classes);
    // Class-dependent offset and a wide spread, so errors in weighting show up.
    const vector = Float64Array.from({ length: DIM }, (_, i) => (classId * 3 + i) * 0.5 + (rng.next() - 0.5) * 40);
    return { classId, vector };
  });
}

function centralized(examples: Example[]): PrototypeTable {
  const t = new PrototypeTable(DIM);
  for (const e of examples) t.addEmbeddings(e.classId, e.vector, 1);
  return t;
}

function maxPrototypeDiff(a: PrototypeTable, b: PrototypeTable): number {
  expect(a.classIds()).toEqual(b.classIds());
  let worst = 0;
  for (const id of a.classIds()) {
    expect(a.get(id)!.count).toBe(b.get(id)!.count);
    const pa = a.prototype(id)!;
    const pb = b.prototype(id)!;
    for (let i = 0; i < DIM; i++) worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!));
  }
  return worst;
}

/**
 * Simulates clients that learn examples in batches, send deltas through a codec, and sometimes
 * resend updates (as after a reconnect); the coordinator receives them in a random interleaving.
 */
function federate(examples: Example[], seed: number, codecName: string, orderSeed = seed): { state: FederationState; duplicates: number } {
  const rng = new SeededRng(seed);
  const order = new SeededRng(orderSeed).fork('arrival');
  const codec = getCodec(codecName);
  const clients = 1 + rng.int(6);
  const ledgers = Array.from({ length: clients }, () => new DeltaLedger(DIM));
  const outbox: { clientId: string; seq: number; update: DecodedUpdate }[][] =
    Array.from({ length: clients }, () => []);
  // Random split of the examples over clients, in random batches per client.
  const owner = examples.map(() => rng.int(clients));
  for (let c = 0; c < clients; c++) {
    const mine = examples.filter((_, i) => owner[i] === c);
    let at = 0;
    while (at < mine.length) {
      const batch = mine.slice(at, at + 1 + rng.int(8));
      at += batch.length;
      for (const e of batch) ledgers[c]!.record(e.classId, e.vector, 1);
      const delta = ledgers[c]!.takeDelta()!;
      outbox[c]!.push({
        clientId: `c${c}`,
        seq: delta.seq,
        update: overTheWire(delta.stats, codec, delta.seq),
      });
    }
  }
  const state = new FederationState(DIM);
  let duplicates = 0;
  const cursors = outbox.map(() => 0);
  for (;;) {
    const ready = cursors.map((at, c) => (at < outbox[c]!.length ? c : -1)).filter((c) => c >= 0);
    if (ready.length === 0) break;
    const c = ready[order.int(ready.length)]!;
    const msg = outbox[c]![cursors[c]!]!;
    // Per client, updates arrive in seq order (one ordered connection); a resend repeats the latest ones.
    const first = state.applyUpdate(msg.clientId, msg.seq, msg.update);
    expect(first.applied).toBe(true);
    ledgers[c]!.acknowledge(msg.seq, first.version);
    if (order.next() < 0.3) {
      const back = Math.max(0, cursors[c]! - order.int(3));
      for (let r = back; r <= cursors[c]!; r++) {
        const old = outbox[c]![r]!;
        const again = state.applyUpdate(old.clientId, old.seq, old.update);
        expect(again.applied).toBe(false);
        duplicates++;
      }
    }
    cursors[c]!++;
  }
  return { state, duplicates };
}

describe('merge exactness', () => {
  it('the global table equals the centralized means for random splits, orders, batchings and resends (f64: 1e-9)', () => {
    let duplicates = 0;
    for (let trial = 0; trial < 60; trial++) {
      const rng = new SeededRng(1000 + trial);
      const examples = randomExamples(rng, 20 + rng.int(200), 1 + rng.int(12));
      const result = federate(examples, 2000 + trial, 'f64');
      duplicates += result.duplicates;
      expect(maxPrototypeDiff(result.state.global, centralized(examples))).toBeLessThan(1e-9);
    }
    expect(duplicates).toBeGreaterThan(50);
  });

  it('with the f32 codec the error stays within float32 rounding of the deltas', () => {
    for (let trial = 0; trial < 30; trial++) {
      const rng = new SeededRng(3000 + trial);
      const examples = randomExamples(rng, 50 + rng.int(150), 1 + rng.int(8));
      const { state } = federate(examples, 4000 + trial, 'f32');
      const truth = centralized(examples);
      // Each delta mean is rounded with relative error ≤ 2^-24; the merged mean is a convex
      // combination of delta means, so its error is bounded by 2^-24 × the largest |value|.
      let maxAbs = 0;
      for (const e of examples) for (const v of e.vector) maxAbs = Math.max(maxAbs, Math.abs(v));
      expect(maxPrototypeDiff(state.global, truth)).toBeLessThanOrEqual(maxAbs * 2 ** -24 * 1.01);
    }
  });

  it('the merge does not depend on arrival order: different interleavings of the same updates agree', () => {
    const examples = randomExamples(new SeededRng(5), 300, 6);
    const tables = [1, 2, 3, 4].map((orderSeed) => federate(examples, 77, 'f64', orderSeed).state);
    for (const t of tables) {
      expect(maxPrototypeDiff(t.global, tables[0]!.global)).toBeLessThan(1e-12);
      expect(maxPrototypeDiff(t.global, centralized(examples))).toBeLessThan(1e-9);
    }
  });

  it('removing a client is exact unlearning: the table equals the centralized means of the others', () => {
    const rng = new SeededRng(9);
    const examples = randomExamples(rng, 400, 5);
    const state = new FederationState(DIM);
    const owner = examples.map(() => rng.int(3));
    for (let c = 0; c < 3; c++) {
      const ledger = new DeltaLedger(DIM);
      examples.forEach((e, i) => owner[i] === c && ledger.record(e.classId, e.vector, 1));
      const d = ledger.takeDelta()!;
      state.applyUpdate(`c${c}`, d.seq, overTheWire(d.stats, getCodec('f64'), d.seq));
    }
    const before = state.version;
    state.removeClient('c1');
    expect(state.version).toBe(before + 1);
    expect(state.changedSince(before).changed.length + state.changedSince(before).removed.length).toBeGreaterThan(0);
    expect(maxPrototypeDiff(state.global, centralized(examples.filter((_, i) => owner[i] !== 1)))).toBeLessThan(1e-9);
  });

  it('adding straight from int8/int4 bytes gives the same bits as decoding and then adding', () => {
    const rng = new SeededRng(12);
    for (const name of ['int8', 'int8-b32', 'int4', 'int4-b32', 'int8-h16', 'int4-h16']) {
      const codec = getCodec(name);
      const fused = new FederationState(DIM);
      const twoPass = new FederationState(DIM);
      for (let seq = 1; seq <= 20; seq++) {
        const stats = new PrototypeTable(DIM);
        for (const e of randomExamples(rng, 12, 4)) stats.addEmbeddings(e.classId, e.vector, 1);
        const update = overTheWire(stats, codec, seq);
        expect(update.means, name).toBeUndefined();
        fused.applyUpdate('c0', seq, update);
        const stride = codec.encodedLength(DIM);
        const means = new Float64Array(update.classIds.length * DIM);
        for (let i = 0; i < update.classIds.length; i++) means.set(codec.decode(update.encoded!.vectors.subarray(i * stride, (i + 1) * stride), DIM), i * DIM);
        twoPass.applyUpdate('c0', seq, { classIds: update.classIds, counts: update.counts, means });
      }
      for (const id of twoPass.global.classIds()) expect(Array.from(fused.global.get(id)!.sum), name).toEqual(Array.from(twoPass.global.get(id)!.sum));
    }
  });

  it('unlearning through a lossy codec removes exactly what was merged (contributions kept as codec bytes)', () => {
    const rng = new SeededRng(10);
    const examples = randomExamples(rng, 300, 4);
    const owner = examples.map(() => rng.int(3));
    const all = new FederationState(DIM);
    const without = new FederationState(DIM);
    for (let c = 0; c < 3; c++) {
      const ledger = new DeltaLedger(DIM);
      examples.forEach((e, i) => owner[i] === c && ledger.record(e.classId, e.vector, 1));
      const d = ledger.takeDelta()!;
      all.applyUpdate(`c${c}`, d.seq, overTheWire(d.stats, getCodec('int8'), d.seq));
      if (c !== 1) without.applyUpdate(`c${c}`, d.seq, overTheWire(d.stats, getCodec('int8'), d.seq));
    }
    all.removeClient('c1');
    expect(all.global.classIds()).toEqual(without.global.classIds());
    expect(maxPrototypeDiff(all.global, without.global)).toBeLessThan(1e-12);
    expect(() => new FederationState(DIM, { keepContributions: false }).removeClient('c0')).toThrow(/keeps no per-client contributions/);
  });
});

describe('the blended merge of the reference code', () => {
  it('drifts from the centralized mean while the delta merge does not (both strategies\' own client encoders, the same coordinator merge)', () => {
    const rng = new SeededRng(42);
    const clients = 5;
    const f64 = getCodec('f64');
    const uplink = parseCodecSpec('f64');
    const state = new FederationState(DIM);
    const ledgers = Array.from({ length: clients }, () => new DeltaLedger(DIM));
    // The reference scheme: each client blends the global prototype it holds into its upload; the
    // coordinator merges the uploads like any other (count-weighted), so new data enters twice.
    const reference = new FederationState(DIM);
    const held = Array.from({ length: clients }, () => new PrototypeTable(DIM));
    const all: Example[] = [];
    // One class, 30 missions, every client sees 2 new examples per mission (low-shot, as in the paper's flaw analysis).
    // The class mean drifts over missions, so weighting mistakes move the prototype.
    for (let mission = 0; mission < 30; mission++) {
      for (let c = 0; c < clients; c++) {
        const batch = Array.from({ length: 2 }, () => ({ classId: 0, vector: Float64Array.from({ length: DIM }, (_, i) => i + mission * 0.5 + (rng.next() - 0.5) * 4) }));
        all.push(...batch);
        for (const e of batch) ledgers[c]!.record(0, e.vector, 1);
        const d = ledgers[c]!.takeDelta()!;
        const r = state.applyUpdate(`c${c}`, d.seq, overTheWire(d.stats, f64, d.seq));
        ledgers[c]!.acknowledge(d.seq, r.version);
        reference.applyUpdate(`c${c}`, d.seq, received(fedreconReference.encodeUpdate(updateContext(d.stats, uplink, held[c])), f64, d.seq));
      }
      // After the merge every client holds the global table, as a table message gives it.
      for (const table of held) table.setMean(0, reference.global.get(0)!.count, reference.global.prototype(0)!);
    }
    const truth = centralized(all).prototype(0)!;
    const ours = state.global.prototype(0)!;
    const blended = reference.global.prototype(0)!;
    let oursErr = 0;
    let refErr = 0;
    for (let i = 0; i < DIM; i++) {
      oursErr = Math.max(oursErr, Math.abs(ours[i]! - truth[i]!));
      refErr = Math.max(refErr, Math.abs(blended[i]! - truth[i]!));
    }
    expect(oursErr).toBeLessThan(1e-9);
    // The blend overweights old data: the reference prototype lags the true mean by whole units.
    expect(refErr).toBeGreaterThan(1);
  });
});
