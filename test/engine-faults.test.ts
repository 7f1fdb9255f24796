import { describe, expect, it } from 'vitest';
import { FederationState } from '../coordinator/federation/federation-state.js';
import { MemoryStore } from './support/memory-store.js';
import { RunJournal } from '../coordinator/federation/run-journal.js';
import { UpdateIntake, type IntakeReplies } from '../coordinator/federation/update-intake.js';
import { DeltaLedger } from '../client/delta-ledger.js';
import { encodeUpdateClasses } from '../shared/protocol/update-blocks.js';
import { parseCodecSpec } from '../shared/protocol/codecs/codec-spec.js';
import { PROTOCOL_VERSION, type Outgoing, type UpdateMessage } from '../shared/protocol/messages.js';
import { validateClientMessage } from '../shared/protocol/validation.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';
import type { PrototypeTable } from '../shared/learning/prototype-table.js';
import { SeededRng } from '../shared/learning/rng.js';
import { tableChecksum } from '../shared/learning/table-checksum.js';

/**
 * The engine's at-most-once, ack-after-durable intake under a hostile transport: messages in both
 * directions are dropped, duplicated, delayed and reordered, and the engine crashes (losing all it
 * had not flushed) and restarts from its journal at random moments. Clients resend what is not
 * acknowledged, as after a reconnect. Embeddings are small integers, so every sum is exact in any
 * order and the final table must equal the fault-free one bit for bit.
 */
const DIM = 8;
const uplink = parseCodecSpec('f32');

interface Delta {
  classId: number;
  count: number;
  vector: number[];
}

/** Each client's deltas, in order: one to three classes each, integer vectors. */
function plan(rng: SeededRng, clients: number, perClient: number): Delta[][][] {
  return Array.from({ length: clients }, () => Array.from({ length: perClient }, () => {
    const classes = rng.sample(12, 1 + rng.int(3));
    return classes.map((classId) => ({ classId, count: 1 + rng.int(5), vector: Array.from({ length: DIM }, () => rng.int(9) - 4) }));
  }));
}

function faultFree(deltas: Delta[][][]): FederationState {
  const state = new FederationState(DIM);
  deltas.forEach((own, c) => own.forEach((classes, k) => {
    const ids = classes.map((d) => d.classId);
    const order = ids.map((_, i) => i).sort((a, b) => ids[a]! - ids[b]!);
    state.applyUpdate(`c${c}`, k + 1, {
      classIds: order.map((i) => ids[i]!),
      counts: order.map((i) => classes[i]!.count),
      means: Float64Array.from(order.flatMap((i) => classes[i]!.vector)),
    });
  }));
  return state;
}

class Client {
  readonly ledger = new DeltaLedger(DIM);
  readonly outbox = new Map<number, Uint8Array>();
  next = 0;
  lastSent = -Infinity;

  constructor(readonly id: string, readonly deltas: Delta[][]) {}

  /** Learns its next delta and returns the update frame, or undefined when it has none left. */
  learn(): Uint8Array | undefined {
    const classes = this.deltas[this.next++];
    if (!classes) return undefined;
    for (const d of classes) this.ledger.record(d.classId, Array.from({ length: d.count }, () => d.vector).flat(), d.count);
    const delta = this.ledger.takeDelta()!;
    const stats: PrototypeTable = delta.stats;
    const update: Outgoing<UpdateMessage> = { seq: delta.seq, base: 0, mission: delta.seq - 1, classes: encodeUpdateClasses(stats, uplink, (c) => stats.prototype(c)!) };
    const frame = encodeMessage({ v: PROTOCOL_VERSION, ...update });
    this.outbox.set(delta.seq, frame);
    return frame;
  }

  acked(seq: number, version: number): void {
    this.ledger.acknowledge(seq, version);
    for (const s of this.outbox.keys()) if (s <= seq) this.outbox.delete(s);
  }

  get done(): boolean {
    return this.next >= this.deltas.length && this.outbox.size === 0;
  }
}

interface InFlight {
  at: number;
  deliver: () => void;
}

async function runWithFaults(seed: number): Promise<{ state: FederationState; store: MemoryStore; crashes: number; expected: FederationState; faults: Record<string, number> }> {
  const rng = new SeededRng(seed).fork('faults');
  const deltas = plan(new SeededRng(seed).fork('plan'), 4, 12);
  const clients = deltas.map((own, c) => new Client(`c${c}`, own));
  const codec = uplink.codec;
  let store = new MemoryStore();
  let boot = 0;
  const faults = { dropped: 0, duplicated: 0, delayed: 0 };
  let engine = start();
  function start() {
    const generation = ++boot;
    const { journal, state } = RunJournal.open(store, DIM, {}, codec);
    const intake = new UpdateIntake(state, { codec, durable: journal });
    return { generation, state, journal, intake };
  }
  let queue: InFlight[] = [];
  let tick = 0;
  const send = (deliver: () => void): void => {
    const roll = rng.next();
    if (roll < 0.1) {
      faults.dropped++;
      return;
    }
    const copies = roll < 0.2 ? 2 : 1;
    if (copies === 2) faults.duplicated++;
    for (let k = 0; k < copies; k++) {
      const delay = rng.int(4) === 0 ? 1 + rng.int(30) : 0;
      if (delay > 0) faults.delayed++;
      queue.push({ at: tick + delay, deliver });
    }
  };
  const toEngine = (client: Client, frame: Uint8Array): void => {
    const generation = engine.generation;
    send(() => {
      // A message to an engine that has since crashed is lost with it.
      if (engine.generation !== generation) return;
      const replies: IntakeReplies = {
        // A crashed engine sends nothing more.
        send: (_type, ack) => {
          if (engine.generation === generation) send(() => client.acked(ack.seq, ack.version));
        },
        sendError: () => {},
      };
      engine.intake.take(client.id, validateClientMessage.update(decodeMessage(frame)), replies);
    });
  };
  let crashes = 0;
  const crash = (): void => {
    crashes++;
    store = store.reopen();
    engine = start();
  };
  while (!clients.every((c) => c.done)) {
    if (++tick > 50_000) throw new Error('the run did not converge');
    for (const client of clients) {
      if (client.outbox.size === 0 || rng.next() < 0.05) {
        const frame = client.learn();
        if (frame) {
          toEngine(client, frame);
          client.lastSent = tick;
        }
      }
      // Nothing acked for a while (or a reconnect): resend every unacknowledged update, in order.
      if (client.outbox.size > 0 && tick - client.lastSent > 40) {
        for (const frame of client.outbox.values()) toEngine(client, frame);
        client.lastSent = tick;
      }
    }
    const due = queue.filter((m) => m.at <= tick);
    queue = queue.filter((m) => m.at > tick);
    // Delivered in a random order; the engine may crash between any two (with flushes pending).
    for (const i of rng.sample(due.length, due.length)) {
      due[i]!.deliver();
      if (rng.next() < 0.01) crash();
    }
    await new Promise((resolve) => setImmediate(resolve));
    if (rng.next() < 0.01) crash();
  }
  await engine.journal.flush();
  return { state: engine.state, store, crashes, expected: faultFree(deltas), faults };
}

describe('the engine under a faulty transport and crashes', () => {
  it('applies every update exactly once: the final table equals the fault-free one, bit for bit, over 12 seeds', async () => {
    let crashes = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const { state, store, expected, crashes: c, faults } = await runWithFaults(seed);
      crashes += c;
      expect(faults.dropped).toBeGreaterThan(0);
      expect(faults.duplicated).toBeGreaterThan(0);
      expect(tableChecksum(state.global)).toBe(tableChecksum(expected.global));
      // One table version per applied update: none was applied twice, none lost.
      expect(state.version).toBe(4 * 12);
      for (let c2 = 0; c2 < 4; c2++) expect(state.lastAppliedSeq(`c${c2}`)).toBe(12);
      // And what the journal holds at the end replays to the same table.
      const replayed = RunJournal.open(store.reopen(), DIM, {}, uplink.codec).state;
      expect(tableChecksum(replayed.global)).toBe(tableChecksum(expected.global));
      expect(replayed.version).toBe(state.version);
    }
    expect(crashes).toBeGreaterThan(5);
  }, 60_000);
});
